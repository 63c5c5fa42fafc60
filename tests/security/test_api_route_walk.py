"""Every route of the served OpenAPI document, called with a token scoped to zone A, against zone B's objects.

Issue 10: "a test walks every route ... so a route added later cannot forget the check". The walk reads
``/client/v4/openapi.json``; path parameters are filled from real objects of zone B (a DNS record, AOP zone
and hostname certificates, a custom certificate, a ruleset and its rule, an Origin CA certificate, a token).
Each operation is sent with a token holding one permission on zone A (each permission in turn, then all of
them, then ``*``) and must be refused (403/404) and change nothing of B. Operations on zone A's path that
name B's objects by id must fail too. The few operations without any zone in them (listings, verify) may
answer 200 but must not show anything of B. A route whose parameter the walk cannot fill fails the test
until ``FILL`` learns it, so a new route is never skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from originlock.store.tokens import PERMISSIONS
from originlock.testing.api_env import V4, ApiEnv, api_env, csr_pem
from originlock.testing.upload_pki import UploadPki, leaf_pems

#: Operations that name no zone and may answer 200 to any token: their answer must not mention zone B.
UNZONED_LISTINGS = {
    ("GET", "/accounts"),
    ("GET", "/zones"),
    ("GET", "/user/tokens"),
    ("GET", "/user/tokens/verify"),
    ("GET", "/user/tokens/permission_groups"),
    ("GET", "/accounts/{account_id}/tokens"),
    ("GET", "/accounts/{account_id}/tokens/verify"),
    ("GET", "/accounts/{account_id}/tokens/permission_groups"),
    ("GET", "/accounts/{account_id}"),  # issue 14's account read (another branch): any token, like GET /accounts
}

#: Parameters that name one of zone B's objects (also tried under zone A's path).
B_OBJECT_PARAMS = {"record_id", "certificate_id", "hostname", "ruleset_id", "rule_id"}


@dataclass
class World:
    api: ApiEnv
    a: str
    b: str
    #: Path template suffix (up to and including the parameter) -> value naming zone B's object.
    fill: dict[str, str]
    #: Strings that must never appear in an answer to a zone-A token.
    secrets_of_b: tuple[str, ...]


def _build(api: ApiEnv, pki: UploadPki) -> World:
    a, b = api.zone("a.test"), api.zone("b.test")
    record = api.ok(
        "POST",
        f"/zones/{b}/dns_records",
        {"type": "A", "name": "www", "content": "192.0.2.10", "proxied": True, "ttl": 1},
    )
    cert, key = leaf_pems(pki.client("b.test zone"))
    zcert = api.ok("POST", f"/zones/{b}/origin_tls_client_auth", {"certificate": cert, "private_key": key})
    cert, key = leaf_pems(pki.client("www.b.test"))
    hcert = api.ok(
        "POST", f"/zones/{b}/origin_tls_client_auth/hostnames/certificates", {"certificate": cert, "private_key": key}
    )
    api.ok(
        "PUT",
        f"/zones/{b}/origin_tls_client_auth/hostnames",
        {"config": [{"hostname": "www.b.test", "cert_id": hcert["id"], "enabled": True}]},
    )
    cert, key = leaf_pems(pki.server("www.b.test"))
    custom = api.ok("POST", f"/zones/{b}/custom_certificates", {"certificate": cert, "private_key": key})
    rules = [{"action": "block", "expression": 'http.request.uri.path eq "/b"'}]
    ruleset = api.ok("PUT", f"/zones/{b}/rulesets/phases/http_request_firewall_custom/entrypoint", {"rules": rules})
    origin_cert = api.ok(
        "POST",
        "/certificates",
        {"csr": csr_pem(), "hostnames": ["www.b.test"], "request_type": "origin-ecc", "requested_validity": 7},
    )
    b_token = api.token(["dns:edit"], [b])
    b_token_id = api.ok("GET", "/user/tokens/verify", headers=b_token)["id"]
    policy = api.ok(
        "POST",
        f"/accounts/{api.account_id}/alerting/v3/policies",
        {
            "name": "p",
            "alert_type": "zone_aop_custom_certificate_expiration_type",
            "mechanisms": {},
            "filters": {"zones": [b]},
        },
    )
    webhook = api.ok(
        "POST",
        f"/accounts/{api.account_id}/alerting/v3/destinations/webhooks",
        {"name": "w", "url": "https://hooks.b.test/x"},
    )
    fill = {
        "{zone_id}": b,
        "/dns_records/{record_id}": record["id"],
        "/settings/{setting_id}": "ssl",
        "/origin_tls_client_auth/hostnames/certificates/{certificate_id}": hcert["id"],
        "/origin_tls_client_auth/{certificate_id}": zcert["id"],
        "/origin_tls_client_auth/hostnames/{hostname}": "www.b.test",
        "/custom_certificates/{certificate_id}": custom["id"],
        "/phases/{phase}": "http_request_firewall_custom",
        "/rulesets/{ruleset_id}": ruleset["id"],
        "/versions/{version}": "1",
        "/rules/{rule_id}": ruleset["rules"][0]["id"],
        f"{V4}/certificates/{{certificate_id}}": origin_cert["id"],
        "/tokens/{token_id}": b_token_id,
        "/accounts/{account_id}": api.account_id,
        "/policies/{policy_id}": policy["id"],
        "/webhooks/{webhook_id}": webhook["id"],
    }
    secrets_of_b = (
        b,
        "b.test",
        record["id"],
        zcert["id"],
        hcert["id"],
        custom["id"],
        ruleset["id"],
        origin_cert["id"],
        b_token_id,
    )
    return World(api, a, b, fill, secrets_of_b)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("walk")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
        with api_env(f"sqlite:///{data / 'store.db'}", data / "data") as api:
            yield _build(api, UploadPki.create())


def _operations(api: ApiEnv) -> list[tuple[str, str, dict[str, Any]]]:
    doc = api.client.get(f"{V4}/openapi.json").json()
    ops = [(m.upper(), path, op) for path, item in doc["paths"].items() for m, op in item.items()]
    assert len(ops) >= 60, "the OpenAPI document lost its routes"
    return ops


def _fill(world: World, template: str, zone: str | None = None) -> str:
    def value(match: re.Match[str]) -> str:
        prefix = template[: match.end()]
        if match.group(0) == "{zone_id}" and zone is not None:
            return zone
        keys = [k for k in world.fill if prefix.endswith(k)]
        assert keys, f"{template}: the walk cannot fill {match.group(0)}; add it to FILL in this test"
        return world.fill[max(keys, key=len)]

    return re.sub(r"\{[a-z_]+\}", value, template)


def _body(world: World) -> dict[str, Any]:
    """One body for every write: each field a route might read, each naming zone B or granting everything."""
    b = world.b
    return {
        "name": "www.b.test",
        "type": "A",
        "content": "192.0.2.99",
        "ttl": 1,
        "proxied": False,
        "value": "off",
        "enabled": False,
        "paused": True,
        "priority": 1,
        "certificate": "x",
        "private_key": "x",
        "config": [
            {
                "hostname": "www.b.test",
                "cert_id": world.fill["/origin_tls_client_auth/hostnames/certificates/{certificate_id}"],
                "enabled": None,
            }
        ],
        "csr": csr_pem(),
        "hostnames": ["www.b.test"],
        "request_type": "origin-ecc",
        "requested_validity": 7,
        "permissions": ["*"],
        "zones": [b],
        "account": {"id": world.api.account_id},
        "rules": [],
        "action": "log",
        "expression": "true",
        "alert_type": "zone_aop_custom_certificate_expiration_type",
        "mechanisms": {},
        "filters": {"zones": [b]},
        "url": "https://hooks.b.test/y",
    }


def _state_of_b(world: World) -> Any:
    api, b = world.api, world.b
    return (
        api.ok("GET", f"/zones/{b}"),
        api.ok("GET", f"/zones/{b}/dns_records"),
        api.ok("GET", f"/zones/{b}/settings"),
        api.ok("GET", f"/zones/{b}/origin_tls_client_auth"),
        api.ok("GET", f"/zones/{b}/origin_tls_client_auth/hostnames/certificates"),
        api.ok("GET", f"/zones/{b}/origin_tls_client_auth/settings"),
        api.ok("GET", f"/zones/{b}/custom_certificates"),
        api.ok("GET", f"/zones/{b}/rulesets/phases/http_request_firewall_custom/entrypoint"),
        api.ok("GET", f"/certificates/{world.fill[f'{V4}/certificates/{{certificate_id}}']}"),
        [t for t in api.ok("GET", "/user/tokens") if t["zones"] != [world.a]],  # this walk adds zone-A tokens
        api.ok("GET", f"/accounts/{api.account_id}/alerting/v3/policies"),
        api.ok("GET", f"/accounts/{api.account_id}/alerting/v3/destinations/webhooks"),
    )


GRANTS = [[p] for p in PERMISSIONS] + [list(PERMISSIONS), ["*"]]


@pytest.mark.parametrize("permissions", GRANTS, ids=["+".join(g) if len(g) == 1 else f"all-{len(g)}" for g in GRANTS])
def test_a_zone_a_token_reaches_nothing_of_zone_b(world: World, permissions: list[str]) -> None:
    api = world.api
    before = _state_of_b(world)
    token = api.token(permissions, [world.a])
    body = _body(world)
    failures: list[str] = []
    for method, template, op in _operations(api):
        route = template.removeprefix(V4)
        query = {p["name"]: world.b for p in op.get("parameters", []) if p["in"] == "query" and p["name"] == "zone_id"}
        attempts = [_fill(world, template)]
        names_b_object = B_OBJECT_PARAMS & set(re.findall(r"\{([a-z_]+)\}", template))
        # Zone A's path naming B's object gets past the permission check only with a wide grant.
        wide = len(permissions) > 1 or permissions == ["*"]
        if "{zone_id}" in template and names_b_object and wide:
            attempts.append(_fill(world, template, zone=world.a))  # zone A's path, zone B's object
        for url in attempts:
            r = api.client.request(method, url, headers=token, params=query, json=body if "requestBody" in op else None)
            if (method, route) in UNZONED_LISTINGS:
                leaked = [s for s in world.secrets_of_b if s in r.text]
                if r.status_code not in (200, 403) or leaked:
                    failures.append(f"{method} {url}: {r.status_code} shows {leaked}")
            elif r.status_code not in (403, 404):
                failures.append(f"{method} {url}: {r.status_code} {r.text[:160]}")
    assert not failures, "\n".join(failures)
    assert _state_of_b(world) == before


def test_the_zone_a_token_does_work_on_zone_a(world: World) -> None:
    """The control: refusals above are about the scope, not a token that works nowhere."""
    api = world.api
    token = api.token(list(PERMISSIONS), [world.a])
    reads = [
        (m, p) for m, p, _ in _operations(api) if m == "GET" and re.fullmatch(rf"{V4}/zones/\{{zone_id\}}[a-z_/]*", p)
    ]
    assert len(reads) >= 8
    for _, template in reads:
        url = template.replace("{zone_id}", world.a)
        r = api.client.get(url, headers=token)
        # An entry point that does not exist yet is a 404 for the admin too.
        assert r.status_code == 200 or (r.status_code == 404 and "entrypoint" in url), (url, r.text)
