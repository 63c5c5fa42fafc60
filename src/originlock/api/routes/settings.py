"""/zones/{zone_id}/settings[/{setting_id}]: ssl, tls_client_auth, min_tls_version, always_use_https."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from originlock.api.deps import SslEdit, SslRead, StoreDep, ZoneRead, clock
from originlock.api.envelope import ok
from originlock.store import auto_rotation, settings
from originlock.store.auto_rotation import AUTO_SETTING
from originlock.store.errors import Invalid
from originlock.store.fips import GLOBAL_CERT_REFUSED, zone_is_fips

router = APIRouter()


class SettingBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: Any = None


def setting_json(value: settings.SettingValue) -> dict[str, Any]:
    # Always echo "id": the SDK picks the result's model by it (spec §9.3 item 6).
    return {"id": value.id, "value": value.value, "editable": True, "modified_on": value.modified_on}


@router.get("/zones/{zone_id}/settings")
def list_settings(store: StoreDep, access: ZoneRead) -> JSONResponse:
    with store.read() as conn:
        return ok([setting_json(v) for v in settings.list_settings(conn, access.zone_id)])


@router.get("/zones/{zone_id}/settings/{setting_id}")
def get_setting(setting_id: str, store: StoreDep, access: SslRead) -> JSONResponse:
    with store.read() as conn:
        return ok(setting_json(settings.get_setting(conn, access.zone_id, setting_id)))


@router.patch("/zones/{zone_id}/settings/{setting_id}")
def edit_setting(
    setting_id: str, body: SettingBody, store: StoreDep, access: SslEdit, now: Annotated[datetime, Depends(clock)]
) -> JSONResponse:
    if "value" not in body.model_fields_set:
        raise Invalid(f"Invalid value for zone setting {setting_id}", 1007)
    with store.write() as conn:
        value = settings.set_setting(conn, access.zone_id, setting_id, body.value)
        fips = zone_is_fips(settings.zone_settings_map(conn, access.zone_id), store.fips)
        if setting_id == AUTO_SETTING and value.value == "on":
            # Issue the first certificate now, so the origin can be given the zone's CA straight away.
            auto_rotation.enable(conn, store.sealer, access.zone_id, now)
    messages = []
    if setting_id == "tls_client_auth" and value.value == "on" and fips:
        # Saved as asked, but say now what the edge will do rather than let a 525 explain it later.
        messages.append({"code": 1420, "message": GLOBAL_CERT_REFUSED})
    return ok(setting_json(value), messages=messages)
