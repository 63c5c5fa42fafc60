"""Shared fixtures: the two store backends, a throwaway PKI, and `originlock serve` as a real process."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from originlock.testing.pki import TestPki
from originlock.testing.require import require_or_skip

PG_URL = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    require_or_skip(postgres_available(), f"PostgreSQL is not reachable at {PG_URL}")
    return PG_URL


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each backend: the same tests run against both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = request.getfixturevalue("pg_base_url")
    schema = f"ol_test_{secrets.token_hex(6)}"
    yield f"{base}?schema={schema}"
    _drop_schema(schema)


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.create()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    """`originlock serve` running as a subprocess, as a user starts it."""

    proc: subprocess.Popen[str]
    data_dir: Path
    api_url: str
    log_path: Path

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text()


def start_serve(data_dir: Path, store: str | None = None, env: dict[str, str] | None = None) -> ServeProcess:
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-serve-{port}.log"
    args = [sys.executable, "-m", "originlock", "serve", "--data-dir", str(data_dir), "--api", f"127.0.0.1:{port}"]
    if store:
        args += ["--store", store]
    log = log_path.open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"originlock serve exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return ServeProcess(proc, data_dir, url, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"originlock serve did not come up: {log_path.read_text()}")
