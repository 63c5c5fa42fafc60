"""The `originlock` command: argparse root and dispatch.

Each command's module is imported only when that command runs (or when ``--help`` needs its own page):
``serve`` pulls in the API (FastAPI builds its routes at import), the edge and the store, about a second of
imports on a busy machine that ``originlock zones list`` or ``originlock --help`` never use, and that an
``originlock edge`` node would pay at every cold start. The root ``--help`` lists every command from
:data:`COMMANDS` without importing any (tests/cli/test_cli_startup.py checks the table against the modules).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from originlock._version import __version__
from originlock.cli.client import CliError

__all__ = ["COMMANDS", "build_parser", "main"]

#: command -> (module under originlock.cli, its function that registers it and its siblings, one-line help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("serve", "add_parser", "run the control plane and the edge"),
    "edge": ("roles", "add_parsers", "run an edge node of a fleet (no API)"),
    "api": ("roles", "add_parsers", "run the control plane of a fleet (no edge)"),
    "zones": ("resources", "add_parsers", "manage zones"),
    "dns": ("resources", "add_parsers", "manage DNS records"),
    "certs": ("resources", "add_parsers", "manage AOP client certificates"),
    "tokens": ("resources", "add_parsers", "manage API tokens"),
    "origin": ("origin", "add_parser", "check and configure origins that enforce AOP"),
    "rules": ("rules", "add_parser", "work with WAF rule expressions"),
}


def _requested(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the root takes no option with a value)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The root parser. With ``argv``, only the module of the command it names is imported (the others are
    listed by name and help); without, every command is complete."""
    parser = argparse.ArgumentParser(
        prog="originlock",
        description="Self-hosted edge with Authenticated Origin Pulls, a WAF and a Cloudflare-compatible API.",
        epilog="start here: originlock serve",
    )
    parser.add_argument("--version", action="version", version=f"originlock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = _requested(argv) if argv is not None else None
    registered: set[tuple[str, str]] = set()
    for name, (module, register, help_text) in COMMANDS.items():
        key = (module, register)
        if argv is None or (wanted is not None and key == COMMANDS[wanted][:2]):
            if key not in registered:
                registered.add(key)
                getattr(importlib.import_module(f"originlock.cli.{module}"), register)(sub)
        else:
            sub.add_parser(name, help=help_text)  # listed by the root --help; never parsed into
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
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
