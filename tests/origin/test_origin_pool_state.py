"""The pool's pure state: plain values in, connections to close out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from originlock.origin.pool_state import PoolState

A = ("a", 443, True, "a.test", "none", "", "fp-a")
B = ("a", 443, True, "b.test", "none", "", "fp-b")


def usable(_: str) -> bool:
    return True


def out(checkout: tuple[str | None, Sequence[str]]) -> tuple[str | None, list[str]]:
    """A checkout's result, its connections to close as a list (checkout returns a shared empty tuple)."""
    conn, to_close = checkout
    return conn, list(to_close)


def test_reuse_is_per_key_and_lifo() -> None:
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    assert out(state.checkout(A, 0, usable)) == (None, [])
    state.opened(A)
    state.opened(A)
    assert list(state.checkin(A, "c1", 1, True)) == []
    assert list(state.checkin(A, "c2", 2, True)) == []
    assert out(state.checkout(B, 3, usable)) == (None, [])  # another identity never gets A's connection
    assert out(state.checkout(A, 3, usable)) == ("c2", [])
    stats = state.statistics()
    assert (stats.idle, stats.busy, stats.opened, stats.reused) == (1, 1, 2, 1)


def test_idle_expiry_and_cap() -> None:
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=1, idle_timeout=10)
    for _ in range(2):
        state.opened(A)
    assert list(state.checkin(A, "c1", 0, True)) == []
    assert list(state.checkin(A, "c2", 0, True)) == ["c1"]
    assert out(state.checkout(A, 20, usable)) == (None, ["c2"])
    state.opened(A)
    state.checkin(A, "c3", 0, True)
    assert state.expire(5) == [] and state.expire(11) == ["c3"]


def test_unusable_and_not_reusable_connections_are_closed() -> None:
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    state.opened(A)
    assert list(state.checkin(A, "c1", 0, False)) == ["c1"]
    state.opened(A)
    state.checkin(A, "c2", 0, True)
    assert out(state.checkout(A, 1, lambda c: False)) == (None, ["c2"])
    for conn in ("c3", "c4"):
        state.opened(A)
        state.checkin(A, conn, 0, True)
    # The freshest is unusable: it is closed and the next one is taken.
    assert out(state.checkout(A, 1, lambda c: c != "c4")) == ("c3", ["c4"])
    assert state.statistics().closed == 3


def test_retire_closes_idle_now_and_busy_on_checkin() -> None:
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    state.opened(A)
    state.opened(A)
    state.checkin(A, "idle", 0, True)
    state.opened(B)
    assert state.retire(lambda key: key[6] != "fp-a") == ["idle"]
    assert list(state.checkin(A, "busy", 1, True)) == ["busy"]
    assert list(state.checkin(B, "b", 1, True)) == []
    assert state.statistics().keys == 1


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        PoolState(max_idle_per_key=-1, idle_timeout=1)


def test_keys_are_forgotten_once_they_have_no_connections() -> None:
    """A key's record lives while it has a busy or idle connection (the statistics count keys)."""
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=1, idle_timeout=10)
    state.opened(A)
    state.opened(B)
    assert state.statistics().keys == 2
    for now in range(3):  # the steady state of a reused connection: checkin, checkout, ...
        assert list(state.checkin(A, "a1", now, True)) == []
        assert out(state.checkout(A, now, usable)) == ("a1", [])
    assert (state.statistics().busy, state.statistics().keys) == (2, 2)
    assert list(state.checkin(B, "b1", 3, False)) == ["b1"]  # closed: B has nothing left
    assert state.statistics().keys == 1
    state.discard(A)  # A's busy connection failed
    assert state.statistics() == type(state.statistics())(idle=0, busy=0, opened=2, reused=3, closed=2, keys=0)
    assert out(state.checkout(A, 4, usable)) == (None, [])


def test_a_retired_key_is_forgotten_with_its_last_connection() -> None:
    """Checkout hashes each key against the retired set while it is not empty: once a retired key's last
    busy connection is returned (or discarded) the set must not keep it (a revocation or rotation would
    otherwise cost every later request a lookup)."""
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    for _ in range(3):
        state.opened(A)
    assert state.retire(lambda key: False) == []
    assert list(state.checkin(A, "one", 0, True)) == ["one"]
    assert state._retired == {A}  # still one in flight
    state.discard(A)
    assert state._retired == {A}
    assert list(state.checkin(A, "last", 0, True)) == ["last"]
    assert not state._retired
    state.opened(B)
    state.retire(lambda key: False)
    state.discard(B)
    assert not state._retired and state.statistics().keys == 0


@pytest.mark.parametrize("drop", ["expire", "checkin-unusable", "retire", "drain"])
def test_the_remembered_slot_goes_with_its_key(drop: str) -> None:
    """The last key's slot is remembered by identity (pooled3); once the key's entry is gone, the same key
    object gets a new entry that an equal key (another snapshot's object) and the statistics see."""
    state: PoolState[tuple[object, ...], str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    state.opened(A)
    if drop == "checkin-unusable":
        assert list(state.checkin(A, "c1", 0, False)) == ["c1"]
    else:
        state.checkin(A, "c1", 0, True)
        assert out(state.checkout(A, 1, usable)) == ("c1", [])  # looked up: A's slot is remembered
        state.checkin(A, "c1", 1, True)
        closed = {"expire": lambda: state.expire(20), "retire": lambda: state.retire(lambda key: False)}.get(
            drop, state.drain
        )()
        assert closed == ["c1"]
    assert state.statistics().keys == 0
    state.opened(A)
    state.checkin(A, "c2", 30, True)
    assert state.statistics().keys == 1 and state.statistics().idle == 1
    assert out(state.checkout(tuple(list(A)), 31, usable)) == ("c2", [])  # an equal key, another object


class _CountedKey:
    """A pool key that counts how often it is hashed (a real key hashes its 8 fields each time)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hashes = 0

    def __hash__(self) -> int:
        self.hashes += 1
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _CountedKey) and other.name == self.name


def test_a_connection_per_request_finds_its_key_by_identity_and_expire_forgets_it() -> None:
    state: PoolState[_CountedKey, str] = PoolState(max_idle_per_key=4, idle_timeout=10)
    key = _CountedKey("a")
    first = 0
    for n in range(4):  # what each request does against an origin that closes after every response
        assert out(state.checkout(key, n, usable)) == (None, [])
        state.opened(key)
        assert state.statistics().keys == 1
        assert list(state.checkin(key, f"c{n}", n, False)) == [f"c{n}"]
        first = first or key.hashes
    assert key.hashes == first  # after the first request, the slot is found by identity: no hashing
    assert state.statistics() == type(state.statistics())(idle=0, busy=0, opened=4, reused=0, closed=4, keys=0)
    assert state.expire(5) == [] and not state._slots  # the empty slot goes at the next expiry
