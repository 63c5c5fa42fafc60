"""Zone settings ``tls_1_3`` and ``security_header`` at the edge, configured through the API of a real
``originlock serve``: a zone with TLS 1.3 off gets TLS 1.2 (and refuses a TLS 1.3-only client) while
another zone on the same listener keeps TLS 1.3; HSTS and nosniff appear on the zone's HTTPS responses
(from the origin and the edge's own pages), replace the origin's own HSTS, and never go out over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from originlock.testing.nginx import NginxProcess, free_port
from originlock.testing.require import require_executable
from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki


@dataclass
class Setup:
    serve: ServeProcess
    api: httpx.Client
    zones: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    nginx_bin = require_executable("nginx")
    require_executable("openssl")
    require_executable("curl")
    work = tmp_path_factory.mktemp("zone-tls")
    pki = UploadPki.create("zone tls CA")
    server = pki.server("origin.test")
    (work / "origin.pem").write_text(server.cert_pem)
    (work / "origin.key").write_bytes(server.key_pem)
    port = free_port()
    origin = NginxProcess(
        nginx_bin,
        work / "origin",
        f"""
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {work}/origin.pem;
    ssl_certificate_key {work}/origin.key;
    location / {{ add_header Strict-Transport-Security "max-age=1" always; return 200 "origin\\n"; }}
  }}""",
        ports=[port],
    ).start()  # before serve picks its ports (tests/e2e/test_fips_origins.py says why)
    try:
        serve = start_serve(work / "data", extra_args=["--origin-https-port", str(port), "--access-log", "off"])
        api = httpx.Client(base_url=f"{serve.api_url}/client/v4", headers={"Authorization": f"Bearer {serve.token}"})
        zones = {}
        for name in ("modern.test", "legacy.test"):
            zone = api.post("/zones", json={"name": name}).json()["result"]["id"]
            zones[name] = zone
            for record, content in (("www", "127.0.0.1"), ("down", "127.0.0.9")):  # nothing on 127.0.0.9: 521
                r = api.post(
                    f"/zones/{zone}/dns_records",
                    json={"type": "A", "name": record, "content": content, "proxied": True},
                )
                assert r.status_code == 200, r.text
        yield Setup(serve, api, zones)
        api.close()
        serve.stop()
    finally:
        origin.stop()


def _eventually(probe: Callable[[], str], expected: str, timeout: float = 10.0) -> str:
    """``probe()`` until it returns ``expected`` (the edge applies a setting when its snapshot arrives)."""
    deadline = time.monotonic() + timeout
    while (got := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def _version(setup: Setup, host: str, *flags: str) -> str:
    """The TLS version openssl s_client negotiates with the edge for ``host`` ("(NONE)": refused)."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{setup.serve.https_port}", "-servername", host, *flags],
        input=b"",
        capture_output=True,
        timeout=20,
    ).stdout.decode(errors="replace")
    return next((line.split(",")[1].strip() for line in out.splitlines() if line.startswith("New, ")), out)


def _head(setup: Setup, url: str, host: str) -> dict[str, list[str]]:
    """Status and header fields (lower-case names, every value) of curl's response for ``url``."""
    port = setup.serve.https_port if url.startswith("https") else setup.serve.http_port
    out = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-D", "-", "--max-time", "10", "--resolve", f"{host}:{port}:127.0.0.1", url],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    lines = out.splitlines()
    fields: dict[str, list[str]] = {":status": [lines[0].split(" ")[1]] if lines[0] else []}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


def test_tls_1_3_off_caps_only_that_zone(setup: Setup) -> None:
    legacy = setup.zones["legacy.test"]
    assert _version(setup, "www.legacy.test") == "TLSv1.3"  # Cloudflare's default: on
    r = setup.api.patch(f"/zones/{legacy}/settings/tls_1_3", json={"value": "off"})
    assert r.status_code == 200 and r.json()["result"]["value"] == "off", r.text
    assert _eventually(lambda: _version(setup, "www.legacy.test"), "TLSv1.2") == "TLSv1.2"
    assert _version(setup, "www.legacy.test", "-tls1_3") == "(NONE)"  # a TLS 1.3-only client is refused
    assert _version(setup, "www.modern.test") == "TLSv1.3"  # the other zone on the same listener
    assert _version(setup, "www.modern.test", "-tls1_3") == "TLSv1.3"
    port = setup.serve.https_port
    curl = subprocess.run(
        ["curl", "-sk", "-v", "--resolve", f"www.legacy.test:{port}:127.0.0.1", f"https://www.legacy.test:{port}/"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert curl.stdout == "origin\n" and "TLSv1.2" in curl.stderr  # requests are served over TLS 1.2
    # "zrt" (0-RTT) is TLS 1.3 on, without early data.
    assert setup.api.patch(f"/zones/{legacy}/settings/tls_1_3", json={"value": "zrt"}).status_code == 200
    assert _eventually(lambda: _version(setup, "www.legacy.test"), "TLSv1.3") == "TLSv1.3"


def test_security_header_on_https_responses_of_the_zone(setup: Setup) -> None:
    modern = setup.zones["modern.test"]
    host = "www.modern.test"
    url = f"https://{host}:{setup.serve.https_port}/"
    assert _head(setup, url, host).get("strict-transport-security") == ["max-age=1"]  # the origin's, untouched
    value = {"strict_transport_security": {"enabled": True, "max_age": 31536000, "include_subdomains": True}}
    r = setup.api.patch(f"/zones/{modern}/settings/security_header", json={"value": value})
    assert r.status_code == 200, r.text
    expected = "max-age=31536000; includeSubDomains"

    def sts() -> str:
        return ",".join(_head(setup, url, host).get("strict-transport-security", []))

    assert _eventually(sts, expected) == expected  # the zone's policy replaces the origin's: one field
    assert "x-content-type-options" not in _head(setup, url, host)
    r = setup.api.patch(
        f"/zones/{modern}/settings/security_header",
        json={"value": {"strict_transport_security": {"nosniff": True, "preload": True}}},
    )
    assert r.status_code == 200, r.text
    expected = "max-age=31536000; includeSubDomains; preload"
    assert _eventually(sts, expected) == expected
    head = _head(setup, url, host)
    assert head[":status"] == ["200"] and head["x-content-type-options"] == ["nosniff"]
    # The edge's own pages of the zone carry them too (521: nothing listens at the origin).
    down = _head(setup, f"https://down.modern.test:{setup.serve.https_port}/", "down.modern.test")
    assert down[":status"] == ["521"] and down["strict-transport-security"] == [expected]
    assert down["x-content-type-options"] == ["nosniff"]
    # Never over HTTP, and never for another zone.
    plain = _head(setup, f"http://{host}:{setup.serve.http_port}/", host)
    assert plain[":status"] and "x-content-type-options" not in plain
    assert plain.get("strict-transport-security", ["max-age=1"]) == ["max-age=1"]
    other = _head(setup, f"https://www.legacy.test:{setup.serve.https_port}/", "www.legacy.test")
    assert other["strict-transport-security"] == ["max-age=1"] and "x-content-type-options" not in other
    # A malformed value is refused by the API with a 400 naming the expected shape.
    r = setup.api.patch(
        f"/zones/{modern}/settings/security_header",
        json={"value": {"strict_transport_security": {"max_age": "1\r\nSet-Cookie: a=b"}}},
    )
    assert r.status_code == 400 and "strict_transport_security" in r.text
