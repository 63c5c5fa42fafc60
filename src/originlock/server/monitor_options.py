"""``--origin-monitor-interval`` for the commands that run the origin exposure monitor (``serve``, ``api``).

Apart from ``server/monitor.py`` so that building the command line does not import the monitor (and the
origin check kit): ``originlock edge`` never runs it, and its start-up pays for every import.
"""

from __future__ import annotations

import argparse

from originlock.server.monitor_policy import DEFAULT_INTERVAL

__all__ = ["add_monitor_arguments"]


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError("the interval cannot be negative (0 disables the monitor)")
    return seconds


def add_monitor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--origin-monitor-interval SECONDS`` for ``originlock serve``."""
    parser.add_argument(
        "--origin-monitor-interval",
        type=_interval,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"check every proxied origin this often, 0 to disable (default {DEFAULT_INTERVAL:g}; "
        "zones opt out with the setting origin_exposure_monitor=off)",
    )
