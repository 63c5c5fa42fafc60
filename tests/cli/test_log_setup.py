"""A library's traceback about a store connection never reaches the log: its message and type do."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from originlock.cli.log_setup import configure_logging


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    stream = io.StringIO()
    try:
        configure_logging()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        yield stream
    finally:
        root.handlers = saved


def _log_failure(logger: str) -> None:
    try:
        raise RuntimeError("SELECT secret FROM tokens WHERE id = 'abc'")
    except RuntimeError:
        logging.getLogger(logger).error("Exception during reset or similar", exc_info=True)


def test_sqlalchemy_pool_records_lose_the_traceback_and_keep_the_type(root_stream: io.StringIO) -> None:
    _log_failure("sqlalchemy.pool.impl.QueuePool")
    text = root_stream.getvalue()
    assert text.strip() == "Exception during reset or similar (RuntimeError)"
    assert "Traceback" not in text and "SELECT" not in text


def test_other_loggers_keep_their_tracebacks(root_stream: io.StringIO) -> None:
    _log_failure("someapp")
    assert "Traceback" in root_stream.getvalue()
