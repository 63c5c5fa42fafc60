"""`originlock rules test --managed`: the OWASP ruleset on a request file, with optional overrides."""

from __future__ import annotations

import io
import json
from pathlib import Path

from originlock.cli.rules import run_managed_test
from originlock.waf.managed.cloudflare import SCORE_RULE_ID

STRICT = json.dumps({"overrides": {"rules": [{"id": SCORE_RULE_ID, "score_threshold": 5}]}})


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "req.json"
    headers = {"User-Agent": "curl/8.5", "Content-Type": "application/x-www-form-urlencoded"}
    path.write_text(
        json.dumps({"method": "POST", "url": "https://app.example.test/login", "headers": headers, "body": body})
    )
    return path


def test_managed_test_reports_matches_score_and_decision(tmp_path: Path) -> None:
    attack = _file(tmp_path, "user=admin' OR '1'='1&pw=x")
    out = io.StringIO()
    assert run_managed_test(attack, "{}", out=out) == 1  # score 5 < Cloudflare's default threshold 40
    assert out.getvalue().startswith("PASS: anomaly score 5 (threshold 40, PL1)") and "942100" in out.getvalue()
    out = io.StringIO()
    assert run_managed_test(attack, STRICT, as_json=True, out=out) == 0
    result = json.loads(out.getvalue())
    assert result["action"] == "block" and result["score"] == 5
    assert {m["ref"] for m in result["matches"]} == {"942100", "949110"}


def test_managed_test_benign_and_bad_input(tmp_path: Path) -> None:
    assert run_managed_test(_file(tmp_path, "user=alice&pw=hunter2"), STRICT, out=io.StringIO()) == 1
    out = io.StringIO()
    assert run_managed_test(_file(tmp_path, "a=b"), '{"overrides": {"rules": [{"id": "nope"}]}}', out=out) == 2
    assert "/overrides/rules/0/id" in out.getvalue()
    assert run_managed_test(_file(tmp_path, "a=b"), "[1]", out=io.StringIO()) == 2
