"""Rules configured through the official SDK act on real requests: `originlock serve`'s edge in front of nginx.

The origin logs every request it sees, so "the origin never saw a blocked request" is checked on its own
access log. Rate-limit recovery uses a second edge on the same store with an injected clock (mitigation
timeouts are at least 10 s at Cloudflare; sleeping through one would make the suite slow).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from originlock.edge.config import EdgeConfig
from originlock.pipeline.builtin.waf import EdgeWaf
from originlock.server.bootstrap import default_store_url
from originlock.server.store_snapshots import open_store_snapshots
from originlock.testing.edge_thread import EdgeThread
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki

ZONE = "waf.test"
ECHO = 'return 200 "origin={name} sni=$ssl_server_name host=$host uri=$request_uri\\n";'


@dataclass
class Setup:
    serve: ServeProcess
    nginx: NginxProcess
    cf: Cloudflare
    zone_id: str
    origin_port: int
    other_port: int
    work: Path

    def get(
        self, host: str, path: str, headers: tuple[str, ...] = (), port: int | None = None
    ) -> tuple[int, dict[str, str], str]:
        port = port or self.serve.https_port
        args = ["curl", "-sS", "-k", "-D", "-", "--max-time", "10", "--resolve", f"{host}:{port}:127.0.0.1"]
        for header in headers:
            args += ["-H", header]
        out = subprocess.run([*args, f"https://{host}:{port}{path}"], capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr
        head, _, body = out.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), fields, body

    def origin_saw(self, path: str, log: str = "a") -> int:
        """Requests for ``path`` in an origin server's access log."""
        text = (self.work / f"{log}.log").read_text()
        return sum(1 for line in text.splitlines() if f'"GET {path} ' in line)

    def wait_status(self, host: str, path: str, status: int, timeout: float = 15.0) -> None:
        """A change reaches the edge within a second; poll until ``path`` answers ``status``."""
        deadline = time.monotonic() + timeout
        got = 0
        while time.monotonic() < deadline:
            got = self.get(host, path)[0]
            if got == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"{host}{path} answered {got}, expected {status}")

    def access_log(self, timeout: float = 10.0, want: str = "") -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            path = self.work / "access.log"
            text = path.read_text() if path.exists() else ""
            if want in text or time.monotonic() > deadline:
                return [json.loads(line) for line in text.splitlines() if line]
            time.sleep(0.1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    require_executable("curl")
    work = tmp_path_factory.mktemp("waf-edge")
    pki = UploadPki.create("waf test CA")
    server = pki.server("origin.waf.test", sans=("app.waf.test", "other.waf.test", "127.0.0.1"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    origin_port, other_port = free_port(), free_port()
    blocks = []
    for name, port in (("a", origin_port), ("b", other_port)):
        blocks.append(f"""
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/origin.pem;
    ssl_certificate_key {work}/origin.key;
    access_log {work}/{name}.log;
    location / {{ {ECHO.format(name=name.upper())} }}
  }}""")
    nginx = NginxProcess(nginx_bin, work / "nginx", "\n".join(blocks), ports=[origin_port, other_port]).start()
    serve = start_serve(
        work / "data",
        extra_args=["--origin-https-port", str(origin_port), "--access-log", str(work / "access.log")],
    )
    cf = Cloudflare(api_token=serve.token, base_url=f"{serve.api_url}/client/v4", max_retries=0)
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name=ZONE)
    assert zone is not None
    for name in ("app", "other"):
        cf.dns.records.create(
            zone_id=zone.id, name=f"{name}.{ZONE}", type="A", content="127.0.0.1", ttl=1, proxied=True
        )
    cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
    yield Setup(serve, nginx, cf, zone.id, origin_port, other_port, work)
    nginx.stop()
    serve.stop()


def test_custom_rules_block_skip_and_log(setup: Setup) -> None:
    rules: Any = [
        {
            "ref": "pass",
            "action": "skip",
            "action_parameters": {"ruleset": "current"},
            "expression": 'http.request.uri.path eq "/admin" and any(http.request.headers["x-pass"][*] eq "yes")',
        },
        {"ref": "admin", "action": "block", "expression": 'starts_with(http.request.uri.path, "/admin")'},
        {"ref": "watch", "action": "log", "expression": 'http.request.uri.path eq "/watched"'},
        {
            "ref": "teapot",
            "action": "block",
            "expression": 'http.request.uri.path eq "/custom"',
            "action_parameters": {"response": {"status_code": 418, "content": "nope", "content_type": "text/plain"}},
        },
        {"ref": "chal", "action": "managed_challenge", "expression": 'http.request.uri.path eq "/challenge"'},
    ]
    setup.cf.rulesets.phases.update("http_request_firewall_custom", zone_id=setup.zone_id, rules=rules)
    setup.wait_status(f"app.{ZONE}", "/admin", 403)
    before = setup.origin_saw("/admin")  # polling may have reached the origin before the rules did

    status, headers, body = setup.get(f"app.{ZONE}", "/admin")
    assert status == 403 and "Error 1020" in body and "Access denied" in body
    assert headers["cf-ray"] in body
    status, headers, body = setup.get(f"app.{ZONE}", "/admin/x", ("Accept: application/json",))
    assert status == 403 and json.loads(body)["error_code"] == 1020 and json.loads(body)["ray_id"] == headers["cf-ray"]
    assert setup.origin_saw("/admin") == before and setup.origin_saw("/admin/x") == 0  # blocked before the origin

    status, _, body = setup.get(f"app.{ZONE}", "/admin", ("X-Pass: yes",))
    assert status == 200 and "origin=A" in body and "uri=/admin" in body
    assert setup.origin_saw("/admin") == before + 1

    status, _, body = setup.get(f"app.{ZONE}", "/watched")
    assert status == 200 and "uri=/watched" in body

    status, headers, body = setup.get(f"app.{ZONE}", "/custom")
    assert (status, body, headers["content-type"]) == (418, "nope", "text/plain")
    status, headers, _ = setup.get(f"app.{ZONE}", "/challenge")
    assert status == 403 and headers["cf-mitigated"] == "challenge"
    assert setup.origin_saw("/custom") == 0 and setup.origin_saw("/challenge") == 0

    ids = {
        r.ref: r.id for r in setup.cf.rulesets.phases.get("http_request_firewall_custom", zone_id=setup.zone_id).rules
    }
    entries = setup.access_log(want='"/challenge"')
    by_path: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_path.setdefault(entry["path"], []).append(entry)
    watched = by_path["/watched"][-1]
    assert watched["status"] == 200
    assert watched["waf"] == {
        "action": None,
        "rule_id": None,
        "phase": None,
        "matches": [{"rule_id": ids["watch"], "action": "log", "phase": "http_request_firewall_custom"}],
    }
    blocked = [e for e in by_path["/admin"] if e["status"] == 403][-1]
    assert blocked["waf"]["action"] == "block" and blocked["waf"]["rule_id"] == ids["admin"]
    assert "origin" not in blocked  # no origin was selected or contacted
    skipped = [e for e in by_path["/admin"] if e["status"] == 200][-1]
    assert [m["action"] for m in skipped["waf"]["matches"]] == ["skip"]
    assert by_path["/challenge"][-1]["waf"]["action"] == "managed_challenge"


def _limit(setup: Setup) -> None:
    setup.cf.rulesets.phases.update(
        "http_ratelimit",
        zone_id=setup.zone_id,
        rules=[
            {
                "action": "block",
                "expression": 'http.request.uri.path eq "/limited"',
                "ratelimit": {
                    "characteristics": ["cf.colo.id", "ip.src"],
                    "period": 10,
                    "requests_per_period": 2,
                    "mitigation_timeout": 10,
                },
            }
        ],
    )
    # A probe rule written after the rate limit tells when the edge runs a snapshot that has both.
    setup.cf.rulesets.phases.update(
        "http_request_firewall_custom",
        zone_id=setup.zone_id,
        rules=[{"action": "block", "expression": 'http.request.uri.path eq "/probe"'}],
    )
    setup.wait_status(f"app.{ZONE}", "/probe", 403)


def test_rate_limit_blocks_at_the_rate_then_recovers(setup: Setup) -> None:
    _limit(setup)
    host = f"app.{ZONE}"
    assert [setup.get(host, "/limited")[0] for _ in range(2)] == [200, 200]
    status, _, body = setup.get(host, "/limited")
    assert status == 429 and "Error 1015" in body
    assert setup.origin_saw("/limited") == 2

    # Recovery, on a second edge over the same store whose rate-limit clock the test drives.
    now = [1000.0]
    data_dir = setup.serve.data_dir
    source = open_store_snapshots(str(data_dir), default_store_url(data_dir))
    config = EdgeConfig(http=None, https=("127.0.0.1", 0), origin_https_port=setup.origin_port, loop="asyncio")
    with EdgeThread(config, source, waf=EdgeWaf(lambda: now[0], time.time)) as edge:
        statuses = [setup.get(host, "/limited", port=edge.https_port)[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        now[0] += 5  # inside the 10 s mitigation timeout
        assert setup.get(host, "/limited", port=edge.https_port)[0] == 429
        assert setup.get(host, "/other", port=edge.https_port)[0] == 200  # other paths are not limited
        now[0] += 20  # timeout over and the counting windows have passed
        assert setup.get(host, "/limited", port=edge.https_port)[0] == 200
    assert setup.origin_saw("/limited") == 5


def test_origin_rules_route_port_sni_and_host(setup: Setup) -> None:
    rules: Any = [
        {
            "ref": "other",
            "action": "route",
            "expression": f'http.host eq "other.{ZONE}"',
            "action_parameters": {"origin": {"port": setup.other_port}, "sni": {"value": f"sni-b.{ZONE}"}},
        },
        {
            "ref": "sni",
            "action": "route",
            "expression": 'http.request.uri.path eq "/sni"',
            "action_parameters": {"sni": {"value": f"sni-c.{ZONE}"}},
        },
        {
            "ref": "hh",
            "action": "route",
            "expression": 'http.request.uri.path eq "/hh"',
            "action_parameters": {"host_header": f"renamed.{ZONE}"},
        },
    ]
    setup.cf.rulesets.phases.update("http_request_origin", zone_id=setup.zone_id, rules=rules)
    deadline = time.monotonic() + 5
    while "origin=B" not in setup.get(f"other.{ZONE}", "/")[2] and time.monotonic() < deadline:
        time.sleep(0.1)

    assert setup.get(f"other.{ZONE}", "/")[2].strip() == f"origin=B sni=sni-b.{ZONE} host=other.{ZONE} uri=/"
    # Same origin address and port, different SNI: the pool key follows the SNI, so no connection is reused
    # across the override (the origin sees each request's own SNI).
    for _ in range(2):
        assert setup.get(f"app.{ZONE}", "/")[2].strip() == f"origin=A sni=app.{ZONE} host=app.{ZONE} uri=/"
        assert setup.get(f"app.{ZONE}", "/sni")[2].strip() == f"origin=A sni=sni-c.{ZONE} host=app.{ZONE} uri=/sni"
    # A Host header override also sets the SNI (Cloudflare's behaviour) unless an SNI override is given.
    assert setup.get(f"app.{ZONE}", "/hh")[2].strip() == f"origin=A sni=renamed.{ZONE} host=renamed.{ZONE} uri=/hh"
    assert setup.get(f"other.{ZONE}", "/hh")[2].strip() == f"origin=B sni=sni-b.{ZONE} host=renamed.{ZONE} uri=/hh"

    ids = {r.ref: r.id for r in setup.cf.rulesets.phases.get("http_request_origin", zone_id=setup.zone_id).rules}
    # The access log is flushed once a second: wait for this very entry, not just any "/hh" line.
    want = f'"host":"other.{ZONE}","method":"GET","path":"/hh"'
    entry = [e for e in setup.access_log(want=want) if e["path"] == "/hh" and e["host"] == f"other.{ZONE}"][-1]
    assert entry["origin_rules"] == [ids["other"], ids["hh"]]
    assert entry["origin"] == f"https://127.0.0.1:{setup.other_port}"
