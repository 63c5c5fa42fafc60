"""What a newcomer meets (issue 16): every CLI mistake is one clear line and a nonzero exit, never a traceback,
and the hints point at the fix. Runs against a real `originlock serve`, a real nginx origin requiring a client
certificate, and the real edge in front of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from originlock.cli.main import main
from originlock.server.bootstrap import prepare_data_dir
from originlock.testing.nginx import NginxProcess, free_port, tls_server_block
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki


@dataclass
class Setup:
    serve: ServeProcess
    nginx: NginxProcess
    pki: UploadPki
    origin_port: int
    work: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    work = tmp_path_factory.mktemp("newcomer")
    pki = UploadPki.create("newcomer private CA")
    server = pki.server("origin.newcomer.test", sans=("app.newcomer.test", "127.0.0.1"))
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    origin_port = free_port()
    serve = start_serve(work / "data", extra_args=["--origin-https-port", str(origin_port), "--access-log", "off"])
    (work / "trusted.pem").write_text(httpx.get(f"{serve.api_url}/ca/origin-pull.pem").text)
    block = tls_server_block(origin_port, work / "origin.pem", work / "origin.key", client_ca=work / "trusted.pem")
    nginx = NginxProcess(nginx_bin, work / "nginx", block, ports=[origin_port]).start()
    yield Setup(serve, nginx, pki, origin_port, work)
    nginx.stop()
    serve.stop()


@pytest.fixture
def api_env(setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORIGINLOCK_API_URL", setup.serve.api_url)
    monkeypatch.setenv("ORIGINLOCK_API_TOKEN", setup.serve.token)
    return setup


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process; an exception escaping ``main`` (a traceback for a user) fails the test."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_mistakes_are_one_line_and_nonzero(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("ORIGINLOCK_")]:
        monkeypatch.delenv(key)
    missing = str(tmp_path / "missing.pem")
    (tmp_path / "binary.pem").write_bytes(b"\xff\xfe\x00garbage")
    dead_api = f"http://127.0.0.1:{free_port()}"
    token = ["--token", "x"]
    cases: list[tuple[list[str], str]] = [
        # bad arguments
        (["zones", "set", "z.test", "ssl"], "the following arguments are required"),
        (["zones", "set", "z.test", "nosuch", "on"], "invalid choice"),
        (["dns", "add", "z.test", "app", "--origin", "127.0.0.1", "--api-url", dead_api, *token], "cannot reach"),
        (["origin", "check", "not a url"], "Name or service not known"),
        (["origin", "config", "nginx"], "--zone is required"),
        (["rules", "test", "http.host eq", "--request", missing], "error"),
        # missing or unreadable files
        (["certs", "upload", "z.test", "--cert", missing, "--key", missing, "--api-url", dead_api, *token], missing),
        (["certs", "inspect", missing], missing),
        (["certs", "inspect", str(tmp_path / "binary.pem")], "binary.pem"),
        (["certs", "issue-client", "--ca", missing, "--ca-key", missing, "--cn", "a"], "cannot read the CA"),
        (["origin", "config", "nginx", "--ca-file", missing], missing),
        (["origin", "check", "https://127.0.0.1:1", "--client-cert", missing, "--client-key", missing], missing),
        # no token, unreachable API
        (["zones", "list"], "no API token"),
        (["zones", "list", "--api-url", dead_api, *token], f"cannot reach the API at {dead_api}"),
        (["origin", "status", "--api-url", dead_api, *token], "cannot reach"),
        (["origin", "config", "nginx", "--zone", "z.test", "--api-url", dead_api, *token], "cannot reach"),
        # something else answers there (the edge's HTTP listener, not the API)
        (
            ["zones", "list", "--api-url", f"http://127.0.0.1:{setup.serve.http_port}", *token],
            "without the API's JSON",
        ),
    ]
    for argv, expected in cases:
        code, out, err = cli(capsys, *argv)
        assert code != 0, (argv, out, err)
        assert "Traceback" not in out + err, argv
        assert expected in out + err, (argv, out, err)
        assert len(err.strip().splitlines()) <= 3 or "usage:" in err, (argv, err)


def test_group_help_pages_have_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for group in ("zones", "dns", "certs", "tokens", "origin", "rules"):
        code, out, _ = cli(capsys, group, "--help")
        assert code == 0
        assert "example" in out and f"originlock {group} " in out, group


def test_zone_setting_value_lists_the_valid_ones(api_env: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "zones", "add", "values.test")[0] == 0
    code, _, err = cli(capsys, "zones", "set", "values.test", "ssl", "full_strict")
    assert code == 1
    assert "(code 1007); valid values of ssl: off, flexible, full, strict, origin_pull" in err
    assert cli(capsys, "zones", "set", "values.test", "ssl", "strict")[0] == 0


def test_certs_list_hints_at_hostname_level(api_env: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    leaf = api_env.pki.client("app.hints.test")
    (tmp_path / "app.pem").write_text(leaf.cert_pem)
    (tmp_path / "app.key").write_bytes(leaf.key_pem)
    assert cli(capsys, "zones", "add", "hints.test")[0] == 0
    code, out, _ = cli(capsys, "certs", "list", "hints.test")
    assert code == 0 and out.strip() == "(none)"
    upload = ("certs", "upload", "hints.test", "--hostname-level", "--cert", "app.pem", "--key", "app.key")
    assert cli(capsys, *upload)[0] == 0
    code, out, _ = cli(capsys, "certs", "list", "hints.test")
    assert code == 0
    assert "1 hostname-level certificate: originlock certs list hints.test --hostname-level" in out


def test_config_with_a_leaf_only_certificate_suggests_ca_file(
    api_env: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    leaf = api_env.pki.client("leaf.test")
    (tmp_path / "leaf.pem").write_text(leaf.cert_pem)
    (tmp_path / "leaf.key").write_bytes(leaf.key_pem)
    (tmp_path / "ca.pem").write_text(api_env.pki.ca.cert_pem)
    assert cli(capsys, "zones", "add", "leaf.test")[0] == 0
    assert cli(capsys, "certs", "upload", "leaf.test", "--cert", "leaf.pem", "--key", "leaf.key")[0] == 0
    assert cli(capsys, "certs", "enable-zone", "leaf.test")[0] == 0
    code, out, err = cli(capsys, "origin", "config", "nginx", "--zone", "leaf.test", "--out-dir", str(tmp_path))
    assert code == 2, out
    assert "--ca-file" in err and "enable Authenticated Origin Pulls" not in err
    code, out, err = cli(
        capsys, "origin", "config", "nginx", "--zone", "leaf.test", "--ca-file", "ca.pem", "--out-dir", str(tmp_path)
    )
    assert code == 0 and "ssl_verify_client" in out, err


def _wait_edge_status(setup: Setup, host: str, status: int) -> None:
    """A zone change reaches the edge within a second; wait for it rather than racing it."""
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        with httpx.Client(verify=False) as client:
            seen = client.get(
                f"https://127.0.0.1:{setup.serve.https_port}/",
                headers={"Host": host},
                extensions={"sni_hostname": host},
            ).status_code
        if seen == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"the edge answered {seen} for {host}, not {status}")


def test_check_via_edge_526_is_not_locked(api_env: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    host = "app.newcomer.test"
    assert cli(capsys, "zones", "add", "newcomer.test")[0] == 0
    assert cli(capsys, "dns", "add", "newcomer.test", "app", "--origin", "127.0.0.1", "--proxied")[0] == 0
    assert cli(capsys, "zones", "set", "newcomer.test", "tls_client_auth", "on")[0] == 0
    # strict: the origin's certificate comes from a private CA the edge does not trust -> 526 for every request.
    assert cli(capsys, "zones", "set", "newcomer.test", "ssl", "strict")[0] == 0
    _wait_edge_status(api_env, host, 526)
    check = (
        "origin",
        "check",
        f"https://127.0.0.1:{api_env.origin_port}",
        "--hostname",
        host,
        "--via-edge",
        f"https://127.0.0.1:{api_env.serve.https_port}",
    )
    code, out, _ = cli(capsys, *check)
    assert code == 3, out
    assert "MISCONFIGURED" in out and "LOCKED" not in out.splitlines()[0]
    assert "could not verify the origin's server certificate (526)" in out
    assert "down or unreachable" not in out
    # The same origin with ssl full: the edge gets through, and the verdict is LOCKED.
    assert cli(capsys, "zones", "set", "newcomer.test", "ssl", "full")[0] == 0
    _wait_edge_status(api_env, host, 200)
    code, out, _ = cli(capsys, *check)
    assert code == 0 and "LOCKED" in out, out


def _serve(data_dir: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIGINLOCK_")}
    args = ["--api", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}", "--https", "off"]
    args += ["--workers", "1"]
    return subprocess.run(
        [sys.executable, "-m", "originlock", "serve", "--data-dir", str(data_dir), *args, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_serve_busy_ports_are_named_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _serve(tmp_path / "d1", "--api", f"127.0.0.1:{port}")
        assert r.returncode == 1
        assert f"127.0.0.1:{port}" in r.stderr and "--api" in r.stderr
        assert "control plane on" not in r.stdout and "Traceback" not in r.stdout + r.stderr
        r = _serve(tmp_path / "d2", "--http", f"127.0.0.1:{port}")
        assert r.returncode == 1
        assert f"127.0.0.1:{port} (--http) is already in use" in r.stderr
        assert "control plane on" not in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_serve_data_dir_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    api = ("--api", f"127.0.0.1:{free_port()}")
    code, _, err = cli(capsys, "serve", "--data-dir", str(a_file), *api)
    assert code == 1 and f"--data-dir {a_file} is not a directory" in err
    code, _, err = cli(capsys, "serve", "--data-dir", str(a_file / "below"), *api)
    assert code == 1 and f"--data-dir {a_file / 'below'}" in err
    code, out, err = cli(capsys, "serve", "--data-dir", "/sys/originlock-data", *api)
    assert code == 1 and "cannot write to --data-dir /sys/originlock-data" in err, err
    assert "control plane on" not in out
    # Store URLs that cannot be opened: one line, the password hidden.
    data = str(tmp_path / "data")
    for store, expected in (
        (f"postgresql://u:secretpw@127.0.0.1:{free_port()}/x", "connection"),
        ("nonsense://x", "unsupported store URL scheme"),
        (f"sqlite:///{tmp_path}/missing/dir/x.db", "unable to open database file"),
    ):
        code, out, err = cli(capsys, "serve", "--data-dir", data, *api, "--store", store)
        assert code == 1 and "error: cannot open --store" in err and expected in err, err
        assert "secretpw" not in out + err and len(err.strip().splitlines()) == 1


def test_serve_leaves_an_existing_directory_alone_and_hints_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    serve = start_serve(shared)
    try:
        assert shared.stat().st_mode & 0o777 == 0o755
        assert (shared / "master.key").stat().st_mode & 0o777 == 0o600
        first = serve.output()
        assert "readable by other users (mode 755)" in first
        assert "next: originlock zones add example.test" in first
    finally:
        assert serve.stop() == 0
    again = start_serve(shared)
    try:
        time.sleep(0.2)
        assert "control plane on" in again.output() and "next:" not in again.output()
    finally:
        again.stop()
    created = tmp_path / "created" / "data"
    prepare_data_dir(created)
    assert created.stat().st_mode & 0o777 == 0o700


def test_readme_sdk_example_runs_after_the_cli_steps(
    api_env: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The README's SDK block, verbatim except for where the API listens and where the token is."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Your first five minutes") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    assert "PEM, KEY = " in code and "example.test" not in code
    (tmp_path / "originlock-data").mkdir()
    (tmp_path / "originlock-data" / "admin-token").write_text(api_env.serve.token)
    assert cli(capsys, "certs", "issue-ca", "--cn", "sdk.test", "--out", "sdk-ca")[0] == 0
    issue = ("certs", "issue-client", "--ca", "sdk-ca.pem", "--ca-key", "sdk-ca.key", "--cn", "app.sdk.test")
    assert cli(capsys, *issue, "--out", "sdk-app")[0] == 0
    # Our own README, run as a reader would run it.
    exec(code.replace("http://127.0.0.1:8787", api_env.serve.api_url), {})
    code_, out, err = cli(capsys, "certs", "list", "sdk.test", "--json")
    assert code_ == 0 and '"status": "active"' in out, err
    code_, out, err = cli(capsys, "origin", "config", "nginx", "--zone", "sdk.test", "--ca-file", "sdk-ca.pem")
    assert code_ == 0, err
