"""``originlock.testing.sdk_client.sdk``: the official SDK over the in-process app whatever Starlette's
TestClient is built on. The SDK refuses an ``http_client`` that is not an ``httpx.Client``, and the TestClient
is an ``httpx2.Client`` wherever httpx2 is installed (this project's test dependencies install it)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from cloudflare import NotFoundError
from fastapi.testclient import TestClient

from originlock.testing.sdk_client import bearer, sdk

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


class _OnlyWhatSdkUses:
    """A TestClient seen through what ``sdk`` may use of it: not an ``httpx.Client`` of any kind."""

    def __init__(self, client: TestClient) -> None:
        self.base_url = client.base_url
        self.request = client.request


@SQLITE_ONLY
def test_the_sdk_reaches_the_app_through_a_client_that_is_not_an_httpx_client(api: Any) -> None:
    zone = api.zone("sdk-transport.test")
    cf = sdk(cast(TestClient, _OnlyWhatSdkUses(api.client)), bearer(api.admin))
    assert [z.id for z in cf.zones.list(name="sdk-transport.test")] == [zone]
    # A body both ways, and the API's error envelope still raised as the SDK's own error.
    setting = cf.zones.settings.edit(setting_id="always_online", zone_id=zone, value="on")
    assert setting is not None and setting.value == "on"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        cf.zones.get(zone_id="0" * 32)
