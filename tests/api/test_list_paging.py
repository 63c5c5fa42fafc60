"""Every list endpoint honours page/per_page, reports result_info right, and the SDK's auto-pager stops.

The walk is generic: every GET route of the served OpenAPI document whose answer is a list must be named
in ``PAGED`` (walked with the SDK's auto-pager across several pages) or ``SINGLE`` (the SDK reads it as one
page); a new list endpoint that is in neither fails here until someone decides which it is.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from cloudflare import Cloudflare
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from originlock.store import zones as zone_store
from originlock.testing.sdk_client import bearer, sdk
from originlock.testing.upload_pki import UploadPki, leaf_pems

V4 = "/client/v4"

# Store-independent behaviour (the API's shapes): one backend is enough; the stores' own tests cover both.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
N = 7  # more than one page at per_page=5, not a multiple of it
#: List routes the SDK pages through (V4PagePaginationArray): per_page=5 makes N items two pages.
PAGED = {
    "/accounts",
    "/zones",
    "/zones/{zone_id}/dns_records",
    "/zones/{zone_id}/custom_certificates",
    "/certificates",
    "/accounts/{account_id}/alerting/v3/history",
    "/accounts/{account_id}/audit_logs",
}
#: Lists the SDK reads as a single page (SinglePage / cursor pages): they must return everything at once.
SINGLE = {
    "/zones/{zone_id}/settings",
    "/zones/{zone_id}/origin_tls_client_auth",
    "/zones/{zone_id}/origin_tls_client_auth/hostnames/certificates",
    "/zones/{zone_id}/origin_tls_client_auth/exposure",
    "/zones/{zone_id}/rulesets",
    "/zones/{zone_id}/rulesets/{ruleset_id}/versions",
    "/zones/{zone_id}/rulesets/phases/{phase}/entrypoint/versions",
    "/accounts/{account_id}/alerting/v3/policies",
    "/accounts/{account_id}/alerting/v3/destinations/webhooks",
    "/accounts/{account_id}/alerting/v3/available_alerts",
    "/accounts/{account_id}/rulesets",
    "/accounts/{account_id}/rulesets/{ruleset_id}/versions",
    "/edge_nodes",  # a fleet's nodes (originlock's own route): a handful, one page
    "/accounts/{account_id}/rulesets/phases/{phase}/entrypoint/versions",
    "/user/tokens",  # sec-api's: paged by its own test
    "/accounts/{account_id}/tokens",
    "/user/tokens/permission_groups",
    "/accounts/{account_id}/tokens/permission_groups",
}


def _csr(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _walk(pager: Iterable[Any]) -> list[str]:
    ids = [str(item.id) for item in pager]
    assert len(ids) == len(set(ids)), "the auto-pager saw an item twice"
    return ids


def test_every_list_endpoint_pages_with_the_sdk(api, pki: UploadPki) -> None:  # type: ignore[no-untyped-def]
    cf = sdk(api.client, bearer(api.admin))
    with api.store.write() as conn:
        for i in range(N - 1):
            zone_store.create_account(conn, f"acct-{i}")
    zone_ids = [api.zone(f"p{i}.example.test") for i in range(N)]
    zone = zone_ids[0]
    records = [
        cf.dns.records.create(zone_id=zone, name=f"r{i}", type="TXT", content=f"v{i}", ttl=1).id  # type: ignore[union-attr]
        for i in range(N * 2)
    ]
    certs = []
    for i in range(N):
        leaf = pki.server(f"c{i}.p0.example.test")
        cert, key = leaf_pems(leaf)
        certs.append(cf.custom_certificates.create(zone_id=zone, certificate=cert, private_key=key).id)  # type: ignore[union-attr]
    origin = [
        cf.origin_ca_certificates.create(
            csr=_csr("p0.example.test"), hostnames=["p0.example.test"], request_type="origin-ecc", requested_validity=7
        ).id  # type: ignore[union-attr]
        for _ in range(N)
    ]
    walks: dict[str, tuple[Callable[[], Iterable[Any]], int]] = {
        "/accounts": (lambda: cf.accounts.list(per_page=5), N),
        "/zones": (lambda: cf.zones.list(per_page=5), N),
        "/zones/{zone_id}/dns_records": (lambda: cf.dns.records.list(zone_id=zone, per_page=5), len(records)),
        "/zones/{zone_id}/custom_certificates": (lambda: cf.custom_certificates.list(zone_id=zone, per_page=5), N),
        "/certificates": (lambda: cf.origin_ca_certificates.list(zone_id=zone, limit=5), N),
    }
    walks["/accounts/{account_id}/alerting/v3/history"] = (
        lambda: cf.alerting.history.list(account_id=api.account_id, per_page=5),
        0,
    )
    # Every write above is an audit entry: N zones, 2N records, N certificates, N Origin CA certificates.
    walks["/accounts/{account_id}/audit_logs"] = (
        lambda: cf.audit_logs.list(account_id=api.account_id, per_page=5),
        N * 5,
    )
    assert set(walks) == PAGED
    for route, (walk, expected) in walks.items():
        ids = _walk(walk())
        assert expected == -1 or len(ids) == expected, (route, len(ids), expected)
    assert set(_walk(cf.dns.records.list(zone_id=zone, per_page=5))) == set(records)
    assert set(_walk(cf.custom_certificates.list(zone_id=zone, per_page=5))) == set(certs)
    assert set(_walk(cf.zones.list(per_page=5))) == set(zone_ids)
    assert set(origin) <= set(_walk(cf.origin_ca_certificates.list(zone_id=zone)))


def _fill(path: str, ids: dict[str, str]) -> str:
    for key, value in ids.items():
        path = path.replace("{" + key + "}", value)
    return path


@SQLITE_ONLY
def test_result_info_and_every_list_route_is_classified(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("info.example.test")
    for i in range(N):
        r = api.client.post(
            f"{V4}/zones/{zone}/dns_records",
            json={"type": "A", "name": f"h{i}", "content": "10.0.0.1"},
            headers=api.admin,
        )
        assert r.status_code == 200, r.text
    for page, count in ((1, 5), (2, 2), (3, 0)):
        body = api.client.get(
            f"{V4}/zones/{zone}/dns_records", params={"page": page, "per_page": 5}, headers=api.admin
        ).json()
        assert body["result_info"] == {"page": page, "per_page": 5, "count": count, "total_count": N, "total_pages": 2}
    # Every GET collection route: classify it, and check the paged ones against page/per_page.
    ids = {"zone_id": zone, "account_id": api.account_id, "phase": "http_request_firewall_custom"}
    spec = api.client.get(f"{V4}/openapi.json").json()
    seen = set()
    for path, methods in spec["paths"].items():
        route = path.removeprefix(V4)
        if "get" not in methods or any(f"{{{p}}}" in route for p in ("record_id", "certificate_id", "hostname")):
            continue
        if "{ruleset_id}" in route or "{version}" in route or "{policy_id}" in route or "{webhook_id}" in route:
            continue
        r = api.client.get(_fill(path, ids), params={"zone_id": zone}, headers=api.admin)
        if r.status_code != 200 or "json" not in r.headers["content-type"]:
            continue  # e.g. the BIND export
        if not isinstance(r.json().get("result"), list):
            continue
        seen.add(route)
        assert route in PAGED | SINGLE, f"{route} returns a list: add it to PAGED or SINGLE"
        info = r.json().get("result_info")
        if route in PAGED:
            assert info is not None and {"page", "per_page", "count", "total_count", "total_pages"} <= set(info), route
            paged = api.client.get(
                _fill(path, ids), params={"zone_id": zone, "per_page": 5, "page": 99}, headers=api.admin
            )
            assert paged.json()["result"] == [] and paged.json()["result_info"]["page"] == 99, route
    assert {"/zones", "/accounts", "/zones/{zone_id}/dns_records"} <= seen


@SQLITE_ONLY
def test_zone_and_dns_filters_in_sdk_syntax(api) -> None:  # type: ignore[no-untyped-def]
    cf: Cloudflare = sdk(api.client, bearer(api.admin))
    suffix = secrets.token_hex(2)
    for name in ("alpha", "beta", "alphabet"):
        api.zone(f"{name}-{suffix}.test")
    names = lambda **kw: sorted(z.name for z in cf.zones.list(**kw))  # noqa: E731
    assert names(name=f"alpha-{suffix}.test") == [f"alpha-{suffix}.test"]
    assert names(name="starts_with:alpha") == [f"alpha-{suffix}.test", f"alphabet-{suffix}.test"]
    assert names(name="contains:bet") == [f"alphabet-{suffix}.test", f"beta-{suffix}.test"]
    assert names(name=f"ends_with:{suffix}.test") == sorted(f"{n}-{suffix}.test" for n in ("alpha", "beta", "alphabet"))
    assert names(name=f"not_equal:beta-{suffix}.test") == [f"alpha-{suffix}.test", f"alphabet-{suffix}.test"]
    assert names(status="pending") == []
    assert len(names(status="active")) == 3
    assert names(name="starts_with:beta", status="pending", match="any") == [f"beta-{suffix}.test"]
    desc = [z.name for z in cf.zones.list(direction="desc")]
    assert desc == sorted(desc, reverse=True)

    zone = next(iter(cf.zones.list(name=f"alpha-{suffix}.test"))).id
    made = {}
    for i in range(6):
        rec = cf.dns.records.create(
            zone_id=zone,
            name=f"www{i}" if i % 2 else f"api{i}",
            type="TXT",
            content=f"Token-{i}",
            ttl=1,
            comment="keep" if i < 2 else None,
            tags=[f"env:{'prod' if i < 3 else 'dev'}", "team:edge"] if i else [],
        )
        made[i] = rec
    zname = f"alpha-{suffix}.test"

    def got(**kw: Any) -> list[str]:
        return sorted(r.name for r in cf.dns.records.list(zone_id=zone, **kw))

    assert got(name={"exact": f"www1.{zname}"}) == [f"www1.{zname}"]
    assert got(name={"startswith": "api"}) == [f"api0.{zname}", f"api2.{zname}", f"api4.{zname}"]
    assert got(name={"endswith": f"3.{zname}"}) == [f"www3.{zname}"]
    assert got(name={"contains": "ww"}) == [f"www1.{zname}", f"www3.{zname}", f"www5.{zname}"]
    assert got(content={"exact": "Token-2"}) == [f"api2.{zname}"]
    assert got(content={"exact": "token-2"}) == []  # exact content is case-sensitive
    assert got(content={"contains": "token-4"}) == [f"api4.{zname}"]
    assert got(comment={"present": "x"}) == [f"api0.{zname}", f"www1.{zname}"]
    assert got(tag={"exact": "env:prod"}) == [f"api2.{zname}", f"www1.{zname}"]
    assert got(tag={"present": "team"}) == sorted(r.name for i, r in made.items() if i)  # type: ignore[union-attr]
    assert got(tag={"absent": "env"}) == [f"api0.{zname}"]
    assert got(tag={"exact": "env:dev", "startswith": "team:ed"}, tag_match="all") == [
        f"api4.{zname}",
        f"www3.{zname}",
        f"www5.{zname}",
    ]
    assert got(name={"exact": f"api0.{zname}"}, content={"exact": "Token-5"}, match="any") == [
        f"api0.{zname}",
        f"www5.{zname}",
    ]
    assert got(name={"exact": f"api0.{zname}"}, content={"exact": "Token-5"}) == []
    assert got(type="A") == []
    ordered = [r.content for r in cf.dns.records.list(zone_id=zone, order="content", direction="desc")]
    assert ordered == sorted(ordered, reverse=True)
    bad = api.client.get(f"{V4}/zones/{zone}/dns_records", params={"tag.exact": "no-colon"}, headers=api.admin)
    assert bad.status_code == 400 and "tag-name" in bad.text
    bad = api.client.get(f"{V4}/zones/{zone}/dns_records", params={"order": "nope"}, headers=api.admin)
    assert bad.status_code == 400
