"""The `originlock` CLI as an operator uses it: against a running `originlock serve`, tables and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.testing.serve import ServeProcess, start_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("cli") / "data")
    yield proc
    proc.stop()


def run(served: ServeProcess | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIGINLOCK_")}
    if served is not None:
        env.update(ORIGINLOCK_API_URL=served.api_url, ORIGINLOCK_API_TOKEN=served.token)
    return subprocess.run(
        [sys.executable, "-m", "originlock", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_newcomer_flow(served: ServeProcess, tmp_path: Path) -> None:
    r = run(served, "zones", "add", "cli.test")
    assert r.returncode == 0, r.stderr
    assert "cli.test" in r.stdout and "ID" in r.stdout.splitlines()[0]
    r = run(served, "dns", "add", "cli.test", "app", "--origin", "127.0.0.1", "--proxied", "--json")
    record = json.loads(r.stdout)
    assert record["name"] == "app.cli.test" and record["type"] == "A" and record["proxied"] is True
    r = run(served, "zones", "set", "cli.test", "tls_client_auth", "on", "--json")
    assert json.loads(r.stdout)["value"] == "on"
    r = run(served, "zones", "list", "--json")
    assert [z["name"] for z in json.loads(r.stdout)] == ["cli.test"]

    assert run(None, "certs", "issue-ca", "--cn", "cli.test", "--out", str(tmp_path / "ca")).returncode == 0
    r = run(
        None,
        "certs",
        "issue-client",
        "--ca",
        str(tmp_path / "ca.pem"),
        "--ca-key",
        str(tmp_path / "ca.key"),
        "--cn",
        "app.cli.test",
        "--out",
        str(tmp_path / "app"),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "app.key").stat().st_mode & 0o777 == 0o600
    r = run(
        served,
        "certs",
        "upload",
        "cli.test",
        "--hostname-level",
        "--cert",
        str(tmp_path / "app.pem"),
        "--key",
        str(tmp_path / "app.key"),
        "--json",
    )
    cert = json.loads(r.stdout)
    assert cert["status"] == "active" and "private_key" not in cert
    r = run(
        served,
        "certs",
        "associate",
        "cli.test",
        "--hostname",
        "app.cli.test",
        "--id",
        cert["id"],
        "--enabled",
        "false",
        "--json",
    )
    assert json.loads(r.stdout)[0]["enabled"] is False
    r = run(served, "certs", "rm", "cli.test", "--hostname-level", "--id", cert["id"])
    assert r.returncode == 1 and "invalidate the association first" in r.stderr


def test_inspect_reports_fips_verdict(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from originlock.tls.issue import issue_ca, issue_leaf

    ca = issue_ca("ed", now=datetime.now(UTC))
    leaf = issue_leaf(ca, "ed.test", now=datetime.now(UTC), key=ed25519.Ed25519PrivateKey.generate())
    (tmp_path / "ed.pem").write_text(leaf.cert_pem)
    rows = json.loads(run(None, "certs", "inspect", str(tmp_path / "ed.pem"), "--json").stdout)
    assert rows[0]["key_type"] == "ed25519" and rows[0]["fips"].startswith("not approved")
    r = run(None, "certs", "inspect", str(tmp_path / "missing.pem"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_tokens_and_errors(served: ServeProcess) -> None:
    run(served, "zones", "add", "tok.test")
    r = run(served, "tokens", "create", "ci", "--permission", "zone:read", "--zone", "tok.test", "--json")
    created = json.loads(r.stdout)
    assert created["value"] and created["permissions"] == ["zone:read"]
    listed = json.loads(run(served, "tokens", "list", "--json").stdout)
    assert created["id"] in [t["id"] for t in listed] and created["value"] not in json.dumps(listed)
    assert json.loads(run(served, "tokens", "revoke", created["id"], "--json").stdout)["status"] == "revoked"

    r = run(served, "zones", "set", "tok.test", "ssl", "bogus")
    assert r.returncode == 1 and "Invalid value for zone setting ssl: allowed values are" in r.stderr
    assert "(code 1007)" in r.stderr
    r = run(served, "zones", "add", "tok.test")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run(served, "dns", "list", "nosuch.test")
    assert r.returncode == 1 and "originlock zones add nosuch.test" in r.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "originlock", "zones", "list", "--api-url", "http://127.0.0.1:9", "--token", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "is `originlock serve` running?" in bad.stderr


def test_help_has_examples() -> None:
    r = run(None, "dns", "add", "--help")
    assert "example:" in r.stdout and "--proxied" in r.stdout
