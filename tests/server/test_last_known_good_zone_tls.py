"""The last-known-good copy keeps each route's tls_1_3 and security_header fields; a copy saved before they
existed reads as Cloudflare's defaults (TLS 1.3 on, no fields); a saved field that the builder could not
have made (a tampered file) is refused rather than sent."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from originlock.server.last_known_good import _Codec
from originlock.snapshot.assembly import ZoneParts
from originlock.store.sealing import KeySealer
from originlock.testing.pki import TestPki, make_route
from originlock.tls.hsts import security_header_fields

FIELDS = security_header_fields(
    {"strict_transport_security": {"enabled": True, "max_age": 600, "preload": True, "nosniff": True}}
)


def _saved(tls_1_3: bool, fields: tuple[tuple[bytes, bytes], ...], http2: bool = True) -> tuple[_Codec, str]:
    codec = _Codec(KeySealer(os.urandom(32)))
    route = replace(make_route("www.example.test"), tls_1_3=tls_1_3, security_headers=fields, http2=http2)
    return codec, codec.zone(
        ZoneParts(zone_id=route.zone_id, routes={route.hostname: route}, created={route.hostname: "t"})
    )


def _as_format_1(body: str) -> dict[str, object]:
    """The zone body as format 1 wrote it: every field of every route, in one row per route."""
    data = json.loads(body)
    hosts = data.pop("hosts")
    data["routes"] = [
        [name, created, shape[0], origin, record_type, *shape[1:]]
        for name, created, origin, record_type, shape in zip(
            hosts["names"],
            hosts["created"],
            hosts["origins"],
            hosts["types"],
            (hosts["shapes"][i] for i in hosts["shape"]),
            strict=True,
        )
    ]
    return data


def test_the_fields_survive_a_save() -> None:
    codec, body = _saved(False, FIELDS, http2=False)
    route = codec.load_zone("z", body, TestPki().deployment()).routes["www.example.test"]
    assert route.tls_1_3 is False and route.security_headers == FIELDS and route.http2 is False


def test_an_older_copy_reads_as_the_defaults() -> None:
    codec, body = _saved(False, FIELDS)
    data = _as_format_1(body)
    full = codec.load_zone("z", json.dumps(data), TestPki().deployment()).routes["www.example.test"]
    assert full.tls_1_3 is False and full.security_headers == FIELDS  # format 1 with every field still loads
    data["routes"] = [row[:12] for row in data["routes"]]  # as saved before tls_1_3 and security_header
    route = codec.load_zone("z", json.dumps(data), TestPki().deployment()).routes["www.example.test"]
    assert route.tls_1_3 is True and route.security_headers == () and route.http2 is True


def test_a_copy_saved_before_http2_reads_it_as_on() -> None:
    codec, body = _saved(True, (), http2=False)
    data = _as_format_1(body)
    data["routes"] = [row[:14] for row in data["routes"]]
    route = codec.load_zone("z", json.dumps(data), TestPki().deployment()).routes["www.example.test"]
    assert route.http2 is True


def test_a_tampered_field_is_refused() -> None:
    codec, body = _saved(True, FIELDS)
    bad = [["Strict-Transport-Security", "max-age=1\r\nSet-Cookie: a=b"]]
    data = json.loads(body)
    data["hosts"]["shapes"][0][9] = bad
    with pytest.raises(ValueError):
        codec.load_zone("z", json.dumps(data), TestPki().deployment())
    old = _as_format_1(body)
    old["routes"][0][13] = bad  # type: ignore[index]
    with pytest.raises(ValueError):
        codec.load_zone("z", json.dumps(old), TestPki().deployment())
