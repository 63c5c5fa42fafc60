"""The dashboard's pages, rendered from :mod:`~originlock.dashboard.overview` and
:mod:`~originlock.dashboard.counters` data. Pure: data in, HTML out."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from originlock.dashboard.counters import Counters
from originlock.dashboard.layout import ago, esc, page, when
from originlock.dashboard.overview import CertExpiry, HostnameView, Overview, ZoneView
from originlock.store.settings import SETTINGS

__all__ = ["login_page", "overview_page", "rate_tiles"]

#: Days shown by the expiry meters: a year, with "low" at the expiry alerts' 30 days.
METER_DAYS = 365
SOON_DAYS = 30
#: The zone setting ``ssl``'s values, in Cloudflare's order (the store's own list).
SSL_MODES = tuple(str(v) for v in SETTINGS["ssl"].allowed)


def login_page(error: str | None = None) -> str:
    message = f'<p class="error" role="alert" id="login-error">{esc(error)}</p>' if error else ""
    described = ' aria-describedby="login-error token-help"' if error else ' aria-describedby="token-help"'
    body = (
        "<h2>Sign in</h2>"
        f"{message}"
        '<form method="post" action="/dashboard/login">'
        '<p><label for="token">API token</label><br>'
        f'<input type="password" id="token" name="token" autocomplete="off" required autofocus{described}></p>'
        '<p id="token-help" class="muted">The admin token is in <code>originlock-data/admin-token</code>; any API '
        "token works, and the dashboard shows only what that token may read through the API.</p>"
        '<p><input type="submit" value="Sign in"></p></form>'
    )
    return page("Sign in", body)


def _verdict(view: HostnameView, now: datetime) -> str:
    check = view.check
    if check is None:
        return (
            '<span class="badge UNCHECKED">NOT CHECKED</span> '
            '<span class="muted">the exposure monitor has not probed it yet</span>'
        )
    evidence = "".join(f"<li>{esc(reason)}</li>" for reason in check.reasons)
    previous = (
        f"<br><span class='muted'>was {esc(check.previous_verdict)}, changed {when(check.changed_at)}</span>"
        if check.previous_verdict and check.previous_verdict != check.verdict
        else ""
    )
    return (
        f'<span class="badge {esc(check.verdict)}">{esc(check.verdict)}</span> '
        f"checked {when(check.checked_at)} ({esc(ago(check.checked_at, now))}) at <code>{esc(check.origin)}</code>"
        f"{previous}" + (f"<details><summary>Evidence</summary><ul>{evidence}</ul></details>" if evidence else "")
    )


def _presented(view: HostnameView, now: datetime) -> tuple[str, str]:
    """(certificate cell, expiry cell)."""
    if view.error:
        return (f'<span class="failclosed">none: fails closed (525)</span><br>{esc(view.error)}', "")
    cert = view.cert
    if cert is None:
        return ('<span class="muted">no client certificate</span>', "")
    label = {"hostname": "hostname certificate", "zone": "zone certificate", "global": "shared certificate"}
    ident = "" if cert.source == "global" else f"<br><code>{esc(cert.id)}</code>"
    days = (cert.expires_on - now).days
    expiry = f"{when(cert.expires_on)}<br><span class='muted'>in {days} days</span>"
    if days < SOON_DAYS:
        expiry = f"{when(cert.expires_on)}<br><strong>in {days} days</strong>"
    return (f"{esc(label[cert.source])}: {esc(cert.subject)}{ident}", expiry)


def _hostname_rows(zone: ZoneView, now: datetime) -> str:
    if zone.hostnames is None:
        return '<p class="muted">This token may not read DNS records (dns:read), so hostnames are not shown.</p>'
    if not zone.ssl_visible:
        return (
            '<p class="muted">This token may not read SSL/TLS (ssl:read): certificates and verdicts are not shown.</p>'
        )
    if not zone.hostnames:
        return (
            '<p class="muted">No proxied hostnames yet: '
            f"<code>originlock dns add {esc(zone.name)} app --origin ADDRESS --proxied</code></p>"
        )
    rows = []
    for view in zone.hostnames:
        cert_cell, expiry_cell = _presented(view, now)
        rows.append(
            f'<tr data-hostname="{esc(view.hostname)}"><th scope="row">{esc(view.hostname)}</th>'
            f"<td><code>{esc(view.origin)}</code></td><td>{esc(view.ssl_mode)}</td>"
            f'<td class="cert">{cert_cell}</td><td class="why">step {view.step}: {esc(view.reason)}</td>'
            f'<td>{expiry_cell}</td><td class="verdict">{_verdict(view, now)}</td></tr>'
        )
    return (
        f"<table><caption>Proxied hostnames of {esc(zone.name)}: what the edge presents to each origin</caption>"
        '<thead><tr><th scope="col">Hostname</th><th scope="col">Origin</th><th scope="col">SSL mode</th>'
        '<th scope="col">Client certificate the edge presents</th><th scope="col">Why (precedence step)</th>'
        '<th scope="col">Expires</th><th scope="col">Exposure monitor</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _select(name: str, label: str, zone: ZoneView, options: tuple[str, ...], current: str) -> str:
    field = f"{name}-{zone.id}"
    choices = "".join(
        f'<option value="{esc(o)}"{" selected" if o == current else ""}>{esc(o)}</option>' for o in options
    )
    return (
        f'<label for="{esc(field)}">{esc(label)}</label> '
        f'<select id="{esc(field)}" name="{esc(name)}">{choices}</select>'
    )


def _settings_form(zone: ZoneView) -> str:
    """The zone's main AOP switches, for tokens with ``ssl:edit`` (a plain form: works without JavaScript)."""
    if not zone.editable:
        return ""
    return (
        f'<form class="settings-form" method="post" action="/dashboard/zones/{esc(zone.id)}/settings" '
        f'aria-label="AOP settings of {esc(zone.name)}">'
        + _select("ssl", "SSL mode", zone, SSL_MODES, zone.ssl_mode)
        + " "
        + _select("tls_client_auth", "tls_client_auth", zone, ("on", "off"), zone.tls_client_auth)
        + " "
        + _select("zone_aop", "zone-level AOP", zone, ("on", "off"), "on" if zone.zone_aop_enabled else "off")
        + ' <button type="submit">Save</button></form>'
    )


