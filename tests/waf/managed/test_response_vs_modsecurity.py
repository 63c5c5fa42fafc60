"""The response phase against the WAF peer: nginx + ModSecurity v3 with ``SecResponseBodyAccess On`` and the
CRS's RESPONSE-*.conf (the recommended response settings: text/plain, text/html, text/xml bodies up to
512 KB), serving each page of ``leak_pages`` as a static file. originlock's engine evaluates the same
request and response (the body when its type is one ModSecurity inspects, as the edge holds it). At
paranoia level 1 with the CRS's thresholds both engines must match the same response rule ids on every
page: every leak reaches the outbound threshold (959100), no ordinary page matches anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from originlock.pipeline.builtin.waf_response import DEFAULT_RESPONSE_TYPES
from originlock.testing.crs_ftw import Case
from originlock.testing.crs_runner import send_all
from originlock.testing.modsecurity import ModSecurityNginx, audit_rule_ids, module_available
from originlock.testing.require import require_or_skip
from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.config import DEFAULT_TX
from originlock.waf.managed.transaction import HttpResponse

from .leak_pages import BENIGN, LEAKS, content_type

PL1 = EngineConfig(paranoia_level=1, threshold=5, tx=DEFAULT_TX)
PAGES = LEAKS + BENIGN
HEADERS = ((b"Host", b"localhost"), (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64)"), (b"Accept", b"text/html"))


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModSecurityNginx]:
    require_or_skip(module_available(), "libnginx-mod-http-modsecurity is not installed")
    prefix = tmp_path_factory.mktemp("modsec-response")
    (prefix / "www").mkdir()
    for name, body in PAGES:
        (prefix / "www" / name).write_bytes(body)
    with ModSecurityNginx(prefix, PL1, response=True) as server:
        yield server


def _engine_ids(name: str, body: bytes) -> set[int]:
    engine = load_engine()
    request = HttpRequest(b"GET", f"/{name}".encode(), b"HTTP/1.1", HEADERS, "127.0.0.1")
    t = engine.transaction(request, PL1)
    engine.run(t, PL1, (1, 2))
    media = content_type(name)
    held = body if media in DEFAULT_RESPONSE_TYPES else None
    response = HttpResponse(200, b"HTTP/1.1", ((b"Content-Type", media), (b"Content-Length", b"%d" % len(body))), held)
    return {m.rule_id for m in engine.respond(t, response, PL1).matches}


def test_both_engines_match_the_same_response_rules(peer: ModSecurityNginx, tmp_path: Path) -> None:
    raws = []
    for index, (name, _body) in enumerate(PAGES):
        head = f"GET /{name} HTTP/1.1\r\nX-Case-Id: {index}\r\n".encode()
        head += b"".join(b"%s: %s\r\n" % pair for pair in HEADERS)
        raws.append(Case(0, index, 0, head + b"\r\n", frozenset(), frozenset(), ()))
    answers = send_all(("127.0.0.1", peer.port), raws, workers=2, timeout=10)
    assert all(answer.status == 200 for answer in answers)  # DetectionOnly: the peer only records
    time.sleep(0.5)
    theirs: dict[int, set[int]] = {}
    for record in peer.audit_records():
        headers = {str(k).lower(): str(v) for k, v in (record.get("request", {}).get("headers") or {}).items()}
        if headers.get("x-case-id", "").isdigit():
            # Phase 5 reporting (980170) is ModSecurity's error log; originlock's access log has the scores.
            ids = {i for i in audit_rule_ids(record) if 950000 <= i < 980000}
            theirs[int(headers["x-case-id"])] = theirs.get(int(headers["x-case-id"]), set()) | ids
    disagreements = []
    for index, (name, body) in enumerate(PAGES):
        ours = _engine_ids(name, body)
        if ours != theirs.get(index, set()):
            disagreements.append((name, sorted(ours), sorted(theirs.get(index, set()))))
        if (name, body) in LEAKS and name.endswith((".html", ".txt")):
            assert 959100 in ours, name
        if (name, body) in BENIGN:
            assert not ours, name
    assert not disagreements, disagreements
