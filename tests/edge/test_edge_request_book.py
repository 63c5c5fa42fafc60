"""RequestBook: counts by zone and status, and the access line's clocks."""

from __future__ import annotations

from originlock.edge.access_log import AccessLog
from originlock.edge.request_book import RequestBook
from originlock.pipeline.context import RequestContext
from originlock.proto.events import RequestReceived
from originlock.snapshot.model import Route
from originlock.testing.pki import TestPki, make_route, make_snapshot

PKI = TestPki()
ROUTE_A = make_route("a.example.test", zone="example.test")
ROUTE_B = make_route("b.other.test", zone="other.test")
SNAPSHOT = make_snapshot(PKI, ROUTE_A, generation=7)
REQUEST = RequestReceived(b"GET", b"/", b"1.1", [(b"Host", b"a.example.test")], True, "none", False)


class Clock:
    """A settable clock; counts its reads."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.value


def _ctx(route: Route | None, status: int, started: float = 0.0) -> RequestContext:
    ctx = RequestContext("0123abcd4567ef89-OLK", SNAPSHOT, "https", "203.0.113.7", 50123, started)
    ctx.route, ctx.status = route, status
    return ctx


def test_counts_by_zone_and_status_as_zones_alternate() -> None:
    book = RequestBook(AccessLog(None))
    # A route of a later snapshot: an equal zone name in another string object counts as the same zone.
    later_a = make_route("a.example.test", zone="".join(["example", ".test"]))
    assert later_a.zone_name == ROUTE_A.zone_name and later_a.zone_name is not ROUTE_A.zone_name
    for route, status in [
        (ROUTE_A, 200),
        (ROUTE_A, 200),
        (ROUTE_B, 200),
        (None, 421),
        (ROUTE_A, 404),
        (later_a, 200),
        (ROUTE_B, 200),
        (None, 421),
    ]:
        book.log(_ctx(route, status), REQUEST)
    assert book.request_counts == {
        ("example.test", 200): 3,
        ("example.test", 404): 1,
        ("other.test", 200): 2,
        ("", 421): 2,
    }


def test_no_clock_read_without_an_access_log() -> None:
    monotonic, wall = Clock(1.0), Clock(2.0)
    book = RequestBook(AccessLog(None), monotonic=monotonic, wall=wall)
    book.log(_ctx(ROUTE_A, 200), REQUEST)
    assert monotonic.reads == wall.reads == 0


def test_counts_as_statuses_alternate_within_a_zone() -> None:
    """The last (zone, status) count is kept at hand: a run of one status, another status of the same zone
    in between, and the metrics view read in the middle of a run, all count each request once."""
    book = RequestBook(AccessLog(None))
    for status in [200, 200, 404, 200]:
        book.log(_ctx(ROUTE_A, status), REQUEST)
    assert book.request_counts == {("example.test", 200): 3, ("example.test", 404): 1}
    for route, status in [(ROUTE_A, 200), (ROUTE_B, 404), (ROUTE_A, 404), (ROUTE_A, 404), (ROUTE_B, 404)]:
        book.log(_ctx(route, status), REQUEST)
    assert book.request_counts == {
        ("example.test", 200): 4,
        ("example.test", 404): 3,
        ("other.test", 404): 2,
    }
