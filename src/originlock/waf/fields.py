"""The scheme: every field name the Rules language knows, with its type.

The table is Cloudflare's HTTP field list (spec §1.9) as registered by the wirefilter build that
``octorules-wirefilter`` ships, plus ``http.request.uri.path`` and the deprecated ``ip.geoip.*``
aliases. Every field parses; which ones have a value at run time is decided by ``context.py``
(``KNOWN_FIELDS``). The rest (bot and threat scores, GeoIP, response fields in request phases)
evaluate as *missing*, so rules imported from Cloudflare keep parsing (spec §1.9, last paragraph).

``true`` and ``false`` are registered as constant Bool fields: OSS wirefilter has no Bool literal,
but Cloudflare's API examples use ``"expression": "true"`` for ``execute`` rules (spec §1.2).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from .types import BOOL, BYTES, INT, IP, Type, array_of, map_of

__all__ = ["CONSTANT_FIELDS", "FIELD_TYPES", "field_type"]

_CODES: Final = {
    "B": BYTES,
    "I": INT,
    "T": BOOL,
    "P": IP,
    "AB": array_of(BYTES),
    "AI": array_of(INT),
    "AAB": array_of(array_of(BYTES)),
    "MAB": map_of(array_of(BYTES)),
    "MAI": map_of(array_of(INT)),
    "MI": map_of(INT),
}

# name, then a type code from _CODES; one per line so a diff shows one field.
_TABLE: Final = """
    cf.api_gateway.auth_id_present T
    cf.api_gateway.fallthrough_detected T
    cf.api_gateway.request_violates_schema T
    cf.bot_management.corporate_proxy T
    cf.bot_management.detection_ids AI
    cf.bot_management.ja3_hash B
    cf.bot_management.ja4 B
    cf.bot_management.js_detection.passed T
    cf.bot_management.score I
    cf.bot_management.static_resource T
    cf.bot_management.verified_bot T
    cf.client.bot T
    cf.edge.client_tcp T
    cf.edge.l4.delivery_rate I
    cf.edge.server_ip P
    cf.edge.server_port I
    cf.hostname.metadata B
    cf.llm.prompt.custom_topic_categories MI
    cf.llm.prompt.detected T
    cf.llm.prompt.injection_score I
    cf.llm.prompt.pii_categories AB
    cf.llm.prompt.pii_detected T
    cf.llm.prompt.token_count I
    cf.llm.prompt.unsafe_topic_categories AB
    cf.llm.prompt.unsafe_topic_detected T
    cf.random_seed B
    cf.ray_id B
    cf.response.1xxx_code I
    cf.response.error_type B
    cf.threat_score I
    cf.timings.client_quic_rtt_msec I
    cf.timings.client_tcp_rtt_msec I
    cf.timings.edge_msec I
    cf.timings.origin_ttfb_msec I
    cf.timings.worker_msec I
    cf.tls_cipher B
    cf.tls_ciphers_sha1 B
    cf.tls_client_auth.cert_chain_rfc9440 B
    cf.tls_client_auth.cert_chain_rfc9440_too_large T
    cf.tls_client_auth.cert_fingerprint_sha1 B
    cf.tls_client_auth.cert_fingerprint_sha256 B
    cf.tls_client_auth.cert_issuer_dn B
    cf.tls_client_auth.cert_issuer_dn_legacy B
    cf.tls_client_auth.cert_issuer_dn_rfc2253 B
    cf.tls_client_auth.cert_issuer_serial B
    cf.tls_client_auth.cert_issuer_ski B
    cf.tls_client_auth.cert_not_after B
    cf.tls_client_auth.cert_not_before B
    cf.tls_client_auth.cert_presented T
    cf.tls_client_auth.cert_revoked T
    cf.tls_client_auth.cert_rfc9440 B
    cf.tls_client_auth.cert_rfc9440_too_large T
    cf.tls_client_auth.cert_serial B
    cf.tls_client_auth.cert_ski B
    cf.tls_client_auth.cert_subject_dn B
    cf.tls_client_auth.cert_subject_dn_legacy B
    cf.tls_client_auth.cert_subject_dn_rfc2253 B
    cf.tls_client_auth.cert_verified T
    cf.tls_client_extensions_sha1 B
    cf.tls_client_extensions_sha1_le B
    cf.tls_client_hello_length I
    cf.tls_client_random B
    cf.tls_version B
    cf.verified_bot_category B
    cf.waf.auth_detected T
    cf.waf.content_scan.has_failed T
    cf.waf.content_scan.has_malicious_obj T
    cf.waf.content_scan.has_obj T
    cf.waf.content_scan.num_malicious_obj I
    cf.waf.content_scan.num_obj I
    cf.waf.content_scan.obj_results AB
    cf.waf.content_scan.obj_sizes AI
    cf.waf.content_scan.obj_types AB
    cf.waf.credential_check.password_leaked T
    cf.waf.credential_check.username_and_password_leaked T
    cf.waf.credential_check.username_leaked T
    cf.waf.credential_check.username_password_similar T
    cf.waf.score I
    cf.waf.score.class B
    cf.waf.score.rce I
    cf.waf.score.sqli I
    cf.waf.score.xss I
    cf.worker.upstream_zone B
    cf.zone.name B
    cf.zone.plan B
    http.cookie B
    http.host B
    http.referer B
    http.request.accepted_languages AB
    http.request.body.form MAB
    http.request.body.form.names AB
    http.request.body.form.values AB
    http.request.body.mime B
    http.request.body.multipart MAB
    http.request.body.multipart.content_dispositions AAB
    http.request.body.multipart.content_transfer_encodings AAB
    http.request.body.multipart.content_types AAB
    http.request.body.multipart.filenames AAB
    http.request.body.multipart.names AAB
    http.request.body.multipart.values AB
    http.request.body.raw B
    http.request.body.size I
    http.request.body.truncated T
    http.request.cookies MAB
    http.request.full_uri B
    http.request.headers MAB
    http.request.headers.names AB
    http.request.headers.truncated T
    http.request.headers.values AB
    http.request.jwt.claims.aud MAB
    http.request.jwt.claims.aud.names AB
    http.request.jwt.claims.aud.values AB
    http.request.jwt.claims.iat.sec MAI
    http.request.jwt.claims.iat.sec.names AB
    http.request.jwt.claims.iat.sec.values AI
    http.request.jwt.claims.iss MAB
    http.request.jwt.claims.iss.names AB
    http.request.jwt.claims.iss.values AB
    http.request.jwt.claims.jti MAB
    http.request.jwt.claims.jti.names AB
    http.request.jwt.claims.jti.values AB
    http.request.jwt.claims.nbf.sec MAI
    http.request.jwt.claims.nbf.sec.names AB
    http.request.jwt.claims.nbf.sec.values AI
    http.request.jwt.claims.sub MAB
    http.request.jwt.claims.sub.names AB
    http.request.jwt.claims.sub.values AB
    http.request.method B
    http.request.timestamp.msec I
    http.request.timestamp.sec I
    http.request.uri B
    http.request.uri.args MAB
    http.request.uri.args.names AB
    http.request.uri.args.values AB
    http.request.uri.path B
    http.request.uri.path.extension B
    http.request.uri.query B
    http.request.version B
    http.response.code I
    http.response.content_type.media_type B
    http.response.headers MAB
    http.response.headers.names AB
    http.response.headers.values AB
    http.user_agent B
    http.x_forwarded_for B
    ip.geoip.asnum I
    ip.geoip.continent B
    ip.geoip.country B
    ip.geoip.is_in_european_union T
    ip.geoip.subdivision_1_iso_code B
    ip.geoip.subdivision_2_iso_code B
    ip.src P
    ip.src.asnum I
    ip.src.city B
    ip.src.continent B
    ip.src.country B
    ip.src.is_in_european_union T
    ip.src.lat B
    ip.src.lon B
    ip.src.metro_code B
    ip.src.postal_code B
    ip.src.region B
    ip.src.region_code B
    ip.src.subdivision_1_iso_code B
    ip.src.subdivision_2_iso_code B
    ip.src.timezone.name B
    raw.http.request.full_uri B
    raw.http.request.uri B
    raw.http.request.uri.args MAB
    raw.http.request.uri.args.names AB
    raw.http.request.uri.args.values AB
    raw.http.request.uri.path B
    raw.http.request.uri.path.extension B
    raw.http.request.uri.query B
    raw.http.response.headers MAB
    raw.http.response.headers.names AB
    raw.http.response.headers.values AB
    ssl T
"""

CONSTANT_FIELDS: Final = MappingProxyType({"true": True, "false": False})
"""Bool constants written as identifiers (Cloudflare's ``"expression": "true"``)."""


def _load() -> dict[str, Type]:
    out: dict[str, Type] = {}
    for line in _TABLE.strip().splitlines():
        name, code = line.split()
        out[name] = _CODES[code]
    for name in CONSTANT_FIELDS:
        out[name] = BOOL
    return out


FIELD_TYPES: Final = MappingProxyType(_load())


def field_type(name: str) -> Type | None:
    """The type of field ``name``, or None when the scheme has no such field."""
    return FIELD_TYPES.get(name)
