"""DNS as a zone's full record set, through the official SDK: every type, comment and tags, atomic batch,
BIND export and import (multipart, as the SDK sends it)."""

from __future__ import annotations

from typing import Any

import pytest
from cloudflare import Cloudflare, NotFoundError

from originlock.testing.sdk_client import bearer, sdk

V4 = "/client/v4"

# Store-independent behaviour (the API's shapes): one backend is enough; the stores' own tests cover both.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
ZONE = "records.test"
# One of each type Cloudflare accepts: (type, fields sent, content read back).
EVERY_TYPE: list[tuple[str, dict[str, Any], str]] = [
    ("A", {"content": "192.0.2.1", "proxied": True}, "192.0.2.1"),
    ("AAAA", {"content": "2001:DB8::1"}, "2001:db8::1"),
    ("CNAME", {"content": "Target.Example.NET.", "proxied": True}, "target.example.net"),
    ("MX", {"content": "mail.records.test", "priority": 10}, "mail.records.test"),
    ("NS", {"content": "ns1.example.net"}, "ns1.example.net"),
    ("PTR", {"content": "host.example.net"}, "host.example.net"),
    ("TXT", {"content": "v=spf1 include:_spf.example.net ~all"}, "v=spf1 include:_spf.example.net ~all"),
    ("OPENPGPKEY", {"content": "bWVzc2FnZQ=="}, "bWVzc2FnZQ=="),
    ("CAA", {"data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}}, '0 issue "letsencrypt.org"'),
    ("CERT", {"data": {"type": 1, "key_tag": 2, "algorithm": 8, "certificate": "AAEC"}}, "1 2 8 AAEC"),
    ("DNSKEY", {"data": {"flags": 257, "protocol": 3, "algorithm": 13, "public_key": "AAEC"}}, "257 3 13 AAEC"),
    ("DS", {"data": {"key_tag": 2371, "algorithm": 13, "digest_type": 2, "digest": "abcd"}}, "2371 13 2 ABCD"),
    ("HTTPS", {"data": {"priority": 1, "target": ".", "value": 'alpn="h2,h3"'}}, '1 . alpn="h2,h3"'),
    (
        "SVCB",
        {"data": {"priority": 1, "target": "svc.example.net", "value": "port=8443"}},
        "1 svc.example.net port=8443",
    ),
    (
        "LOC",
        {
            "data": {
                "lat_degrees": 37,
                "lat_minutes": 46,
                "lat_seconds": 46,
                "lat_direction": "N",
                "long_degrees": 122,
                "long_minutes": 23,
                "long_seconds": 35,
                "long_direction": "W",
                "altitude": 0,
                "size": 100,
                "precision_horz": 0,
                "precision_vert": 0,
            }
        },
        "37 46 46.000 N 122 23 35.000 W 0.00m 100.00m 0.00m 0.00m",
    ),
    (
        "NAPTR",
        {
            "data": {
                "order": 100,
                "preference": 10,
                "flags": "S",
                "service": "SIP+D2U",
                "regex": "",
                "replacement": "_sip._udp.records.test",
            }
        },
        '100 10 "S" "SIP+D2U" "" _sip._udp.records.test',
    ),
    ("SMIMEA", {"data": {"usage": 3, "selector": 1, "matching_type": 1, "certificate": "00ff"}}, "3 1 1 00FF"),
    ("TLSA", {"data": {"usage": 3, "selector": 1, "matching_type": 1, "certificate": "00ff"}}, "3 1 1 00FF"),
    ("SSHFP", {"data": {"algorithm": 4, "type": 2, "fingerprint": "12ab"}}, "4 2 12AB"),
    (
        "SRV",
        {"data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip.records.test"}},
        "5 5060 sip.records.test",
    ),
    ("URI", {"data": {"weight": 1, "target": "https://example.net/"}, "priority": 10}, '1 "https://example.net/"'),
]


@pytest.fixture
def cf_zone(api) -> tuple[Cloudflare, str]:  # type: ignore[no-untyped-def]
    return sdk(api.client, bearer(api.admin)), api.zone(ZONE)


def _name(rtype: str) -> str:
    return {"SRV": "_sip._tcp", "TLSA": "_443._tcp", "SMIMEA": "x._smimecert"}.get(rtype, rtype.lower())


def test_every_type_is_stored_and_returned(api, cf_zone) -> None:  # type: ignore[no-untyped-def]
    cf, zone = cf_zone
    made = {}
    for rtype, fields, content in EVERY_TYPE:
        record = cf.dns.records.create(zone_id=zone, type=rtype, name=_name(rtype), ttl=300, **fields)  # type: ignore[call-overload]
        assert record.type == rtype and record.content == content, (rtype, record)
        assert record.proxiable is (rtype in ("A", "AAAA", "CNAME")), rtype
        made[rtype] = record
    assert made["MX"].priority == 10 and made["SRV"].priority == 10 and made["URI"].priority == 10
    assert made["SRV"].data.port == 5060  # type: ignore[union-attr]
    got = cf.dns.records.get(made["CAA"].id, zone_id=zone)
    assert got.data.tag == "issue" and got.data.value == "letsencrypt.org"  # type: ignore[union-attr]
    assert {r.type for r in cf.dns.records.list(zone_id=zone)} == {t for t, _, _ in EVERY_TYPE}
    # Content alone (what a zone file holds) gives the same data.
    srv = cf.dns.records.create(
        zone_id=zone, type="SRV", name="_xmpp._tcp", ttl=1, content="5 5222 xmpp.records.test", priority=20
    )  # type: ignore[call-overload]
    assert srv.data.weight == 5 and srv.data.priority == 20  # type: ignore[union-attr]


INVALID: list[tuple[dict[str, Any], int, str]] = [
    ({"type": "TXT", "name": "t", "content": "x", "proxied": True}, 9004, "cannot be proxied"),
    ({"type": "A", "name": "a", "content": "10.0.0.300"}, 9005, "not an IP"),
    ({"type": "AAAA", "name": "a", "content": "10.0.0.1"}, 9006, "IPv6"),
    ({"type": "CNAME", "name": "c", "content": "not a name"}, 9007, "CNAME"),
    ({"type": "MX", "name": "m", "content": "mail.test"}, 1004, "priority is required"),
    ({"type": "CAA", "name": "c", "data": {"flags": 0, "tag": "bogus", "value": "x"}}, 1004, "data.tag"),
    (
        {"type": "SRV", "name": "_s._tcp", "data": {"priority": 1, "weight": 1, "port": 70000, "target": "x.test"}},
        1004,
        "port",
    ),
    (
        {"type": "DS", "name": "d", "data": {"key_tag": 1, "algorithm": 1, "digest_type": 1, "digest": "xyz"}},
        1004,
        "hexadecimal",
    ),
    ({"type": "SSHFP", "name": "s"}, 1004, "data is required"),
    ({"type": "TXT", "name": "t", "content": "x" * 2049}, 1004, "2048"),
    ({"type": "A", "name": "bad name!", "content": "10.0.0.1"}, 9000, "invalid"),
    ({"type": "A", "name": "t", "content": "10.0.0.1", "tags": [":nope"]}, 1004, "tag"),
]


@SQLITE_ONLY
def test_invalid_contents_are_refused_with_cloudflare_codes(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone(ZONE)
    for body, code, words in INVALID:
        r = api.client.post(f"{V4}/zones/{zone}/dns_records", json=body, headers=api.admin)
        assert r.status_code == 400, r.text
        error = r.json()["errors"][0]
        assert error["code"] == code and words.lower() in error["message"].lower(), (body, error)


@SQLITE_ONLY
def test_comment_and_tags_round_trip_and_patch(cf_zone) -> None:  # type: ignore[no-untyped-def]
    cf, zone = cf_zone
    rec = cf.dns.records.create(
        zone_id=zone, type="A", name="app", content="192.0.2.7", ttl=1, comment="web", tags=["Owner:ops", "env:prod"]
    )
    assert rec.comment == "web" and rec.tags == ["env:prod", "owner:ops"]  # type: ignore[union-attr]
    patched = cf.dns.records.edit(rec.id, zone_id=zone, type="A", name="app", ttl=1, tags=["env:dev"], comment=None)  # type: ignore[union-attr]
    assert patched.tags == ["env:dev"] and patched.comment is None and patched.content == "192.0.2.7"  # type: ignore[union-attr]


def test_batch_is_atomic(api, cf_zone) -> None:  # type: ignore[no-untyped-def]
    cf, zone = cf_zone
    a = cf.dns.records.create(zone_id=zone, type="A", name="a", content="192.0.2.1", ttl=1)
    b = cf.dns.records.create(zone_id=zone, type="A", name="b", content="192.0.2.2", ttl=1)
    c = cf.dns.records.create(zone_id=zone, type="TXT", name="c", content="old", ttl=1)
    out = cf.dns.records.batch(
        zone_id=zone,
        deletes=[{"id": a.id}],  # type: ignore[union-attr]
        patches=[{"id": b.id, "content": "192.0.2.22"}],  # type: ignore[union-attr, list-item]
        puts=[{"id": c.id, "type": "TXT", "name": "c", "content": "new", "ttl": 300}],  # type: ignore[union-attr, list-item]
        posts=[{"type": "MX", "name": "@", "content": "mx.records.test", "priority": 5, "ttl": 1}],  # type: ignore[list-item]
    )
    assert [r.id for r in out.deletes] == [a.id]  # type: ignore[union-attr]
    assert out.patches[0].content == "192.0.2.22" and out.puts[0].content == "new"  # type: ignore[union-attr, index]
    assert out.posts[0].type == "MX"  # type: ignore[union-attr, index]
    before = sorted((r.name, r.content) for r in cf.dns.records.list(zone_id=zone))
    # The last operation fails: nothing of the batch may remain, and the error points at it.
    r = api.client.post(
        f"{V4}/zones/{zone}/dns_records/batch",
        json={
            "deletes": [{"id": b.id}],  # type: ignore[union-attr]
            "posts": [
                {"type": "A", "name": "ok", "content": "192.0.2.9"},
                {"type": "A", "name": "bad", "content": "nope"},
            ],
        },
        headers=api.admin,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["source"]["pointer"] == "/posts/1", r.text
    assert sorted((r.name, r.content) for r in cf.dns.records.list(zone_id=zone)) == before
    with pytest.raises(NotFoundError):
        cf.dns.records.batch(zone_id=zone, deletes=[{"id": "0" * 32}])


ZONE_FILE = """\
$ORIGIN records.test.
$TTL 3600
; a comment line
@       IN  SOA ns1.example.net. admin.records.test. ( 1 7200 3600 1209600 3600 )
@           A     192.0.2.10 ; cf_tags=cf-proxied:true
www   300   IN  CNAME records.test.
@       IN  MX  10 mail
mail        A     192.0.2.25
            TXT   "first half " "second half"
_sip._tcp   SRV   10 5 5060 sip.example.net.
@           CAA   0 issuewild ";"
_ftp._tcp   URI   10 1 "ftp://ftp.example.net/public"
"""


def test_bind_import_and_export_round_trip(api, cf_zone) -> None:  # type: ignore[no-untyped-def]
    cf, zone = cf_zone
    result = cf.dns.records.import_(zone_id=zone, file=ZONE_FILE, proxied="false")
    assert result is not None and result.recs_added == 8 and result.total_records_parsed == 8
    records = {(r.name, r.type): r for r in cf.dns.records.list(zone_id=zone)}
    assert records[(ZONE, "A")].proxied is True and records[("mail.records.test", "A")].proxied is False
    assert records[("mail.records.test", "TXT")].content == "first half second half"
    assert records[("www.records.test", "CNAME")].ttl == 300
    assert records[(ZONE, "MX")].content == "mail.records.test" and records[(ZONE, "MX")].priority == 10
    assert records[("_sip._tcp.records.test", "SRV")].data.target == "sip.example.net"  # type: ignore[union-attr]
    uri = records[("_ftp._tcp.records.test", "URI")]
    assert uri.priority == 10 and uri.data.target == "ftp://ftp.example.net/public"  # type: ignore[union-attr]
    exported = cf.dns.records.export(zone_id=zone)
    assert "records.test.\t3600\tIN\tA\t192.0.2.10 ; cf_tags=cf-proxied:true" in exported
    assert "_sip._tcp.records.test.\t3600\tIN\tSRV\t10 5 5060 sip.example.net." in exported
    # Importing the export again adds nothing; into an empty zone it rebuilds the same set.
    assert cf.dns.records.import_(zone_id=zone, file=exported).recs_added == 0  # type: ignore[union-attr]
    other = api.zone("copy.test")
    copied = cf.dns.records.import_(zone_id=other, file=exported.replace("records.test.", "copy.test."))
    assert copied.recs_added == 8  # type: ignore[union-attr]
    assert {(r.type, r.content.replace("records.test", "copy.test"), r.proxied) for r in records.values()} == {
        (r.type, r.content, r.proxied) for r in cf.dns.records.list(zone_id=other)
    }
    bad = api.client.post(
        f"{V4}/zones/{zone}/dns_records/import", files={"file": ("z.txt", b"x IN A not-an-ip\n")}, headers=api.admin
    )
    assert bad.status_code == 400 and "line 1" in bad.json()["errors"][0]["message"]
    assert api.client.post(f"{V4}/zones/{zone}/dns_records/import", json={}, headers=api.admin).status_code == 400
