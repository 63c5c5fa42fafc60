"""Every zone setting Cloudflare's API lists: its allowed values and Cloudflare's default.

Pure data plus one validator. The edge acts on a few of them (``ENFORCED``, listed in docs/api.md); the others
are stored and returned so that Terraform's ``cloudflare_zone_setting`` and the SDK can manage a whole zone.
A value outside the allowed set is refused with Cloudflare's 1007, and the message lists what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from originlock.store.errors import Invalid

__all__ = ["ENFORCED", "SETTINGS", "SettingSpec", "validate_value"]

ON_OFF = ("on", "off")


@dataclass(frozen=True)
class SettingSpec:
    #: Allowed values, when the setting is an enumeration (strings or integers).
    allowed: tuple[Any, ...]
    default: Any
    #: For settings that are not enumerations: checks and normalises a value (raises ValueError with a reason).
    check: Callable[[Any], Any] | None = None
    #: Cloudflare marks a few settings read-only for every plan (advanced_ddos).
    editable: bool = True
    #: Human description of a non-enumerated value, for the 400 message.
    shape: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def _number(low: float, high: float, *, integer: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
            raise ValueError("not a number")
        if not low <= value <= high:
            raise ValueError("out of range")
        return int(value) if integer else value

    return check


def _string(limit: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError("not a string")
        return value

    return check


def _strings(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        raise ValueError("not a list of strings")
    return value


def _object(fields: dict[str, type | tuple[type, ...]]) -> Callable[[Any], Any]:
    """An object setting: known keys with typed values; a partial object is merged by the caller."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("not an object")
        for key, item in value.items():
            if key not in fields:
                raise ValueError(f"unknown key {key}")
            kinds = fields[key]
            if isinstance(item, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
                raise ValueError(f"{key} has the wrong type")
            if not isinstance(item, kinds):
                raise ValueError(f"{key} has the wrong type")
        return value

    return check


_HSTS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "enabled": bool,
    "max_age": (int, float),
    "include_subdomains": bool,
    "preload": bool,
    "nosniff": bool,
}


def _security_header(value: Any) -> Any:
    if not isinstance(value, dict) or set(value) - {"strict_transport_security"}:
        raise ValueError("not an object with strict_transport_security")
    hsts = value.get("strict_transport_security", {})
    _object(_HSTS_FIELDS)(hsts)
    if not 0 <= hsts.get("max_age", 0) <= 31536000 * 2:
        raise ValueError("max_age out of range")
    return value


def _enum(*allowed: Any, default: Any) -> SettingSpec:
    return SettingSpec(tuple(allowed), default)


def _free(default: Any, check: Callable[[Any], Any], shape: str) -> SettingSpec:
    return SettingSpec((), default, check=check, shape=shape)


_TTLS = (30, 60, 300, 1200, 1800, 3600, 7200, 10800, 14400, 18000, 28800, 43200, 57600, 72000, 86400)
_TTLS_LONG = (*_TTLS, 172800, 259200, 345600, 432000, 518400, 604800)
_UPLOADS = (*range(100, 501, 25), *range(1000, 5001, 500))
_CHALLENGE_TTLS = (300, 900, 1800, 2700, 3600, 7200, 10800, 14400, 28800, 57600, 86400, 604800, 2592000, 31536000)
_APO_FIELDS: dict[str, type | tuple[type, ...]] = {
    "enabled": bool,
    "cf": bool,
    "wordpress": bool,
    "wp_plugin": bool,
    "hostnames": list,
    "cache_by_device_type": bool,
}

