"""Every zone setting Cloudflare lists: accepted, validated (the 400 names what is allowed), returned with
Cloudflare's default, and editable in bulk in one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from originlock.store.setting_catalog import SETTINGS
from originlock.testing.sdk_client import bearer, sdk

V4 = "/client/v4"

# Store-independent behaviour (the API's shapes): one backend is enough; the stores' own tests cover both.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
#: A valid non-default value per setting the SDK 5.x can edit (settings.edit's setting ids).
CHANGES: dict[str, Any] = {
    "0rtt": "on",
    "always_online": "on",
    "automatic_https_rewrites": "off",
    "brotli": "off",
    "browser_cache_ttl": 7200,
    "browser_check": "off",
    "cache_level": "basic",
    "challenge_ttl": 3600,
    "ciphers": ["ECDHE-ECDSA-AES128-GCM-SHA256"],
    "cname_flattening": "flatten_all",
    "development_mode": "on",
    "early_hints": "on",
    "edge_cache_ttl": 3600,
    "email_obfuscation": "off",
    "h2_prioritization": "on",
    "hotlink_protection": "on",
    "http2": "off",
    "http3": "off",
    "image_resizing": "open",
    "ip_geolocation": "off",
    "ipv6": "off",
    "max_upload": 200,
    "min_tls_version": "1.2",
    "mirage": "on",
    "nel": {"enabled": True},
    "opportunistic_encryption": "off",
    "opportunistic_onion": "off",
    "orange_to_orange": "on",
    "origin_error_page_pass_thru": "on",
    "origin_max_http_version": "2",
    "polish": "lossy",
    "prefetch_preload": "on",
    "privacy_pass": "off",
    "proxy_read_timeout": 250.5,
    "pseudo_ipv4": "add_header",
    "response_buffering": "on",
    "rocket_loader": "on",
    "security_level": "high",
    "server_side_exclude": "off",
    "sort_query_string_for_cache": "on",
    "ssl": "strict",
    "tls_1_2_only": "on",
    "tls_1_3": "zrt",
    "tls_client_auth": "on",
    "true_client_ip_header": "on",
    "waf": "on",
    "webp": "on",
    "websockets": "off",
}


@SQLITE_ONLY
def test_every_setting_has_cloudflares_default_and_round_trips(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("settings.test")
    listed = {s["id"]: s for s in api.client.get(f"{V4}/zones/{zone}/settings", headers=api.admin).json()["result"]}
    assert set(listed) == set(SETTINGS)
    for setting_id, spec in SETTINGS.items():
        assert listed[setting_id]["value"] == spec.default, setting_id
        assert listed[setting_id]["editable"] is spec.editable, setting_id
    assert listed["security_header"]["value"]["strict_transport_security"]["enabled"] is False
    assert (listed["websockets"]["value"], listed["http2"]["value"], listed["tls_1_3"]["value"]) == ("on", "on", "on")
    cf = sdk(api.client, bearer(api.admin))
    for setting_id, value in CHANGES.items():
        edited = cf.zones.settings.edit(setting_id, zone_id=zone, value=value)  # type: ignore[call-overload]
        assert edited.id == setting_id and edited.value is not None, setting_id
        raw = api.client.get(f"{V4}/zones/{zone}/settings/{setting_id}", headers=api.admin).json()["result"]
        assert raw["value"] == value and raw["modified_on"], setting_id


INVALID: list[tuple[str, Any, str]] = [
    ("always_online", "maybe", '"on", "off"'),
    ("security_level", "extreme", '"under_attack"'),
    ("edge_cache_ttl", 31, "30, 60, 300"),
    ("browser_cache_ttl", -1, "an integer from 0 to 31536000"),
    ("proxy_read_timeout", "slow", "a number of seconds"),
    ("nel", {"enabled": "yes"}, "an object {enabled}"),
    ("security_header", {"strict_transport_security": {"max_age": "forever"}}, "strict_transport_security"),
    ("ciphers", "AES", "a list of cipher names"),
    ("http2", True, '"on", "off"'),
]


@SQLITE_ONLY
def test_invalid_values_name_what_is_allowed(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("settings.test")
    for setting_id, value, allowed in INVALID:
        r = api.client.patch(f"{V4}/zones/{zone}/settings/{setting_id}", json={"value": value}, headers=api.admin)
        assert r.status_code == 400, r.text
        error = r.json()["errors"][0]
        assert error["code"] == 1007 and error["message"].startswith(f"Invalid value for zone setting {setting_id}")
        assert allowed in error["message"], error


@SQLITE_ONLY
def test_read_only_and_partial_object_settings(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("settings.test")
    base = f"{V4}/zones/{zone}/settings"
    r = api.client.patch(f"{base}/advanced_ddos", json={"value": "off"}, headers=api.admin)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 1008
    hsts = {"strict_transport_security": {"enabled": True, "max_age": 86400}}
    r = api.client.patch(f"{base}/security_header", json={"value": hsts}, headers=api.admin)
    got = r.json()["result"]["value"]["strict_transport_security"]
    # A partial object merges into the current value, as Cloudflare's PATCH does.
    assert got == {"enabled": True, "max_age": 86400, "include_subdomains": False, "preload": False, "nosniff": False}
    r = api.client.patch(f"{base}/ssl_recommender", json={"enabled": True}, headers=api.admin)
    assert r.status_code == 200 and r.json()["result"]["enabled"] is True


def test_bulk_patch_is_all_or_nothing(api) -> None:  # type: ignore[no-untyped-def]
    zone = api.zone("settings.test")
    base = f"{V4}/zones/{zone}/settings"
    r = api.client.patch(
        base,
        json={"items": [{"id": "ssl", "value": "strict"}, {"id": "always_use_https", "value": "on"}]},
        headers=api.admin,
    )
    assert r.status_code == 200, r.text
    assert [(s["id"], s["value"]) for s in r.json()["result"]] == [("ssl", "strict"), ("always_use_https", "on")]
    r = api.client.patch(
        base,
        json={"items": [{"id": "ssl", "value": "flexible"}, {"id": "brotli", "value": "sometimes"}]},
        headers=api.admin,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("items[1]: Invalid value")
    assert api.client.get(f"{base}/ssl", headers=api.admin).json()["result"]["value"] == "strict"
    r = api.client.patch(base, json={"items": [{"id": "nonsense", "value": "on"}]}, headers=api.admin)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 1006
    assert api.client.patch(base, json={"items": []}, headers=api.admin).status_code == 400
