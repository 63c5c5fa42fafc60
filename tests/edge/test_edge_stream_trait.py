"""``VisitorStream`` is a mypyc trait that every visitor stream subclasses: compiled, the exchange's calls on
the stream (head, data, end, ``closed``, ``finished``: five per pooled request) are native calls through the
class's vtable, not calls looked up by name as on a ``typing.Protocol`` (docs/performance.md, issue 11,
pooled6)."""

from __future__ import annotations

import os

import pytest

from originlock.edge import stream
from originlock.edge.http1 import Http1Connection
from originlock.edge.http2 import Http2Stream
from originlock.edge.responses import start_response
from originlock.edge.stream import VisitorStream

_COMPILED = not stream.__file__.endswith(".py")


def test_every_visitor_stream_subclasses_the_trait() -> None:
    assert issubclass(Http1Connection, VisitorStream)
    assert issubclass(Http2Stream, VisitorStream)


def test_the_trait_is_compiled_with_the_exchange() -> None:
    if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1":
        assert _COMPILED, stream.__file__


@pytest.mark.skipif(not _COMPILED, reason="the source's VisitorStream is a plain abstract class")
def test_compiled_response_writer_takes_only_the_trait() -> None:
    """A native trait argument is checked by type on entry (a Protocol argument would be any object):
    the object itself is refused, before the other arguments are looked at."""
    with pytest.raises(TypeError, match="VisitorStream"):
        start_response(object(), None, None, None, True)  # type: ignore[arg-type]
