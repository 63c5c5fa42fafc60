"""The CRS's own regression tests through the real edge: the OWASP ruleset deployed with the official SDK
at paranoia level 4 in log mode, every case sent over TCP to `originlock serve` in front of nginx, and
judged by the rule ids (``ref``) the access log records for it.

The go-ftw YAML comes from the CRS 4.28.0 data folder (``shared/data/coreruleset-4.28.0``, beside the
checkout). The pass rate and each failure class are in docs/waf.md; this test fails when the rate of
request-phase cases drops below what was measured, and prints every failing case.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cloudflare import Cloudflare

from originlock.testing.crs_ftw import Case, judge, load_cases
from originlock.testing.crs_runner import send_all
from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.require import require_executable, require_or_skip
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki
from originlock.waf.managed.cloudflare import OWASP_RULESET_ID, SCORE_RULE_ID

ZONE = "crs.test"
HOST = f"app.{ZONE}"
CRS_TESTS = Path(__file__).resolve().parents[2].parent / "shared/data/coreruleset-4.28.0/tests/regression/tests"
#: Request-phase pass rate measured at the last change (docs/waf.md: 99.3 % on the full corpus); the
#: suite must not fall below it.
MIN_REQUEST_PASS_RATE = 0.985
#: The suite sends every SAMPLE-th case (deterministic: by position in the sorted corpus) to stay within
#: its time budget; ``CRS_FULL=1`` (or ``bench/crs_regression.sh``) sends all of them.
SAMPLE = 5


def _cases() -> list[Case]:
    only = os.environ.get("CRS_ONLY", "")  # a rule-id prefix, to debug a class of cases
    cases = [c for c in load_cases(CRS_TESTS, host=HOST) if str(c.rule_id).startswith(only)]
    if os.environ.get("CRS_FULL") or only:
        return cases
    return cases[::SAMPLE]


_created: dict[str, str] = {}


def _case_hosts() -> list[str]:
    """The DNS names (not IPs, not localhost) that cases send as Host."""
    hosts: set[str] = set()
    for case in _cases():
        head = case.raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            value = value.strip().lower()
            is_name = re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", value) and not value[-1].isdigit()
            if name.lower() == "host" and value != HOST and is_name:
                hosts.add(value)
    return sorted(hosts)


@dataclass
class Setup:
    serve: ServeProcess
    cf: Cloudflare
    zone_ids: list[str]
    work: Path

    def access_log(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for line in (self.work / "access.log").read_text().splitlines():
            if line:
                record = json.loads(line)
                records[record["ray_id"]] = record
        return records


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    require_or_skip(CRS_TESTS.is_dir(), f"CRS regression tests not found at {CRS_TESTS}")
    work = tmp_path_factory.mktemp("crs")
    pki = UploadPki.create("crs test CA")
    server = pki.server("origin.crs.test", sans=(HOST, "127.0.0.1"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    port = free_port()
    block = f"""
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/origin.pem;
    ssl_certificate_key {work}/origin.key;
    access_log off;
    client_max_body_size 10m;
    location / {{ return 200 "ok\\n"; }}
  }}"""
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[port]).start()
    serve = start_serve(
        work / "data", extra_args=["--origin-https-port", str(port), "--access-log", str(work / "access.log")]
    )
    cf = Cloudflare(api_token=serve.token, base_url=f"{serve.api_url}/client/v4", max_retries=0)
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name=ZONE)
    assert zone is not None
    zone_ids = [zone.id]
    cf.dns.records.create(zone_id=zone.id, name=HOST, type="A", content="127.0.0.1", ttl=1, proxied=True)
    cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
    # Some cases name their own Host (example.com, myapp.com...): the edge serves those names too, each
    # zone with the ruleset deployed (one compiled CRS serves them all).
    for host in _case_hosts():
        apex = ".".join(host.split(".")[-2:])
        other = cf.zones.create(account={"id": account.id}, name=apex) if apex not in _created else None
        if other is not None:
            _created[apex] = other.id
            zone_ids.append(other.id)
            cf.zones.settings.edit("ssl", zone_id=other.id, value="full")
        cf.dns.records.create(zone_id=_created[apex], name=host, type="A", content="127.0.0.1", ttl=1, proxied=True)
    yield Setup(serve, cf, zone_ids, work)
    nginx.stop()
    serve.stop()


def _deploy_pl4_log(setup: Setup) -> None:
    rules: Any = [
        {
            "action": "execute",
            "expression": "true",
            "action_parameters": {
                "id": OWASP_RULESET_ID,
                # PL4, the CRS's own threshold (5, so 949110's cases can match), log mode.
                "overrides": {
                    "enabled": True,
                    "rules": [{"id": SCORE_RULE_ID, "action": "log", "score_threshold": 5}],
                },
            },
        }
    ]
    for zone_id in setup.zone_ids:
        setup.cf.rulesets.phases.update("http_request_firewall_managed", zone_id=zone_id, rules=rules)


def _wait_active(setup: Setup) -> None:
    probe = Case(
        0,
        0,
        0,
        f"GET /?x=<script>alert(1)</script> HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode(),
        frozenset(),
        frozenset(),
        (),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = send_all(("127.0.0.1", setup.serve.https_port), [probe], workers=1, sni=HOST)[0]
        time.sleep(0.3)
        record = setup.access_log().get(answer.headers.get("cf-ray", ""))
        if record and any(m.get("ref") == "941100" for m in record.get("waf", {}).get("matches", [])):
            return
    raise AssertionError("the managed ruleset did not reach the edge")


def test_crs_regression_suite_through_the_edge(setup: Setup) -> None:
    if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") and not os.environ.get("CRS_FULL"):
        # tests/packaging re-runs tests/e2e on the mypyc-compiled edge: the blocking test below covers the
        # managed phase there; the corpus (CPU in the pure-Python CRS engine, not the edge) runs once.
        pytest.skip("CRS corpus runs in the interpreted suite only")
    _deploy_pl4_log(setup)
    _wait_active(setup)
    only = os.environ.get("CRS_ONLY", "")
    cases = _cases()
    started = time.monotonic()
    answers = send_all(("127.0.0.1", setup.serve.https_port), cases, workers=6, sni=HOST)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # the access log is written after the response
    records = setup.access_log()
    failures: list[tuple[Case, str]] = []
    for answer in answers:
        record = records.get(answer.headers.get("cf-ray", ""), {})
        logged = {int(m["ref"]) for m in record.get("waf", {}).get("matches", []) if "ref" in m}
        why = judge(answer.case, logged, answer.status)
        if why:
            failures.append((answer.case, why))
            if only:
                print(answer.case.raw[:300], answer.status, record)
    request_cases = [c for c in cases if c.rule_id < 950000]
    request_failures = [f for f in failures if f[0].rule_id < 950000]
    rate = 1 - len(request_failures) / len(request_cases)
    summary = (
        f"{len(cases) - len(failures)}/{len(cases)} cases pass ({100 * (1 - len(failures) / len(cases)):.2f} %); "
        f"request phase {len(request_cases) - len(request_failures)}/{len(request_cases)} ({100 * rate:.2f} %); "
        f"{elapsed:.1f} s"
    )
    print(summary)
    print("slowest:", [(a.case.name, round(a.seconds, 2)) for a in sorted(answers, key=lambda a: -a.seconds)[:15]])
    print("failing rules:", Counter(c.rule_id for c, _ in failures).most_common())
    for case, why in failures:
        print(case.name, why)
    assert rate >= MIN_REQUEST_PASS_RATE, summary


def test_default_deployment_blocks_attacks_in_query_and_body_and_passes_benign_posts(setup: Setup) -> None:
    """A zone deploying the ruleset with only the threshold lowered to the CRS's 5: attacks in the query
    and in a urlencoded body are answered 403 by the edge (body read before the origin is connected),
    a benign form post with a large body reaches the origin, and the log says why."""
    account = next(iter(setup.cf.accounts.list()))
    zone = setup.cf.zones.create(account={"id": account.id}, name="blocking.test")
    assert zone is not None
    host = "www.blocking.test"
    setup.cf.dns.records.create(zone_id=zone.id, name=host, type="A", content="127.0.0.1", ttl=1, proxied=True)
    setup.cf.zones.settings.edit("ssl", zone_id=zone.id, value="full")
    rules: Any = [
        {
            "action": "execute",
            "expression": "true",
            "action_parameters": {
                "id": OWASP_RULESET_ID,
                "overrides": {"rules": [{"id": SCORE_RULE_ID, "score_threshold": 5}]},
            },
        }
    ]
    setup.cf.rulesets.phases.update("http_request_firewall_managed", zone_id=zone.id, rules=rules)

    def case(raw: str, body: bytes = b"") -> Case:
        head = raw.replace("\n", "\r\n") + f"Host: {host}\r\nContent-Length: {len(body)}\r\n\r\n"
        return Case(0, 0, 0, head.encode() + body, frozenset(), frozenset(), ())

    # ~10 KB of ordinary text in 40 fields (one field over 400 bytes is 920370's "argument too long").
    form = b"&".join(b"f%d=" % i + b"Great+product%2C+thanks%21+" * 9 for i in range(40))
    attack = b"user=admin&q=1%27+OR+%271%27%3D%271"
    requests = [
        case("GET /?q=<script>alert(1)</script> HTTP/1.1\n"),
        case("POST /form HTTP/1.1\nContent-Type: application/x-www-form-urlencoded\n", attack),
        case("POST /form HTTP/1.1\nContent-Type: application/x-www-form-urlencoded\n", form),
        case("GET /products?page=2 HTTP/1.1\nUser-Agent: Mozilla/5.0\nAccept: text/html\n"),
    ]
    deadline = time.monotonic() + 20
    while True:
        answers = send_all(("127.0.0.1", setup.serve.https_port), requests, workers=1, sni=host)
        statuses = [a.status for a in answers]
        if statuses == [403, 403, 200, 200] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert statuses == [403, 403, 200, 200]
    rays = [a.headers["cf-ray"] for a in answers]
    deadline = time.monotonic() + 10  # the access log line is written after the response
    records = setup.access_log()
    while not all(ray in records for ray in rays) and time.monotonic() < deadline:
        time.sleep(0.2)
        records = setup.access_log()
    blocked = records[answers[1].headers["cf-ray"]]["waf"]
    assert blocked["action"] == "block" and blocked["rule_id"] == SCORE_RULE_ID
    assert blocked["phase"] == "http_request_firewall_managed" and blocked["score"] >= 5
    refs = {m["ref"]: m for m in blocked["matches"]}
    assert refs["942100"]["score"] == 5 and refs["949110"]["action"] == "block"
    assert "waf" not in records[answers[2].headers["cf-ray"]]
