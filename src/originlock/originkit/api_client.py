""":class:`EdgeMaterial` over the control plane's v4 API, with the standard library only.

The origin kit is meant to be installable on origins with nothing but ``cryptography``, so this uses
``urllib`` rather than an HTTP client library. Endpoints used:

- ``GET /client/v4/zones?name=Z`` - Cloudflare's zone list, to turn a zone name into its id;
- ``GET /client/v4/zones/{zone_id}/origin_tls_client_auth/edge_identity[?hostname=H]`` (originlock's own)
  -> ``{"source", "certificate_id", "certificate", "ca_bundle"}``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from originlock.originkit.material import EdgeIdentity, EdgeSource

__all__ = ["API_TOKEN_ENV", "API_URL_ENV", "DEFAULT_API_URL", "ApiEdgeMaterial", "ControlPlaneError"]

API_URL_ENV = "ORIGINLOCK_API_URL"
API_TOKEN_ENV = "ORIGINLOCK_API_TOKEN"
#: Same defaults as the rest of the CLI (cli/client.py): where `originlock serve` listens, and the admin
#: token file it writes into its data directory. Duplicated, not imported: the origin kit stays standalone.
DEFAULT_API_URL = "http://127.0.0.1:8787"
DATA_DIR_ENV = "ORIGINLOCK_DATA_DIR"
DEFAULT_DATA_DIR = "originlock-data"
_SOURCES: tuple[EdgeSource, ...] = ("hostname", "zone", "global", "none")


class ControlPlaneError(RuntimeError):
    """The control plane could not answer; the message says what to do next and never contains the token."""


@dataclass(frozen=True)
class ApiEdgeMaterial:
    """Asks the control plane at ``api_url`` (e.g. ``http://127.0.0.1:8080``) with a Bearer ``token``."""

    api_url: str
    token: str
    timeout: float = 10.0

    def __repr__(self) -> str:  # the token is a credential
        return f"ApiEdgeMaterial(api_url={self.api_url!r})"

    @classmethod
    def from_env(cls, api_url: str | None = None, token: str | None = None) -> ApiEdgeMaterial:
        """Flags win over ``ORIGINLOCK_API_URL`` / ``ORIGINLOCK_API_TOKEN``, which win over the defaults
        (``http://127.0.0.1:8787`` and ``$ORIGINLOCK_DATA_DIR/admin-token``, as `originlock serve` sets up).

        Raises:
            ControlPlaneError: no token anywhere.
        """
        url = api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
        tok = token or os.environ.get(API_TOKEN_ENV)
        if not tok:
            token_file = Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)) / "admin-token"
            if token_file.is_file():
                tok = token_file.read_text().strip()
        if not tok:
            raise ControlPlaneError(
                f"no API token: pass --token, set {API_TOKEN_ENV}, or run from the directory of `originlock serve`"
            )
        return cls(api_url=url, token=tok)

    def _get(self, path: str, query: dict[str, str] | None = None) -> Any:
        base = self.api_url.rstrip("/")
        if not base.endswith("/client/v4"):
            base += "/client/v4"
        url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ControlPlaneError(_failure(exc.code, exc.read(), path)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ControlPlaneError(f"cannot reach the control plane at {self.api_url}: {reason}") from None
        try:
            envelope = json.loads(body)
        except ValueError:
            raise ControlPlaneError(f"the control plane answered {path} with something that is not JSON") from None
        if not isinstance(envelope, dict) or not envelope.get("success"):
            raise ControlPlaneError(_failure(200, body, path))
        return envelope.get("result")

    def zone_id(self, zone: str) -> str:
        """Id of the zone named ``zone`` (a 32-hex id is taken as is). Raises LookupError when there is none."""
        if len(zone) == 32 and all(c in "0123456789abcdef" for c in zone):
            return zone
        result = self._get("/zones", {"name": zone})
        for item in result or []:
            if isinstance(item, dict) and item.get("name", zone) == zone and "id" in item:
                return str(item["id"])
        raise LookupError(f"zone {zone!r} not found; list zones with `originlock zones list`")

    def _zone_for(self, hostname: str) -> str:
        labels = hostname.rstrip(".").split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            try:
                return self.zone_id(candidate)
            except LookupError:
                continue
        raise LookupError(f"no zone contains {hostname!r}; pass --zone")

    def edge_identity(self, *, zone: str | None, hostname: str | None) -> EdgeIdentity:
        if zone is None and hostname is None:
            raise ValueError("edge_identity needs a zone or a hostname")
        zone_id = self.zone_id(zone) if zone is not None else self._zone_for(cast(str, hostname))
        query = {"hostname": hostname} if hostname else None
        result = self._get(f"/zones/{zone_id}/origin_tls_client_auth/edge_identity", query)
        return parse_identity(result)


def parse_identity(result: Any) -> EdgeIdentity:
    """Validate the ``edge_identity`` result object.

    Raises:
        ControlPlaneError: the shape is not what this client understands.
    """
    if not isinstance(result, dict) or result.get("source") not in _SOURCES:
        raise ControlPlaneError("the control plane's edge_identity answer is malformed (no valid 'source')")
    source = cast(EdgeSource, result["source"])

    def text(key: str) -> str | None:
        value = result.get(key)
        return value if isinstance(value, str) and value else None

    cert_id = result.get("certificate_id")
    return EdgeIdentity(
        source=source,
        certificate_id=None if cert_id is None else str(cert_id),
        certificate_pem=text("certificate"),
        ca_bundle_pem=text("ca_bundle"),
    )


def _failure(status: int, body: bytes, path: str) -> str:
    messages: list[str] = []
    try:
        envelope = json.loads(body)
        for err in envelope.get("errors") or []:
            messages.append(f"{err.get('code', '')} {err.get('message', '')}".strip())
    except (ValueError, AttributeError):
        pass
    detail = "; ".join(messages) or "no error message"
    hint = " (check --token / ORIGINLOCK_API_TOKEN)" if status in (401, 403) else ""
    return f"control plane answered {status} for {path}: {detail}{hint}"
