"""Control-plane flags shared by `originlock serve` and `originlock api` (one definition, one default)."""

from __future__ import annotations

import argparse

from originlock.api.gate import DEFAULT_MAX_BODY

__all__ = ["add_api_options"]


def _byte_size(text: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    number, unit = (text[:-1], units[text[-1].lower()]) if text[-1:].lower() in units else (text, 1)
    if not number.isdigit() or int(number) * unit < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size of at least 1024 bytes (e.g. 1048576, 512k, 4m)")
    return int(number) * unit


def add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api-max-body",
        type=_byte_size,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help="largest API request body, e.g. 1048576, 512k or 4m; larger ones get 413 (default 1m)",
    )
