"""Shared fixtures for edge end-to-end tests: a PKI, a real nginx origin, curl helpers."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from originlock.testing.pki import TestPki


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


def curl(
    url: str, *, resolve: Sequence[str] = (), cacert: str | None = None, extra: Sequence[str] = (), timeout: float = 20
) -> tuple[int, dict[str, str], str]:
    """Run curl; returns (status, lower-case headers of the final response, body)."""
    args = ["curl", "-sS", "-D", "-", "--max-time", str(timeout)]
    for item in resolve:
        args += ["--resolve", item]
    if cacert:
        args += ["--cacert", cacert]
    args += [*extra, url]
    out = subprocess.run(args, capture_output=True, timeout=timeout + 5)
    if out.returncode != 0:
        raise AssertionError(f"curl failed ({out.returncode}): {out.stderr.decode()}")
    head, _, body = out.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    while head.startswith("HTTP/1.1 100"):
        head, _, body = body.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body
