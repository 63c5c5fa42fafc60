"""The store's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Timestamps are RFC 3339 UTC strings with microseconds (``2026-11-27T10:07:13.123456Z``): they sort
as text, survive both backends unchanged and are what the API returns.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata"]

metadata = MetaData()

TS = String(32)
ID = String(36)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row (id=1): bumped by every write transaction; edges poll it to know when to rebuild a snapshot.
generation = Table(
    "generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", Integer, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_on", TS, nullable=False),
    # JSON object of Cloudflare's account settings (enforce_twofactor, ...); added by migration 6.
    Column("settings", Text, nullable=False, server_default="{}"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    # SHA-256 of the secret: a leaked database does not leak working tokens.
    Column("token_hash", String(64), nullable=False, unique=True),
    # JSON list of permission names, e.g. ["zone:read", "ssl:edit"]; ["*"] for the admin token.
    Column("permissions", Text, nullable=False),
    # JSON list of zone ids, or NULL for every zone.
    Column("zone_ids", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_on", TS, nullable=False),
)

# The token model authorisation reads (api/authz.py): Cloudflare-style policies in our terms (JSON
# [{"id", "effect", "permissions", "zones"}]) and the restrictions ``not_before``, ``expires_on`` and
# ``condition.request_ip``. One row per token; ``api_tokens.permissions``/``zone_ids`` keep a flat summary.
api_token_details = Table(
    "api_token_details",
    metadata,
    Column("token_id", ID, ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True),
    Column("policies", Text, nullable=False),
    Column("not_before", TS, nullable=True),
    Column("expires_on", TS, nullable=True),
    # JSON {"in": [CIDR...], "not_in": [CIDR...]}, or NULL for any address.
    Column("request_ip", Text, nullable=True),
    Column("modified_on", TS, nullable=False),
)

zones = Table(
    "zones",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(253), nullable=False, unique=True),
    Column("type", String(16), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_on", TS, nullable=False),
    Column("modified_on", TS, nullable=False),
)

dns_records = Table(
    "dns_records",
    metadata,
    Column("id", ID, primary_key=True),
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True),
    # Widened by migration 6: OPENPGPKEY is ten letters, and TXT/CERT/DNSKEY contents run to kilobytes.
    Column("type", String(16), nullable=False),
    Column("name", String(253), nullable=False, index=True),
    Column("content", Text, nullable=False),
    Column("proxied", Boolean, nullable=False),
    Column("ttl", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    # MX, URI (and SRV's data.priority copied here, as Cloudflare returns it); NULL for the other types.
    Column("priority", Integer, nullable=True),
    # JSON object of the structured types' fields (SRV, CAA, ...), NULL for the others.
    Column("data", Text, nullable=True),
    # JSON list of "name:value" strings.
    Column("tags", Text, nullable=False, server_default="[]"),
    # JSON object (ipv4_only, ipv6_only, flatten_cname).
    Column("settings", Text, nullable=False, server_default="{}"),
    Column("created_on", TS, nullable=False),
    Column("modified_on", TS, nullable=False),
)

zone_settings = Table(
    "zone_settings",
    metadata,
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
    Column("setting_id", String(64), primary_key=True),
    # JSON-encoded value.
    Column("value", Text, nullable=False),
    Column("modified_on", TS, nullable=False),
)

aop_certs = Table(
    "aop_certs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True),
    # "zone" or "hostname": separate id spaces in the API (error 1415 across them).
    Column("kind", String(16), nullable=False),
    Column("certificate", Text, nullable=False),
    Column("chain_pem", Text, nullable=False),
    # AES-256-GCM sealed PKCS#8 key (store/sealing.py); never selected by API reads.
    Column("key_sealed", LargeBinary, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("signature", String(64), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("expires_on", TS, nullable=False),
    Column("status", String(32), nullable=False),
    Column("uploaded_on", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # The certificate's notBefore, stored so that a snapshot compile needs no PEM parse per certificate
    # (10k of them were a tenth of a cold start). NULL in a row an older node wrote after migration 9: the
    # compile then parses ``certificate`` (store/compile.py).
    Column("not_before", TS, nullable=True),
)

hostname_associations = Table(
    "hostname_associations",
    metadata,
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
    Column("hostname", String(255), primary_key=True),
    Column("cert_id", ID, ForeignKey("aop_certs.id"), nullable=False),
    # True / False / NULL: NULL is a voided association (spec §4.3), distinct from False.
    Column("enabled", Boolean, nullable=True),
    Column("status", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

pki = Table(
    "pki",
    metadata,
    # "origin-pull-ca", "origin-pull-leaf", "edge-ca", "origin-ca"
    Column("name", String(64), primary_key=True),
    Column("cert_pem", Text, nullable=False),
    Column("key_sealed", LargeBinary, nullable=False),
    Column("created_on", TS, nullable=False),
    UniqueConstraint("name"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("token_id", ID, nullable=True),
    Column("action", String(16), nullable=False),
    Column("resource", Text, nullable=False),
)

origin_certs = Table(
    "origin_certs",
    metadata,
    # Decimal serial number: unique per CA, and what Cloudflare's Origin CA ids look like (long digits).
    Column("id", String(64), primary_key=True),
    Column("certificate", Text, nullable=False),
    Column("csr", Text, nullable=False),
    # JSON list of hostnames (may include one leading "*." wildcard each).
    Column("hostnames", Text, nullable=False),
    Column("request_type", String(32), nullable=False),
    Column("requested_validity", Integer, nullable=False),
    Column("expires_on", TS, nullable=False),
    Column("created_on", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
)

rulesets = Table(
    "rulesets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("phase", String(64), nullable=False),
    # Bumped on every change; rules carry the version they were last changed in (Cloudflare's model).
    Column("version", Integer, nullable=False),
    # JSON list of rule objects as the API returns them (id, version, action, expression, ...).
    Column("rules", Text, nullable=False),
    Column("last_updated", TS, nullable=False),
)

# Visitor-facing certificates uploaded per zone (Cloudflare's custom_certificates).
custom_certificates = Table(
    "custom_certificates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("certificate", Text, nullable=False),
    Column("key_sealed", LargeBinary, nullable=False),
    # JSON list of the names the certificate covers (SANs).
    Column("hosts", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("signature", String(64), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("bundle_method", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("expires_on", TS, nullable=False),
    Column("uploaded_on", TS, nullable=False),
    Column("modified_on", TS, nullable=False),
)

# Last verdict of the origin exposure monitor per proxied hostname.
origin_checks = Table(
    "origin_checks",
    metadata,
    Column("zone_id", ID, ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
    Column("hostname", String(255), primary_key=True),
    Column("origin", String(255), nullable=False),
    Column("verdict", String(16), nullable=False),
    # JSON list of plain-words reasons.
    Column("reasons", Text, nullable=False),
    Column("checked_at", TS, nullable=False),
    Column("previous_verdict", String(16), nullable=True),
    Column("changed_at", TS, nullable=True),
)

alert_policies = Table(
    "alert_policies",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("alert_type", String(128), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # JSON: {"webhooks": [{"id": ...}], ...} and the policy's filters.
    Column("mechanisms", Text, nullable=False),
    Column("filters", Text, nullable=False),
    Column("created", TS, nullable=False),
    Column("modified", TS, nullable=False),
)

alert_webhooks = Table(
    "alert_webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("url", Text, nullable=False),
    # The shared secret sent as cf-webhook-auth, sealed like a private key.
    Column("secret_sealed", LargeBinary, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("last_success", TS, nullable=True),
    Column("last_failure", TS, nullable=True),
)

# One row per notification to send (certificate x threshold x policy): sent once, retried with backoff.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("policy_id", ID, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("sent_at", TS, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Every version of every ruleset, as Cloudflare keeps them (GET .../versions[/{version}]).
ruleset_versions = Table(
    "ruleset_versions",
    metadata,
    Column("ruleset_id", ID, ForeignKey("rulesets.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("zone_id", ID, nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("phase", String(64), nullable=False),
    Column("rules", Text, nullable=False),
    Column("last_updated", TS, nullable=False),
)

# One row per periodic job (expiry alerts, rotation, exposure monitor): which node runs it until when, so
# that in a fleet sharing this store exactly one node does each job's work (store/leases.py).
job_leases = Table(
    "job_leases",
    metadata,
    Column("job", String(64), primary_key=True),
    # The node's id (server/leases.py: host, pid and a random part), for operators reading the table too.
    Column("holder", String(128), nullable=False),
    # When the current holder first took the lease; kept across its renewals.
    Column("acquired_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)


# What each write changed, by generation (store/changes.py): nodes that missed a NOTIFY, or poll (SQLite
# worker processes), read here which zones to recompile. Pruned to the last CHANGE_LOG_KEEP generations.
change_log = Table(
    "change_log",
    metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),
    # JSON list of zone ids.
    Column("zones", Text, nullable=False),
    Column("everything", Boolean, nullable=False),
    Column("at", TS, nullable=False),
)

# The fleet's nodes as they last reported themselves (server/registry.py): GET /client/v4/edge_nodes.
edge_nodes = Table(
    "edge_nodes",
    metadata,
    Column("id", String(128), primary_key=True),
    # "serve", "edge" or "api".
    Column("role", String(16), nullable=False),
    # Where the node listens (its edge HTTP/HTTPS and health addresses), JSON.
    Column("address", Text, nullable=False),
    # The snapshot generation its edge serves (0 for an API-only node).
    Column("generation", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
)

# One row per successful API write (GET /accounts/{id}/audit_logs): who, what, when, before and after.
# Values are the API's own JSON with secrets redacted (api/audit.py); key material never reaches them.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", TS, nullable=False, index=True),
    # NULL for user-level writes (/user/tokens), visible to unrestricted tokens only.
    Column("account_id", ID, nullable=True, index=True),
    Column("zone_id", ID, nullable=True),
    Column("zone_name", String(253), nullable=True),
    Column("token_id", ID, nullable=True),
    Column("actor_ip", String(64), nullable=True),
    # create, update, delete
    Column("action", String(16), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(255), nullable=True),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
)

# Account-level rulesets (store/account_rulesets.py): custom rulesets and one root entry point per phase.
account_rulesets = Table(
    "account_rulesets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    # custom or root
    Column("kind", String(16), nullable=False),
    Column("phase", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("rules", Text, nullable=False),
    Column("last_updated", TS, nullable=False),
)

account_ruleset_versions = Table(
    "account_ruleset_versions",
    metadata,
    Column("ruleset_id", ID, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("account_id", ID, nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("phase", String(64), nullable=False),
    Column("rules", Text, nullable=False),
    Column("last_updated", TS, nullable=False),
)
