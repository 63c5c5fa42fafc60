"""Control-plane flags shared by `originlock serve` and `originlock api` (one definition, one default)."""

from __future__ import annotations

import argparse

from originlock.api.limits import DEFAULT_MAX_BODY  # not api.gate: the edge role starts without the API

__all__ = ["add_api_options", "byte_size", "host_port"]


def host_port(value: str) -> tuple[str, int]:
    """An argparse type for ``HOST:PORT`` (``[::1]:8787`` too; an empty host is 127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def byte_size(text: str) -> int:
    """An argparse type for a size in bytes with an optional k/m suffix (at least 1 KiB)."""
    units = {"k": 1024, "m": 1024 * 1024}
    number, unit = (text[:-1], units[text[-1].lower()]) if text[-1:].lower() in units else (text, 1)
    if not number.isdigit() or int(number) * unit < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size of at least 1024 bytes (e.g. 1048576, 512k, 4m)")
    return int(number) * unit


def add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api-max-body",
        type=byte_size,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help="largest API request body, e.g. 1048576, 512k or 4m; larger ones get 413 (default 1m)",
    )
