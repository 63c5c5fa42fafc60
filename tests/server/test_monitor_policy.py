"""The exposure monitor's policy as plain values: what is checked, when, what is recorded, when to notify."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from originlock.server.monitor_policy import (
    ALERT_TYPE,
    SETTING_ID,
    CheckTarget,
    MonitorConfig,
    PreviousCheck,
    check_spacing,
    due_targets,
    exposure_event,
    next_record,
    plan_targets,
    was_locked,
)
from originlock.snapshot.model import SslMode
from originlock.store.settings import SETTINGS
from originlock.testing.pki import TestPki, make_route, make_snapshot

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


def test_plan_keeps_tls_pulls_of_exact_names_outside_opted_out_zones(pki: TestPki) -> None:
    cert = pki.client("edge.example.test")
    snap = make_snapshot(
        pki,
        make_route("www.example.test", ssl_mode=SslMode.STRICT, client_cert=cert),
        make_route("app.example.test", "2001:db8::1", ssl_mode=SslMode.FULL),
        make_route("pull.example.test", ssl_mode=SslMode.ORIGIN_PULL),
        make_route("flex.example.test", ssl_mode=SslMode.FLEXIBLE),
        make_route("off.example.test", ssl_mode=SslMode.OFF),
        make_route("*.example.test"),
        make_route("a.other.test", zone="other.test"),
        make_route("b.quiet.test", zone="quiet.test"),
    )
    quiet = hashlib.md5(b"quiet.test").hexdigest()
    targets = plan_targets(snap, opted_out={quiet}, port=8443)
    assert [t.hostname for t in targets] == [
        "app.example.test", "pull.example.test", "www.example.test", "a.other.test",
    ]  # fmt: skip
    app, www = targets[0], targets[2]
    assert app.url == "https://[2001:db8::1]:8443/" and app.origin_label == "[2001:db8::1]:8443"
    assert www.client_cert is cert and www.key == (www.zone_id, "www.example.test")
    assert "PRIVATE KEY" not in repr(www)  # the target holds the key in memory, never in its repr


def _target(pki: TestPki, hostname: str, **kw: object) -> CheckTarget:
    base: dict[str, object] = dict(
        zone_id="z" * 32, zone_name="example.test", hostname=hostname, origin="127.0.0.1", port=443,
        ssl_mode=SslMode.FULL, client_cert=None,
    )  # fmt: skip
    return CheckTarget(**{**base, **kw})  # type: ignore[arg-type]


def test_due_first_the_new_and_changed_then_the_longest_waiting(pki: TestPki) -> None:
    a, b, c, d = (_target(pki, f"{n}.example.test") for n in "abcd")
    last = {
        a.key: (0.0, a.signature),  # checked at 0, due at 100
        b.key: (50.0, b.signature),  # due at 150
        c.key: (90.0, "some other origin"),  # changed since: due now
    }  # d: never checked
    assert due_targets([a, b, c, d], last, now=99.0, interval=100.0) == [c, d]
    assert due_targets([a, b, c, d], last, now=150.0, interval=100.0) == [c, d, a, b]
    # Anything that can change the verdict changes the signature.
    moved = _target(pki, "a.example.test", origin="10.0.0.1")
    recert = _target(pki, "a.example.test", client_cert=pki.client("x"))
    broken = _target(pki, "a.example.test", client_cert_error="expired")
    strict = _target(pki, "a.example.test", ssl_mode=SslMode.STRICT)
    assert len({a.signature, moved.signature, recert.signature, broken.signature, strict.signature}) == 5


def test_spacing_and_config_validation() -> None:
    assert check_spacing(30) == 2.0 and check_spacing(60) == 1.0
    for bad in ({"interval": 0}, {"checks_per_minute": 0}, {"origin_https_port": 0}, {"probe_timeout": 0}):
        with pytest.raises(ValueError):
            MonitorConfig(**bad)
    assert MonitorConfig().interval == 3600.0


def test_first_check_is_a_change_without_notification() -> None:
    rec = next_record(None, "LOCKED", T0)
    assert (rec.verdict, rec.previous_verdict, rec.changed_at) == ("LOCKED", None, T0)
    assert rec.changed and not rec.notify
    # An origin first seen open is recorded (and shown), but it was never locked: nothing changed for the worse.
    assert next_record(None, "OPEN", T0).notify is False


def test_same_verdict_keeps_history() -> None:
    prev = PreviousCheck("LOCKED", "MISCONFIGURED", T0)
    rec = next_record(prev, "LOCKED", T1)
    assert (rec.previous_verdict, rec.changed_at, rec.changed, rec.notify) == ("MISCONFIGURED", T0, False, False)


def test_locked_to_open_notifies_once() -> None:
    first = next_record(PreviousCheck("LOCKED", None, T0), "OPEN", T1)
    assert (first.verdict, first.previous_verdict, first.changed_at, first.notify) == ("OPEN", "LOCKED", T1, True)
    again = next_record(PreviousCheck(first.verdict, first.previous_verdict, first.changed_at), "OPEN", T1)
    assert again.notify is False and again.changed is False


def test_an_outage_between_locked_and_open_does_not_hide_the_change() -> None:
    down = next_record(PreviousCheck("LOCKED", None, T0), "UNREACHABLE", T1)
    assert down.previous_verdict == "LOCKED" and not down.notify
    still_down = next_record(PreviousCheck("UNREACHABLE", "LOCKED", T1), "UNREACHABLE", T1)
    assert still_down.previous_verdict == "LOCKED"
    back_open = next_record(PreviousCheck("UNREACHABLE", still_down.previous_verdict, T1), "OPEN", T1)
    assert back_open.notify is True and back_open.previous_verdict == "UNREACHABLE"


@pytest.mark.parametrize(
    ("verdict", "previous", "locked"),
    [
        ("LOCKED", None, True),
        ("UNREACHABLE", "LOCKED", True),
        ("UNREACHABLE", "OPEN", False),
        ("MISCONFIGURED", "LOCKED", False),
        ("OPEN", "LOCKED", False),
    ],
)
def test_was_locked(verdict: str, previous: str | None, locked: bool) -> None:
    assert was_locked(PreviousCheck(verdict, previous, T0)) is locked
    assert was_locked(None) is False


def test_other_transitions_to_open_do_not_notify() -> None:
    for before in ("MISCONFIGURED", "UNREACHABLE"):
        assert next_record(PreviousCheck(before, None, T0), "OPEN", T1).notify is False
    assert next_record(PreviousCheck("LOCKED", None, T0), "MISCONFIGURED", T1).notify is False


def test_event_is_plain_json_without_key_material(pki: TestPki) -> None:
    cert = pki.client("edge.example.test")
    target = _target(pki, "app.example.test", client_cert=cert)
    rec = next_record(PreviousCheck("LOCKED", None, T0), "OPEN", T1)
    event = exposure_event(target, rec, ["accepts TLS without a client certificate"], T1, was="LOCKED")
    assert event["alert_type"] == ALERT_TYPE and event["hostname"] == "app.example.test"
    assert (event["verdict"], event["previous_verdict"], event["origin"]) == ("OPEN", "LOCKED", "127.0.0.1:443")
    assert event["checked_at"] == T1.isoformat()
    text = repr(event)
    assert "PRIVATE KEY" not in text and "CERTIFICATE" not in text


def test_opt_out_setting_is_a_zone_setting_defaulting_on() -> None:
    spec = SETTINGS[SETTING_ID]
    assert spec.default == "on" and set(spec.allowed) == {"on", "off"}
