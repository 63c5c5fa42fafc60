"""The dashboard in a real browser: headless Chromium (Playwright, the system's chromium) against a real
`originlock serve`, with two real nginx origins behind the edge: one that requires the edge's client
certificate (LOCKED) and one that does not (OPEN). Screenshots are kept as test artifacts (the path is
printed; ``ORIGINLOCK_DASHBOARD_SCREENSHOTS=DIR`` also copies them to DIR, e.g. docs/img)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from originlock.testing.nginx import NginxProcess, free_port, tls_server_block
from originlock.testing.require import require_executable, require_or_skip
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki

CHROMIUM = "/usr/bin/chromium"
LOCKED, OPEN, SCOPED = "locked.dash.test", "open.dash.test", "app.other.test"


@dataclass
class Deployment:
    serve: ServeProcess
    nginx: NginxProcess
    api: httpx.Client
    zone_id: str
    other_zone_id: str
    shots: Path

    def edge_get(self, host: str, path: str = "/") -> int:
        with httpx.Client(verify=False, timeout=10) as client:
            response = client.get(
                f"https://127.0.0.1:{self.serve.https_port}{path}",
                headers={"Host": host},
                extensions={"sni_hostname": host},
            )
        return response.status_code


def _ok(response: httpx.Response) -> Any:
    body = response.json()
    assert body["success"], body
    return body["result"]


def _wait_for_verdicts(api: httpx.Client, zone_id: str, expected: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = {c["hostname"]: c["verdict"] for c in _ok(api.get(f"/zones/{zone_id}/origin_tls_client_auth/exposure"))}
        if seen == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"exposure monitor verdicts {seen}, expected {expected}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    nginx_bin = require_executable("nginx")
    work = tmp_path_factory.mktemp("dashboard")
    pki = UploadPki.create("dashboard origin CA")
    server = pki.server("origin.dash.test", sans=(LOCKED, OPEN, "127.0.0.1", "127.0.0.2"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    port = free_port()
    serve = start_serve(
        work / "data",
        extra_args=["--origin-https-port", str(port), "--origin-monitor-interval", "1", "--access-log", "off"],
    )
    (work / "edge-ca.pem").write_text(httpx.get(f"{serve.api_url}/ca/origin-pull.pem").text)
    # Same port, two loopback addresses: 127.0.0.1 requires the edge's certificate, 127.0.0.2 takes anyone.
    locked = tls_server_block(port, work / "origin.pem", work / "origin.key", client_ca=work / "edge-ca.pem")
    wide_open = tls_server_block(port, work / "origin.pem", work / "origin.key").replace(
        "listen 127.0.0.1:", "listen 127.0.0.2:"
    )
    nginx = NginxProcess(nginx_bin, work / "nginx", locked + wide_open, ports=[port]).start()
    api = httpx.Client(base_url=f"{serve.api_url}/client/v4", headers={"Authorization": f"Bearer {serve.token}"})
    account = _ok(api.get("/accounts"))[0]["id"]
    zone_id = _ok(api.post("/zones", json={"name": "dash.test", "account": {"id": account}}))["id"]
    other_id = _ok(api.post("/zones", json={"name": "other.test", "account": {"id": account}}))["id"]
    for name, address in ((LOCKED, "127.0.0.1"), (OPEN, "127.0.0.2")):
        record = {"type": "A", "name": name, "content": address, "proxied": True, "ttl": 1}
        _ok(api.post(f"/zones/{zone_id}/dns_records", json=record))
    record = {"type": "A", "name": SCOPED, "content": "127.0.0.1", "proxied": True, "ttl": 1}
    _ok(api.post(f"/zones/{other_id}/dns_records", json=record))
    _ok(api.patch(f"/zones/{zone_id}/settings/tls_client_auth", json={"value": "on"}))
    rule = {"action": "block", "expression": 'http.request.uri.path eq "/admin"', "description": "no admin"}
    _ok(api.put(f"/zones/{zone_id}/rulesets/phases/http_request_firewall_custom/entrypoint", json={"rules": [rule]}))
    _wait_for_verdicts(api, zone_id, {LOCKED: "LOCKED", OPEN: "OPEN"})
    shots = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"\ndashboard screenshots: {shots}")
    yield Deployment(serve, nginx, api, zone_id, other_id, shots)
    api.close()
    nginx.stop()
    serve.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip(False, "playwright is not installed (pip install playwright; no browser download needed)")
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


#: WCAG 2 contrast of every element's own text against the background it is painted on (the nearest ancestor
#: with an opaque background colour), and every form control's label count.
A11Y_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  let worst = { ratio: 21, text: "" };
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < worst.ratio) worst = { ratio, text: el.textContent.trim().slice(0, 60) };
  }
  const controls = [...document.querySelectorAll("input:not([type=submit]):not([type=hidden]), select")];
  return { worst, unlabelled: controls.filter((c) => !c.labels.length).map((c) => c.name) };
}"""


