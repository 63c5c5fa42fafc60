"""The access-log sink: JSON lines, buffered in memory and flushed once per tick (and at shutdown), so
logging costs no syscall per request."""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["AccessLog"]

#: Flush early when this many lines are pending (bounded memory under load).
MAX_PENDING = 1024


class AccessLog:
    def __init__(self, destination: str | None) -> None:
        self._file: TextIO | None
        self._owned = False
        if destination is None:
            self._file = None
        elif destination == "-":
            self._file = sys.stdout
        else:
            self._file = open(destination, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._owned = True
        self._pending: list[str] = []

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, line: str) -> None:
        self._pending.append(line)
        if len(self._pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if self._file is None or not self._pending:
            return
        lines, self._pending = self._pending, []
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._owned and self._file is not None:
            self._file.close()
        self._file = None
