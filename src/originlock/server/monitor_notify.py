"""Where the origin exposure monitor sends its news: the :class:`Notifier` interface and a log-line one.

The certificate alerts' webhook delivery will implement the same one-method interface; until it exists
:class:`LogNotifier` writes each event as one JSON line. The monitor calls ``notify`` from a worker
thread, one event at a time, so an implementation may block (an HTTP POST) without stalling the API or
the edge; an exception it raises is logged (its type only) and does not stop the monitor.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

__all__ = ["LogNotifier", "Notifier", "RecordingNotifier"]


class Notifier(Protocol):
    def notify(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` (plain JSON values: ``alert_type``, zone, hostname, verdicts, reasons, text)."""
        ...


class LogNotifier:
    """Writes ``notification {json}`` to the ``originlock.notify`` logger at INFO.

    INFO, not WARNING: the monitor itself always logs the human-readable warning for the same event; this
    line is the machine-readable stand-in for a webhook delivery.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("originlock.notify")

    def __repr__(self) -> str:
        return f"LogNotifier(logger={self._log.name!r})"

    def notify(self, event: dict[str, Any]) -> None:
        self._log.info("notification %s", json.dumps(event, sort_keys=True))


class RecordingNotifier:
    """Keeps every event in ``events`` (tests, and embedding code that polls)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"RecordingNotifier(events={len(self.events)})"

    def notify(self, event: dict[str, Any]) -> None:
        self.events.append(event)
