"""The processes' logging: plain lines, and no library traceback in them.

A library that logs an exception with its traceback puts SQL statements (and, with some drivers, their
parameters) into the log. SQLAlchemy's pool does so when it cannot reset a connection the network or the
store already closed ("Exception during reset or similar"): an expected event in a store outage, which the
breaker reports in one line of its own. Such records keep their message and say the exception's type.
"""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]

#: Loggers (and their children: SQLAlchemy logs per pool class) whose tracebacks are left out.
_TRACEBACK_FREE: tuple[str, ...] = ("sqlalchemy",)


class _TypeOnly(logging.Filter):
    """On the handlers: a logger's own filters do not see its children's records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None and record.name.startswith(_TRACEBACK_FREE):
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_TypeOnly())