#: Cloudflare's defaults, except ``ssl`` (``full``: what Automatic SSL/TLS picks for an origin that answers
#: HTTPS) and ``tls_client_auth`` (``off``, as dashboards show it, despite the OpenAPI default).
SETTINGS: dict[str, SettingSpec] = {
    "0rtt": _enum(*ON_OFF, default="off"),
    "advanced_ddos": SettingSpec(ON_OFF, "on", editable=False),
    "aegis": _free({"enabled": False}, _object({"enabled": bool, "pool_id": str}), "an object {enabled, pool_id}"),
    "always_online": _enum(*ON_OFF, default="off"),
    "always_use_https": _enum(*ON_OFF, default="off"),
    "automatic_https_rewrites": _enum(*ON_OFF, default="on"),
    "automatic_platform_optimization": _free(
        {k: (False if t is bool else []) for k, t in _APO_FIELDS.items()},
        _object(_APO_FIELDS),
        "an object {enabled, cf, wordpress, wp_plugin, hostnames, cache_by_device_type}",
    ),
    "brotli": _enum(*ON_OFF, default="on"),
    "browser_cache_ttl": _free(14400, _number(0, 31536000, integer=True), "an integer from 0 to 31536000"),
    "browser_check": _enum(*ON_OFF, default="on"),
    "cache_level": _enum("aggressive", "basic", "simplified", default="aggressive"),
    "challenge_ttl": _enum(*_CHALLENGE_TTLS, default=1800),
    "china_network_enabled": _enum(*ON_OFF, default="off"),
    "ciphers": _free([], _strings, "a list of cipher names"),
    "cname_flattening": _enum("flatten_at_root", "flatten_all", default="flatten_at_root"),
    "content_converter": _enum(*ON_OFF, default="off"),
    "development_mode": _enum(*ON_OFF, default="off"),
    "early_hints": _enum(*ON_OFF, default="off"),
    "edge_cache_ttl": _enum(*_TTLS_LONG, default=7200),
    "email_obfuscation": _enum(*ON_OFF, default="on"),
    "h2_prioritization": _enum("on", "off", "custom", default="off"),
    "hotlink_protection": _enum(*ON_OFF, default="off"),
    "http2": _enum(*ON_OFF, default="on"),
    "http3": _enum(*ON_OFF, default="on"),
    "image_resizing": _enum("on", "off", "open", default="off"),
    "ip_geolocation": _enum(*ON_OFF, default="on"),
    "ipv6": _enum(*ON_OFF, default="on"),
    "max_upload": _enum(*_UPLOADS, default=100),
    "min_tls_version": _enum("1.0", "1.1", "1.2", "1.3", default="1.0"),
    "mirage": _enum(*ON_OFF, default="off"),
    "nel": _free({"enabled": False}, _object({"enabled": bool}), "an object {enabled}"),
    "opportunistic_encryption": _enum(*ON_OFF, default="on"),
    "opportunistic_onion": _enum(*ON_OFF, default="on"),
    "orange_to_orange": _enum(*ON_OFF, default="off"),
    "origin_error_page_pass_thru": _enum(*ON_OFF, default="off"),
    "origin_h2_max_streams": _free(100, _number(1, 1000, integer=True), "an integer from 1 to 1000"),
    "origin_max_http_version": _enum("1", "2", default="1"),
    "polish": _enum("off", "lossless", "lossy", default="off"),
    "pre_render": _enum(*ON_OFF, default="off"),
    "prefetch_preload": _enum(*ON_OFF, default="off"),
    "privacy_pass": _enum(*ON_OFF, default="on"),
    "proxy_read_timeout": _free(100, _number(1, 6000, integer=False), "a number of seconds from 1 to 6000"),
    "pseudo_ipv4": _enum("off", "add_header", "overwrite_header", default="off"),
    "redirects_for_ai_training": _enum(*ON_OFF, default="off"),
    "replace_insecure_js": _enum(*ON_OFF, default="on"),
    "response_buffering": _enum(*ON_OFF, default="off"),
    "rocket_loader": _enum(*ON_OFF, default="off"),
    "search_for_agents": _enum(*ON_OFF, default="off"),
    "security_header": _free(
        {
            "strict_transport_security": {
                "enabled": False,
                "max_age": 0,
                "include_subdomains": False,
                "preload": False,
                "nosniff": False,
            }
        },
        _security_header,
        "an object {strict_transport_security: {enabled, max_age, include_subdomains, preload, nosniff}}",
    ),
    "security_level": _enum("off", "essentially_off", "low", "medium", "high", "under_attack", default="medium"),
    "server_side_exclude": _enum(*ON_OFF, default="on"),
    "sha1_support": _enum(*ON_OFF, default="off"),
    "sort_query_string_for_cache": _enum(*ON_OFF, default="off"),
    # origin_pull is the legacy name some tools still send for Full (strict) with AOP; kept as before.
    "ssl": _enum("off", "flexible", "full", "strict", "origin_pull", default="full"),
    "ssl_recommender": _free(False, lambda v: v if isinstance(v, bool) else _raise("not a boolean"), "true or false"),
    "tls_1_2_only": _enum(*ON_OFF, default="off"),
    "tls_1_3": _enum("on", "off", "zrt", default="on"),
    "tls_client_auth": _enum(*ON_OFF, default="off"),
    "transformations": _enum("on", "off", "open", default="off"),
    "transformations_allowed_origins": _free("", _string(4096), "a string"),
    "true_client_ip_header": _enum(*ON_OFF, default="off"),
    "waf": _enum(*ON_OFF, default="off"),
    "webmcp_enabled": _enum(*ON_OFF, default="off"),
    "webmcp_packs": _free("", _string(4096), "a string"),
    "webp": _enum(*ON_OFF, default="off"),
    "websockets": _enum(*ON_OFF, default="on"),
    # originlock extension: the deployment issues and rotates the zone's AOP certificate (store/auto_rotation.py).
    "aop_auto_rotation": _enum(*ON_OFF, default="off"),
    # originlock extension: the FIPS profile for this zone (store/fips.py).
    "fips": _enum(*ON_OFF, default="off"),
    # originlock extension: the origin exposure monitor checks this zone's origins (docs/origin-kit.md).
    "origin_exposure_monitor": _enum(*ON_OFF, default="on"),
}

