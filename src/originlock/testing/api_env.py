"""The control plane in-process (FastAPI's TestClient over a real store) with helpers for security tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from originlock.server.bootstrap import bootstrap
from originlock.store.db import Store
from originlock.store.deadline import StoreTimeouts
from originlock.web import control_plane_app

__all__ = ["FUNCTIONAL_TIMEOUTS", "V4", "ApiEnv", "api_env", "csr_pem"]

V4 = "/client/v4"

#: The API's store deadlines for tests of what it answers, not of when. The product's deadlines (a 0.5-s
#: ping, 3-s transactions, 1 s for a pooled connection) answer 503 on a store that stalls that long, by
#: design; a loaded CI machine stalls that long at times (a PostgreSQL bootstrap and a certificate upload
#: timed out at load 10 in session 15), and a test about settings or certificates then fails. The deadlines
#: themselves are tests/store/test_store_outage.py's subject, with the product's values.
FUNCTIONAL_TIMEOUTS = StoreTimeouts(ping=5.0, connect_wait=None, statement=30.0, lock=30.0, transaction=30.0, pool=30.0)


@dataclass
class ApiEnv:
    client: TestClient
    store: Store
    admin: dict[str, str]
    account_id: str

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None, **params: Any) -> Any:
        return self.client.request(method, f"{V4}{path}", headers=headers, json=body, params=params or None)

    def ok(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        r = self.call(method, path, headers or self.admin, body)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def zone(self, name: str) -> str:
        return str(self.ok("POST", "/zones", {"name": name, "account": {"id": self.account_id}})["id"])

    def token(
        self, permissions: list[str], zones: list[str] | None = None, *, by: dict[str, str] | None = None, **extra: Any
    ) -> dict[str, str]:
        body = {"name": "t", "permissions": permissions, "zones": zones, **extra}
        return {"Authorization": f"Bearer {self.ok('POST', '/user/tokens', body, by)['value']}"}


@contextmanager
def api_env(
    store_url: str,
    data_dir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    **app_options: Any,
) -> Iterator[ApiEnv]:
    """A bootstrapped deployment (admin token, account, CAs) and a client whose address is ``client``."""
    deployment = bootstrap(data_dir, store_url, timeouts=FUNCTIONAL_TIMEOUTS)
    assert deployment.new_admin_token
    app = control_plane_app(deployment.store, clock=clock, **app_options)
    try:
        with TestClient(app, raise_server_exceptions=False, client=client) as test_client:
            admin = {"Authorization": f"Bearer {deployment.new_admin_token}"}
            yield ApiEnv(test_client, deployment.store, admin, deployment.account_id)
    finally:
        deployment.store.close()


def csr_pem(common_name: str = "origin.test") -> str:
    """A fresh P-256 CSR for the Origin CA (``request_type: origin-ecc``); the key is thrown away."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()
