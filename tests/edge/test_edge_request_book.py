"""RequestBook: counts by zone and status, and the access line's clocks (one clock read per line: the wall
time is the monotonic clock plus the difference measured at most WALL_CLOCK_RESYNC earlier)."""

from __future__ import annotations

import json
from pathlib import Path

from originlock.edge.access_log import AccessLog
from originlock.edge.request_book import WALL_CLOCK_RESYNC, RequestBook
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


def test_one_clock_read_per_line_and_wall_steps_show_within_the_resync(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    monotonic, wall = Clock(1000.0), Clock(1764849600.0)
    book = RequestBook(AccessLog(str(path)), monotonic=monotonic, wall=wall)
    expected: list[tuple[float, float]] = []

    def log(at: float, wall_now: float, reads_wall: bool) -> None:
        monotonic.value, wall.value = at, wall_now
        before = wall.reads
        book.log(_ctx(ROUTE_A, 200, started=at - 0.25), REQUEST)
        assert wall.reads - before == (1 if reads_wall else 0)

    log(1000.0, 1764849600.0, True)
    expected.append((1764849600.0, 250.0))
    log(1000.5, 1764849600.5, False)  # the wall clock not read: derived
    expected.append((1764849600.5, 250.0))
    # The wall clock steps back by an hour (and read as such) before the resync is due: not shown yet...
    log(1000.0 + WALL_CLOCK_RESYNC * 0.75, 1764846000.0, False)
    expected.append((1764849600.0 + WALL_CLOCK_RESYNC * 0.75, 250.0))
    # ...and shown once the monotonic clock reached the resync, from then on.
    log(1000.0 + WALL_CLOCK_RESYNC, 1764846000.25, True)
    expected.append((1764846000.25, 250.0))
    log(1000.0 + WALL_CLOCK_RESYNC + 0.125, 1764846000.375, False)
    expected.append((1764846000.375, 250.0))
    assert monotonic.reads == 5
    book.access_log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["time"], line["duration_ms"]) for line in lines] == expected


def test_no_clock_read_without_an_access_log() -> None:
    monotonic, wall = Clock(1.0), Clock(2.0)
    book = RequestBook(AccessLog(None), monotonic=monotonic, wall=wall)
    book.log(_ctx(ROUTE_A, 200), REQUEST)
    assert monotonic.reads == wall.reads == 0
