"""The access-log sink: JSON lines, buffered in memory and written once per tick (about a second), when
:data:`MAX_PENDING` lines are waiting, and at shutdown; so logging costs no syscall per request.

A file is written through its own ``O_APPEND`` descriptor, one ``write`` per batch of whole lines: the
``--workers`` processes append to the same file without splitting each other's lines.
"""

from __future__ import annotations

import os
import sys
from typing import Final

__all__ = ["AccessLog"]

#: Write early when this many lines are pending (bounded memory under load: ~300 KiB).
MAX_PENDING: Final = 1024
#: New access-log files: readable by the group (log shippers), like nginx's logs on Debian.
FILE_MODE: Final = 0o640


class AccessLog:
    def __init__(self, destination: str | None) -> None:
        self._fd = -1
        self._stdout = destination == "-"
        if destination is not None and not self._stdout:
            self._fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        self.enabled = self._stdout or self._fd >= 0
        self._pending: list[str] = []

    def write(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if not self._pending or not self.enabled:
            return
        lines, self._pending = self._pending, []
        # The last line's newline as an empty last item: one copy of the batch fewer than ``join + "\n"``.
        lines.append("")
        text = "\n".join(lines)
        if self._stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        # Lines are ASCII (JSON with non-ASCII escaped); a short write (disk full, signal) continues
        # where it stopped rather than dropping the rest of the batch. (Plain bytes and an offset: a
        # memoryview re-sliced in a loop was written twice once compiled by mypyc.)
        data = text.encode("ascii")
        written = os.write(self._fd, data)
        while written < len(data):
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.enabled = self._stdout = False