def _zones(overview: Overview, now: datetime) -> str:
    if not overview.zones:
        return (
            '<h2 id="zones">Zones</h2><p class="muted">No zones this token may read. Create one with '
            "<code>originlock zones add example.test</code>.</p>"
        )
    parts = ['<h2 id="zones">Zones and hostnames</h2>']
    for zone in overview.zones:
        parts.append(
            f'<section aria-labelledby="zone-{esc(zone.id)}"><h3 id="zone-{esc(zone.id)}">{esc(zone.name)}</h3>'
            f'<p class="settings">SSL mode <strong>{esc(zone.ssl_mode)}</strong> · tls_client_auth '
            f"<strong>{esc(zone.tls_client_auth)}</strong> · zone-level AOP "
            f"<strong>{'on' if zone.zone_aop_enabled else 'off'}</strong></p>"
            f"{_settings_form(zone)}{_hostname_rows(zone, now)}</section>"
        )
    return "".join(parts)


def _expiry_row(item: CertExpiry, now: datetime) -> str:
    days = (item.expires_on - now).days
    state = "expired" if days < 0 else f"in {days} days"
    meter = (
        f'<meter min="0" max="{METER_DAYS}" low="{SOON_DAYS}" high="90" optimum="{METER_DAYS}" '
        f'value="{max(0, min(days, METER_DAYS))}" aria-label="{esc(state)}">{esc(state)}</meter>'
    )
    label = f"<strong>{esc(state)}</strong>" if days < SOON_DAYS else esc(state)
    return (
        f"<tr><td>{when(item.expires_on)}</td><td>{label}</td><td>{meter}</td><td>{esc(item.zone)}</td>"
        f"<td>{esc(item.kind)}</td><td>{esc(item.subject)}<br><code class='muted'>{esc(item.id)}</code></td>"
        f"<td>{esc(item.status)}</td></tr>"
    )


