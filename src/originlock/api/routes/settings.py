"""/zones/{zone_id}/settings[/{setting_id}]: every zone setting Cloudflare lists, one at a time or in bulk.

Which of them the edge acts on is ``setting_catalog.ENFORCED`` (docs/api.md); the others are stored and returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from originlock.api.audit import BEFORE_STATE
from originlock.api.deps import SslEdit, SslRead, StoreDep, ZoneRead, request_clock
from originlock.api.envelope import ok
from originlock.store import auto_rotation, settings
from originlock.store.auto_rotation import AUTO_SETTING
from originlock.store.errors import Invalid, StoreError
from originlock.store.fips import GLOBAL_CERT_REFUSED, zone_is_fips
from originlock.store.setting_catalog import SETTINGS

router = APIRouter()


class SettingBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: Any = None
    #: ssl_recommender takes ``enabled`` instead of ``value`` (Cloudflare's shape).
    enabled: bool | None = None


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(max_length=64)
    value: Any = None


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[BulkItem] = Field(min_length=1, max_length=200)


def setting_json(value: settings.SettingValue) -> dict[str, Any]:
    # Always echo "id": the SDK picks the result's model by it (spec §9.3 item 6).
    spec = SETTINGS.get(value.id)
    body = {
        "id": value.id,
        "value": value.value,
        "editable": spec.editable if spec else True,
        "modified_on": value.modified_on,
    }
    if value.id == "ssl_recommender":
        body["enabled"] = value.value
    return body


def _apply(conn: Any, store: Any, zone_id: str, setting_id: str, new: Any, now: datetime) -> settings.SettingValue:
    value = settings.set_setting(conn, zone_id, setting_id, new)
    if setting_id == AUTO_SETTING and value.value == "on":
        # Issue the first certificate now, so the origin can be given the zone's CA straight away.
        auto_rotation.enable(conn, store.sealer, zone_id, now)
    return value


@router.patch("/zones/{zone_id}/settings")
def edit_settings(
    body: BulkBody, store: StoreDep, access: SslEdit, now: Annotated[datetime, Depends(request_clock)]
) -> JSONResponse:
    """Several settings in one transaction: one invalid value leaves every setting as it was."""
    with store.write() as conn:
        changed = []
        for i, item in enumerate(body.items):
            if "value" not in item.model_fields_set:
                raise Invalid(f"items[{i}]: Invalid value for zone setting {item.id}", 1007)
            try:
                changed.append(_apply(conn, store, access.zone_id, item.id, item.value, now))
            except StoreError as exc:
                raise Invalid(f"items[{i}]: {exc.message}", exc.code) from None
    return ok([setting_json(v) for v in changed])


@router.get("/zones/{zone_id}/settings")
def list_settings(store: StoreDep, access: ZoneRead) -> JSONResponse:
    with store.read() as conn:
        return ok([setting_json(v) for v in settings.list_settings(conn, access.zone_id)])


@router.get("/zones/{zone_id}/settings/{setting_id}")
def get_setting(setting_id: str, store: StoreDep, access: SslRead) -> JSONResponse:
    # Two statements (the zone, then its value) without a transaction around them: a zone deleted between
    # the two reads as it did just before. Every setting PATCH runs this first (the audit log's "before"),
    # so it is two round trips fewer on the way of every setting change to the edges.
    with store.read(consistent=False) as conn:
        return ok(setting_json(settings.get_setting(conn, access.zone_id, setting_id)))


@router.patch("/zones/{zone_id}/settings/{setting_id}")
def edit_setting(
    request: Request,
    setting_id: str,
    body: SettingBody,
    store: StoreDep,
    access: SslEdit,
    now: Annotated[datetime, Depends(request_clock)],
) -> JSONResponse:
    new = body.enabled if setting_id == "ssl_recommender" and "enabled" in body.model_fields_set else body.value
    if "value" not in body.model_fields_set and new is None:
        raise Invalid(f"Invalid value for zone setting {setting_id}", 1007)
    with store.write() as conn:
        # The audit log's "before" (api/audit.py), read here rather than by a GET through the app first.
        before = settings.get_setting(conn, access.zone_id, setting_id)
        value = _apply(conn, store, access.zone_id, setting_id, new, now)
        # Only this setting's answer depends on the zone's FIPS profile: other PATCHes skip the read.
        warn = setting_id == "tls_client_auth" and value.value == "on"
        fips = warn and zone_is_fips(settings.zone_settings_map(conn, access.zone_id), store.fips)
    setattr(request.state, BEFORE_STATE, setting_json(before))
    messages = []
    if warn and fips:
        # Saved as asked, but say now what the edge will do rather than let a 525 explain it later.
        messages.append({"code": 1420, "message": GLOBAL_CERT_REFUSED})
    return ok(setting_json(value), messages=messages)
