"""``GET /zones/{zone_id}/origin_tls_client_auth/exposure`` (originlock extension): the exposure monitor's
latest verdict for every monitored hostname of the zone. Read-only; the monitor is the only writer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from originlock.api.deps import SslRead, StoreDep
from originlock.api.envelope import ok, result_info
from originlock.store.origin_checks import check_json, list_checks
from originlock.store.zones import get_zone

router = APIRouter()


@router.get("/zones/{zone_id}/origin_tls_client_auth/exposure")
def list_exposure(store: StoreDep, access: SslRead) -> JSONResponse:
    with store.read() as conn:
        get_zone(conn, access.zone_id)  # 404 (1001) for an unknown zone, not an empty list
        items = [check_json(c) for c in list_checks(conn, access.zone_id)]
    return ok(items, result_info(1, max(len(items), 1), len(items), len(items)))
