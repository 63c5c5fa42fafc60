"""A small client for the control plane, for CLI commands (stdlib only, so the CLI adds no dependency)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ApiClient", "CliError", "add_api_arguments", "client_from_args", "read_text"]

DEFAULT_API_URL = "http://127.0.0.1:8787"


class CliError(Exception):
    """A failure to report to the user in one line, with what to do next."""


def read_text(path: str | Path, flag: str) -> str:
    """The text of a file named on the command line, or a CliError that names the flag and the file."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{flag} {path} is not a text (PEM) file") from None


@dataclass(frozen=True)
class ApiClient:
    base_url: str
    token: str

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.base_url.rstrip("/") + "/client/v4" + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = json.loads(resp.read() or b"null")
        except ValueError:
            raise CliError(
                f"{self.base_url} did not answer with JSON: is it the control plane (`originlock serve --api`)? "
                "Set --api-url or ORIGINLOCK_API_URL"
            ) from None
        except urllib.error.HTTPError as exc:
            try:
                errors = json.loads(exc.read()).get("errors") or []
            except (ValueError, AttributeError):
                # Not the v4 envelope: something else listens there (the edge, another server).
                raise CliError(
                    f"{self.base_url} answered {exc.code} ({exc.reason}) without the API's JSON: is it the control "
                    "plane (`originlock serve --api`)? Set --api-url or ORIGINLOCK_API_URL"
                ) from None
            detail = "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in errors) or exc.reason
            raise CliError(f"API answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(
                f"cannot reach the API at {self.base_url} ({getattr(exc, 'reason', exc)}); "
                "is `originlock serve` running? Set --api-url or ORIGINLOCK_API_URL"
            ) from None
        return payload.get("result") if isinstance(payload, dict) else payload

    def zone_id(self, name_or_id: str) -> str:
        """Accept a zone name or a 32-hex id."""
        if len(name_or_id) == 32 and all(c in "0123456789abcdef" for c in name_or_id):
            return name_or_id
        zones = self.request("GET", "/zones", query={"name": name_or_id})
        if not zones:
            raise CliError(f"no zone named {name_or_id}; create it with `originlock zones add {name_or_id}`")
        return str(zones[0]["id"])


def add_api_arguments(parser: Any) -> None:
    parser.add_argument(
        "--api-url", default=None, help=f"control plane URL (env ORIGINLOCK_API_URL; default {DEFAULT_API_URL})"
    )
    parser.add_argument(
        "--token", default=None, help="API token (env ORIGINLOCK_API_TOKEN; default ./originlock-data/admin-token)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def client_from_args(args: Any) -> ApiClient:
    url = args.api_url or os.environ.get("ORIGINLOCK_API_URL") or DEFAULT_API_URL
    token = args.token or os.environ.get("ORIGINLOCK_API_TOKEN")
    if not token:
        default_file = Path(os.environ.get("ORIGINLOCK_DATA_DIR", "originlock-data")) / "admin-token"
        if default_file.exists():
            token = default_file.read_text().strip()
    if not token:
        raise CliError(
            "no API token: pass --token, set ORIGINLOCK_API_TOKEN, or run from the directory of `originlock serve`"
        )
    return ApiClient(url, token)