def _check_accessibility(page: Any) -> None:
    found = page.evaluate(A11Y_JS)
    assert found["worst"]["ratio"] >= 4.5, found["worst"]
    assert found["unlabelled"] == []


def _shot(deployment: Deployment, page: Any, name: str) -> None:
    path = deployment.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    copy_to = os.environ.get("ORIGINLOCK_DASHBOARD_SCREENSHOTS")
    if copy_to:
        shutil.copy(path, Path(copy_to) / path.name)


def _sign_in(page: Any, deployment: Deployment, token: str) -> None:
    page.goto(f"{deployment.serve.api_url}/dashboard")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_locked_and_open_origins_in_the_browser(deployment: Deployment, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{deployment.serve.api_url}/dashboard")
    _shot(deployment, page, "dashboard-sign-in")
    _check_accessibility(page)
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "Unknown or revoked API token" in page.get_by_role("alert").inner_text()

    _sign_in(page, deployment, deployment.serve.token)
    assert page.get_by_role("heading", name="dash.test").is_visible()
    locked = page.locator(f'tr[data-hostname="{LOCKED}"]')
    opened = page.locator(f'tr[data-hostname="{OPEN}"]')
    assert locked.locator(".verdict .badge").inner_text() == "LOCKED"
    assert opened.locator(".verdict .badge").inner_text() == "OPEN"
    # Which certificate and why: the shared certificate, chosen by step 5 (tls_client_auth on).
    assert "shared certificate: CN=originlock-edge" in locked.locator(".cert").inner_text()
    assert locked.locator(".why").inner_text() == (
        "step 5: tls_client_auth is on: the deployment's shared certificate (origin-pull CA)"
    )
    opened.locator("summary", has_text="Evidence").click()
    assert "accepts TLS without a client certificate" in opened.locator(".verdict").inner_text()
    # The expiry timeline has the shared certificate and the deployment's CAs.
    timeline = page.locator("#expiry + table").inner_text()
    assert "shared AOP certificate (tls_client_auth)" in timeline and "origin-pull CA" in timeline

    # Live counters: requests through the edge, one blocked by the WAF.
    for _ in range(5):
        assert deployment.edge_get(LOCKED) == 200
    assert deployment.edge_get(LOCKED, "/admin") == 403
    from playwright.sync_api import expect

    # The page's script polls every 2 s and shows a rate once it has two samples.
    expect(page.locator("#rate-requests")).not_to_have_text("…", timeout=10000)
    expect(page.locator("#waf-events tbody")).to_contain_text("/admin", timeout=10000)
    expect(page.locator("#request-totals")).to_contain_text("dash.test", timeout=10000)
    assert "200: 5" in page.locator("#request-totals").inner_text()
    expect(page.locator("#waf-totals")).to_contain_text("block")
    events = page.locator("#waf-events").inner_text()
    assert "block" in events and "/admin" in events and LOCKED in events
    _shot(deployment, page, "dashboard-overview")
    _check_accessibility(page)

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.goto(f"{deployment.serve.api_url}/dashboard")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


def test_the_origin_turns_locked_after_a_change(deployment: Deployment, browser: Any) -> None:
    """A zone-level certificate changes the precedence step the page shows (step 4), and its expiry."""
    pki = UploadPki.create("dashboard customer CA")
    leaf = pki.client("zone.dash.test")
    upload = {"certificate": leaf.cert_pem + pki.ca.cert_pem, "private_key": leaf.key_pem.decode()}
    cert = _ok(deployment.api.post(f"/zones/{deployment.zone_id}/origin_tls_client_auth", json=upload))
    _ok(deployment.api.put(f"/zones/{deployment.zone_id}/origin_tls_client_auth/settings", json={"enabled": True}))
    page = browser.new_page()
    _sign_in(page, deployment, deployment.serve.token)
    row = page.locator(f'tr[data-hostname="{LOCKED}"]')
    assert "step 4: zone-level AOP is on" in row.locator(".why").inner_text()
    assert cert["id"] in row.locator(".cert").inner_text()
    assert "AOP zone certificate" in page.locator("#expiry + table").inner_text()
    _ok(deployment.api.put(f"/zones/{deployment.zone_id}/origin_tls_client_auth/settings", json={"enabled": False}))
    page.close()


def test_edit_aop_settings_with_the_keyboard(deployment: Deployment, browser: Any) -> None:
    page = browser.new_page()
    _sign_in(page, deployment, deployment.serve.token)
    form = page.get_by_role("form", name="AOP settings of dash.test")
    form.get_by_label("tls_client_auth").select_option("off")
    form.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    assert "Saved: tls_client_auth is now off" in page.get_by_role("status").inner_text()
    row = page.locator(f'tr[data-hostname="{LOCKED}"]')
    assert row.locator(".why").inner_text().startswith("step 6: no AOP level")
    assert _ok(deployment.api.get(f"/zones/{deployment.zone_id}/settings/tls_client_auth"))["value"] == "off"
    form = page.get_by_role("form", name="AOP settings of dash.test")
    form.get_by_label("tls_client_auth").select_option("on")
    form.get_by_role("button", name="Save").click()
    assert "step 5" in page.locator(f'tr[data-hostname="{LOCKED}"] .why').inner_text()
    page.close()


def test_a_scoped_token_sees_only_its_zone_and_revocation_ends_the_session(deployment: Deployment) -> None:
    body = {
        "name": "other only",
        "permissions": ["zone:read", "dns:read", "ssl:read"],
        "zones": [deployment.other_zone_id],
    }
    created = _ok(deployment.api.post("/user/tokens", json=body))
    with httpx.Client(base_url=deployment.serve.api_url, follow_redirects=False) as client:
        response = client.post("/dashboard/login", data={"token": created["value"]})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and created["value"] not in cookie
        page = client.get("/dashboard").text
        assert "other.test" in page and SCOPED in page
        assert "dash.test</h3>" not in page and LOCKED not in page
        # Deployment-wide certificates are for tokens that span every zone.
        assert "origin-pull CA" not in page
        # No ssl:edit: no settings form, and posting one anyway changes nothing.
        assert "AOP settings of" not in page
        refused = client.post(f"/dashboard/zones/{deployment.other_zone_id}/settings", data={"ssl": "off"})
        assert refused.status_code == 403 and "ssl:edit" in refused.text
        assert _ok(deployment.api.get(f"/zones/{deployment.other_zone_id}/settings/ssl"))["value"] == "full"
        # A form posted from another site is refused even with the session.
        foreign = client.post(
            f"/dashboard/zones/{deployment.other_zone_id}/settings",
            data={"ssl": "off"},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        live = client.get("/dashboard/live.json").json()
        assert live["waf"] == {} and live["events"] == []  # no firewall:read
        _ok(deployment.api.delete(f"/user/tokens/{created['id']}"))
        assert "Sign in" in client.get("/dashboard").text
        assert client.get("/dashboard/live.json").status_code == 401
    with httpx.Client(base_url=deployment.serve.api_url) as anonymous:
        assert anonymous.get("/dashboard/live.json").status_code == 401
        assert anonymous.post("/dashboard/login", content=b"token=" + b"x" * 5000).status_code == 400


def test_metrics_export_waf_actions(deployment: Deployment) -> None:
    deployment.edge_get(LOCKED, "/admin")
    text = httpx.get(f"{deployment.serve.api_url}/metrics").text
    assert 'originlock_waf_actions_total{action="block",zone="dash.test"}' in text


def test_grafana_dashboard_uses_only_exported_metrics(deployment: Deployment) -> None:
    """Every metric the Grafana dashboard queries is one `serve` exports (a renamed metric breaks a panel)."""
    dashboard = json.loads((Path(__file__).parents[2] / "contrib" / "grafana" / "originlock.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in re.findall(r"originlock_[a-z_]+", expr)}
    exported = httpx.get(f"{deployment.serve.api_url}/metrics").text
    # Families are declared (``# TYPE``) even before they have samples; counters are declared with _total.
    declared = set(re.findall(r"^# TYPE (\S+) ", exported, re.MULTILINE))
    assert not sorted(used - declared), sorted(used - declared)
    assert "originlock_waf_actions_total" in used and "originlock_origin_exposure" in used
