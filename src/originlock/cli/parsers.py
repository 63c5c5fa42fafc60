"""argparse helpers shared by the CLI's command modules."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["subcommand"]


def subcommand(parent: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    """A subcommand of ``parent`` (an ``add_subparsers()`` result) whose --help page ends with ``example``."""
    parser: argparse.ArgumentParser = parent.add_parser(
        name,
        help=help_text,
        description=f"{help_text}\n\nexample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