def _expiries(overview: Overview, now: datetime) -> str:
    head = '<h2 id="expiry">Certificate expiry</h2>'
    if not overview.expiries:
        return head + '<p class="muted">No certificates this token may read.</p>'
    rows = "".join(_expiry_row(item, now) for item in overview.expiries)
    return (
        f"{head}<table><caption>Every certificate across zones, soonest first (meters span a year; "
        f"under {SOON_DAYS} days is in bold)</caption><thead><tr><th scope='col'>Expires</th>"
        "<th scope='col'>When</th><th scope='col'>Time left</th><th scope='col'>Zone</th><th scope='col'>Kind</th>"
        "<th scope='col'>Subject and id</th><th scope='col'>Status</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def rate_tiles() -> str:
    """Tiles the page's script fills in with per-second rates (server-rendered empty: "measuring")."""
    tiles = [
        ("rate-requests", "requests / s"),
        ("rate-4xx", "4xx / s"),
        ("rate-5xx", "5xx / s"),
        ("rate-52x", "52x (origin errors) / s"),
        ("rate-waf", "WAF matches / s"),
    ]
    items = "".join(
        f'<li><span class="value" id="{key}">…</span><span class="label">{esc(label)}</span></li>'
        for key, label in tiles
    )
    return (
        f'<ul class="tiles" aria-live="polite" aria-atomic="false" aria-label="Live rates">{items}</ul>'
        '<p class="muted" id="rate-note">Rates over the last few seconds, from the edge\'s own counters '
        "(refreshed every 2 s; needs JavaScript).</p>"
    )


def _traffic(counters: Counters) -> str:
    head = '<h2 id="traffic">Edge traffic</h2>'
    if not counters.edge_running:
        return head + '<p class="muted">No edge runs in this process (an API-only node): nothing to count.</p>'
    by_zone: dict[str, dict[int, int]] = defaultdict(dict)
    for (zone, status), count in counters.requests.items():
        by_zone[zone][status] = count
    rows = "".join(
        f'<tr><th scope="row">{esc(zone)}</th><td>{sum(statuses.values())}</td><td>'
        + ", ".join(f"<code>{status}</code>: {count}" for status, count in sorted(statuses.items()))
        + "</td></tr>"
        for zone, statuses in sorted(by_zone.items())
    )
    waf_rows = "".join(
        f"<tr><th scope='row'>{esc(zone)}</th><td>{esc(action)}</td><td>{count}</td></tr>"
        for (zone, action), count in sorted(counters.waf.items())
    )
    totals = (
        f"<table id='request-totals'><caption>Requests answered since the edge started, by zone and status</caption>"
        "<thead><tr><th scope='col'>Zone</th><th scope='col'>Requests</th><th scope='col'>By status</th></tr>"
        f"</thead><tbody>{rows or '<tr><td colspan=3 class=muted>none yet</td></tr>'}</tbody></table>"
    )
    waf_table = (
        "<table id='waf-totals'><caption>WAF matches since the edge started, by action</caption>"
        "<thead><tr><th scope='col'>Zone</th><th scope='col'>Action</th><th scope='col'>Requests</th></tr></thead>"
        f"<tbody>{waf_rows or '<tr><td colspan=3 class=muted>none yet</td></tr>'}</tbody></table>"
    )
    return head + rate_tiles() + totals + waf_table


def _waf_events(counters: Counters) -> str:
    head = '<h2 id="waf">Recent WAF events</h2>'
    rows = (
        "".join(
            f"<tr><td>{when(datetime.fromtimestamp(e.at, UTC))}</td><td>{esc(e.zone)}</td><td>{esc(e.host)}</td>"
            f"<td><code>{esc(e.method)} {esc(e.path)}</code></td><td><strong>{esc(e.action)}</strong></td>"
            f"<td><code>{esc(e.rule_id)}</code><br><span class='muted'>{esc(e.phase)}</span></td>"
            f"<td><code>{esc(e.ray_id)}</code></td></tr>"
            for e in counters.events[:50]
        )
        or '<tr><td colspan="7" class="muted">No request has matched a WAF rule since the edge started.</td></tr>'
    )
    return (
        f"{head}<table id='waf-events'><caption>The latest requests a WAF rule matched, newest first</caption>"
        "<thead><tr><th scope='col'>When</th><th scope='col'>Zone</th><th scope='col'>Host</th>"
        "<th scope='col'>Request</th><th scope='col'>Action</th><th scope='col'>Rule</th><th scope='col'>Ray id</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def overview_page(
    overview: Overview, counters: Counters, *, token_name: str, now: datetime, notice: str | None = None
) -> str:
    nav = (
        '<nav aria-label="Sections"><ul><li><a href="#zones">Zones</a></li><li><a href="#expiry">Certificate '
        'expiry</a></li><li><a href="#traffic">Edge traffic</a></li><li><a href="#waf">WAF events</a></li></ul></nav>'
    )
    status = f'<p role="status" class="notice">{esc(notice)}</p>' if notice else ""
    body = nav + status + _zones(overview, now) + _expiries(overview, now) + _traffic(counters) + _waf_events(counters)
    return page("Dashboard", body, signed_in_as=token_name, script="live.js")
