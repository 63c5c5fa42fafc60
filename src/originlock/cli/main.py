"""The `originlock` command: argparse root and dispatch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from originlock._version import __version__
from originlock.cli import origin, resources, roles, rules, serve
from originlock.cli.client import CliError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="originlock",
        description="Self-hosted edge with Authenticated Origin Pulls, a WAF and a Cloudflare-compatible API.",
        epilog="start here: originlock serve",
    )
    parser.add_argument("--version", action="version", version=f"originlock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(sub)
    roles.add_parsers(sub)  # edge / api: one role per fleet node
    resources.add_parsers(sub)
    origin.add_parser(sub)
    rules.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A last line of defence: a file or socket problem a command did not explain itself is still one
        # line for the user, never a traceback.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return code
