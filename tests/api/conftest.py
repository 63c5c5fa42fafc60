from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from originlock.api.app import create_app
from originlock.server.bootstrap import bootstrap
from originlock.store.db import Store
from originlock.testing.api_env import FUNCTIONAL_TIMEOUTS


@dataclass
class ApiEnv:
    client: TestClient
    store: Store
    admin: dict[str, str]
    account_id: str

    def zone(self, name: str = "example.test") -> str:
        r = self.client.post(
            "/client/v4/zones", json={"name": name, "account": {"id": self.account_id}}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        return str(r.json()["result"]["id"])


@pytest.fixture
def api(store_url: str, tmp_path, monkeypatch) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ORIGINLOCK_ADMIN_TOKEN", raising=False)
    deployment = bootstrap(tmp_path / "data", store_url, timeouts=FUNCTIONAL_TIMEOUTS)
    assert deployment.new_admin_token
    with TestClient(create_app(deployment.store), raise_server_exceptions=False) as client:
        yield ApiEnv(
            client, deployment.store, {"Authorization": f"Bearer {deployment.new_admin_token}"}, deployment.account_id
        )
    deployment.store.close()
