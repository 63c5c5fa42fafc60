"""Changing a zone's main AOP settings from the dashboard: SSL mode, ``tls_client_auth`` and zone-level AOP.

The same permission the API asks for these (``ssl:edit`` on the zone, :func:`~originlock.dashboard.session.permitted`)
and the same store functions the API's routes call, in one write transaction; invalid values are refused by
the store's own validation. Only settings whose value changed are written.
"""

from __future__ import annotations

from collections.abc import Mapping

from originlock.dashboard.session import permitted
from originlock.store import settings
from originlock.store.db import Store
from originlock.store.errors import StoreError
from originlock.store.tokens import Token

__all__ = ["EDITABLE", "EditRefused", "apply_zone_settings"]

#: Form field -> zone setting id; ``zone_aop`` is the zone-level AOP switch (``origin_tls_client_auth/settings``).
EDITABLE = ("ssl", "tls_client_auth", "zone_aop")


class EditRefused(ValueError):
    """The change was not made; ``str()`` says why, for the page."""


def apply_zone_settings(store: Store, token: Token, zone_id: str, form: Mapping[str, str]) -> list[str]:
    """Write the changed settings of ``form``; returns what changed, as sentences.

    Raises:
        EditRefused: the token may not edit SSL/TLS settings of this zone, or a value is invalid.
    """
    if not permitted(token, "ssl:edit", zone_id):
        raise EditRefused("this token may not change SSL/TLS settings of this zone (it needs ssl:edit)")
    changed = []
    try:
        with store.write() as conn:
            current = settings.zone_settings_map(conn, zone_id)
            for setting_id in ("ssl", "tls_client_auth"):
                value = form.get(setting_id)
                if value is not None and value != current[setting_id]:
                    settings.set_setting(conn, zone_id, setting_id, value)
                    changed.append(f"{setting_id} is now {value}")
            zone_aop = form.get("zone_aop")
            if zone_aop is not None:
                if zone_aop not in ("on", "off"):
                    raise EditRefused("zone-level AOP is on or off")
                enabled = zone_aop == "on"
                if enabled != bool(current[settings.AOP_ZONE_ENABLED]):
                    settings.set_aop_zone_enabled(conn, zone_id, enabled)
                    changed.append(f"zone-level AOP is now {zone_aop}")
    except StoreError as exc:
        raise EditRefused(exc.message) from None
    return changed
