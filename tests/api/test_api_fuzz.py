"""Property: no request the OpenAPI document describes gets a 500 (schemathesis generates them, in process)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from originlock.api.app import create_app
from originlock.server.bootstrap import bootstrap

_DEPLOYMENT = bootstrap(Path(tempfile.mkdtemp(prefix="originlock-fuzz-")) / "data")
_TOKEN = _DEPLOYMENT.new_admin_token
APP = create_app(_DEPLOYMENT.store)
schema = schemathesis.openapi.from_asgi("/client/v4/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_TOKEN}"}, checks=[not_a_server_error])