#: Settings the edge acts on (docs/api.md says how); every other one is stored and returned only.
ENFORCED = (
    "ssl",
    "tls_client_auth",
    "min_tls_version",
    "tls_1_3",
    "security_header",
    "always_use_https",
    "aop_auto_rotation",
    "fips",
    "origin_exposure_monitor",
    "websockets",
    "http2",
)


def _raise(reason: str) -> Any:
    raise ValueError(reason)


def _allowed_text(spec: SettingSpec) -> str:
    if spec.allowed:
        return ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in spec.allowed)
    return spec.shape


def validate_value(setting_id: str, spec: SettingSpec, value: Any, current: Any) -> Any:
    """The value to store, or :class:`Invalid` (1007) naming what is allowed. Objects merge into ``current``."""
    if not spec.editable:
        raise Invalid(f"zone setting {setting_id} is read-only", 1008)
    if spec.allowed:
        # Integers may arrive as strings from some tools ("300"); enumerations compare on the value's type.
        numeric = isinstance(spec.allowed[0], int)
        candidate = int(value) if numeric and isinstance(value, str) and value.isdigit() else value
        if isinstance(candidate, bool) or candidate not in spec.allowed:
            allowed = _allowed_text(spec)
            raise Invalid(f"Invalid value for zone setting {setting_id}: allowed values are {allowed}", 1007)
        return candidate
    assert spec.check is not None
    merged = value
    if isinstance(value, dict) and isinstance(current, dict):
        merged = {**current, **value}
        if setting_id == "security_header" and isinstance(value.get("strict_transport_security"), dict):
            merged["strict_transport_security"] = {
                **current.get("strict_transport_security", {}),
                **value["strict_transport_security"],
            }
    try:
        return spec.check(merged)
    except ValueError:
        raise Invalid(f"Invalid value for zone setting {setting_id}: expected {_allowed_text(spec)}", 1007) from None
