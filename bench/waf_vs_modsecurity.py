"""CPU per request of the OWASP CRS at paranoia level 1: originlock's managed engine vs ModSecurity in nginx.

    python bench/waf_vs_modsecurity.py [--runs 3] [--pl 1] [--response]

Same run, same CRS files (the package's ``waf/managed/crs``), same settings (threshold 5, the argument limits
of ``waf/managed/config.py``), three requests: a browser GET (7 headers, cookies, 2 query arguments), a 10 KB
urlencoded form POST (220 fields) and a 10 KB JSON POST, all benign (nothing matches).

- originlock: process CPU of ``Engine.evaluate`` on the request (the engine alone, as the edge calls it).
- ModSecurity: nginx 1 worker with libmodsecurity3 (``SecRuleEngine On``, ``DetectionOnly`` above PL1 where
  ordinary requests start to match; no audit log) and the same nginx
  without ``modsecurity on``; each receives the same requests on one keep-alive connection, and the worker's
  CPU (utime + stime from /proc) per request of the first minus the second is ModSecurity's cost.

``--response``: the response phase too. The requests are browser GETs of benign HTML pages (20 KB and 100 KB,
ordinary markup); originlock runs phases 1-4 on one transaction (``Engine.run`` then ``Engine.respond`` with
the page as the held body, as the edge does); ModSecurity runs with ``SecResponseBodyAccess On`` and
RESPONSE-*.conf (``ModSecurityNginx(response=True)``), nginx serving the page from a file (the bare nginx
serves the same file).

Each figure is the median of ``--runs`` runs (interleaved), printed with the ratio originlock / ModSecurity.
The box is shared: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from originlock.testing.modsecurity import ModSecurityNginx, module_available
from originlock.waf.managed import EngineConfig, HttpRequest, load_engine
from originlock.waf.managed.config import DEFAULT_TX
from originlock.waf.managed.transaction import HttpResponse

BROWSER = (
    (b"Host", b"shop.example.test"),
    (
        b"User-Agent",
        b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    ),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    (b"Accept-Language", b"en-GB,en;q=0.9"),
    (b"Accept-Encoding", b"gzip, deflate, br"),
    (b"Cookie", b"_ga=GA1.1.123456789.1700000000; session=eyJ1c2VyIjoxMn0.Zk3x9Q; consent=yes"),
    (b"Referer", b"https://shop.example.test/catalog?page=2"),
)
FORM_BODY = b"&".join(b"field%d=Some+ordinary+text+%d%%2C+nothing+to+see" % (i, i) for i in range(220))[:10240]
JSON_BODY = json.dumps(
    {
        "order": {"id": 48213, "currency": "EUR", "coupon": None},
        "items": [
            {
                "sku": f"SKU-{i:05d}",
                "name": f"Blue cotton shirt, size {i % 5}",
                "qty": i % 3 + 1,
                "price": 19.5,
                "note": "Soft organic cotton, machine washable at 30 degrees; ships in two to three days. " * 2,
            }
            for i in range(40)
        ],
    }
).encode()


def _post(body: bytes, content_type: bytes) -> HttpRequest:
    headers = (*BROWSER, (b"Content-Type", content_type), (b"Content-Length", b"%d" % len(body)))
    return HttpRequest(b"POST", b"/checkout", b"HTTP/1.1", headers, "127.0.0.1", body)


REQUESTS = {
    "browser GET": HttpRequest(b"GET", b"/products/blue-shirt?color=blue&size=M", b"HTTP/1.1", BROWSER, "127.0.0.1"),
    "10 KB form POST": _post(FORM_BODY, b"application/x-www-form-urlencoded"),
    "10 KB JSON POST": _post(JSON_BODY, b"application/json"),
}
COUNTS = {"browser GET": 3000, "10 KB form POST": 600, "10 KB JSON POST": 600}


def _page(size: int) -> bytes:
    """A benign HTML page of about ``size`` bytes: navigation, product cards, a footer."""
    card = (
        b'<div class="card"><a href="/products/%d"><img src="/img/%d.webp" alt="Blue cotton shirt"></a>'
        b"<h3>Blue cotton shirt</h3><p>Soft organic cotton, machine washable at 30 degrees.</p>"
        b'<span class="price">19.50 EUR</span><button data-sku="SKU-%05d">Add to basket</button></div>\n'
    )
    head = b"<!DOCTYPE html><html><head><title>Shop</title><link rel=stylesheet href=/s.css></head><body>\n"
    cards = b""
    i = 0
    while len(head) + len(cards) < size - 40:
        cards += card % (i, i, i)
        i += 1
    return head + cards + b"<footer>Acme 2026</footer></body></html>\n"


PAGES = {"20 KB HTML page": ("page20.html", _page(20_000)), "100 KB HTML page": ("page100.html", _page(100_000))}
PAGE_COUNTS = {"20 KB HTML page": 1500, "100 KB HTML page": 600}


def _get(path: str) -> HttpRequest:
    return HttpRequest(b"GET", f"/{path}".encode(), b"HTTP/1.1", BROWSER, "127.0.0.1")


def engine_response_cpu(request: HttpRequest, body: bytes, config: EngineConfig, count: int) -> float:
    """Phases 1-4 on one transaction per request, the page as the held response body."""
    engine = load_engine()
    headers = ((b"Content-Type", b"text/html"), (b"Content-Length", b"%d" % len(body)))
    response = HttpResponse(200, b"HTTP/1.1", headers, body)

    def once() -> None:
        t = engine.transaction(request, config)
        engine.run(t, config, (1, 2))
        outcome = engine.respond(t, response, config)
        assert not outcome.matches, outcome.matches

    once()
    start = time.process_time()
    for _ in range(count):
        once()
    return (time.process_time() - start) / count


def _raw(request: HttpRequest) -> bytes:
    head = b"%s %s %s\r\n" % (request.method, request.target, request.protocol)
    head += b"".join(b"%s: %s\r\n" % (n, v) for n, v in request.headers)
    return head + b"\r\n" + (request.body or b"")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_response(sock: socket.socket, pending: bytearray) -> None:
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        rest += chunk
    pending[:] = rest[length:]


def nginx_cpu(server: ModSecurityNginx, raw: bytes, count: int) -> float:
    """Worker CPU seconds per request for ``count`` requests on one keep-alive connection."""
    (worker,) = server.worker_pids()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = bytearray()
        for _ in range(20):  # warm the connection and the worker
            sock.sendall(raw)
            _read_response(sock, pending)
        start = _cpu_seconds(worker)
        for _ in range(count):
            sock.sendall(raw)
            _read_response(sock, pending)
        time.sleep(0.05)
        return (_cpu_seconds(worker) - start) / count


def engine_cpu(request: HttpRequest, config: EngineConfig, count: int) -> float:
    engine = load_engine()
    engine.evaluate(request, config)
    start = time.process_time()
    for _ in range(count):
        engine.evaluate(request, config)
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pl", type=int, default=1)
    parser.add_argument("--response", action="store_true", help="pages through phases 1-4 (see above)")
    args = parser.parse_args()
    if not module_available():
        sys.exit("libnginx-mod-http-modsecurity is not installed")
    if args.response:
        response_main(args.runs, args.pl)
        return
    config = EngineConfig(paranoia_level=args.pl, threshold=5, tx=DEFAULT_TX)
    engine = load_engine()
    for name, request in REQUESTS.items():
        matched = [m.rule_id for m in engine.evaluate(request, config).matches]
        # At PL1 nothing matches; higher levels flag ordinary text (942200 at PL2: commas in the form),
        # which both engines then log (DetectionOnly: the same work whatever the score).
        assert not matched or args.pl > 1, f"{name} is not benign at PL{args.pl}: {matched}"
        if matched:
            print(f"{name} at PL{args.pl}: originlock matches {matched}")
    with tempfile.TemporaryDirectory() as tmp:
        waf = ModSecurityNginx(Path(tmp, "modsec"), config, detection_only=args.pl > 1, audit=False).start()
        bare = ModSecurityNginx(Path(tmp, "bare"), config, audit=False, modsecurity=False).start()
        try:
            results: dict[str, dict[str, list[float]]] = {n: {"ol": [], "ms": [], "bare": []} for n in REQUESTS}
            for _ in range(args.runs):
                for name, request in REQUESTS.items():
                    raw, count = _raw(request), COUNTS[name]
                    results[name]["bare"].append(nginx_cpu(bare, raw, count))
                    results[name]["ms"].append(nginx_cpu(waf, raw, count))
                    results[name]["ol"].append(engine_cpu(request, config, count))
            errors = waf.error_log().count("ModSecurity: Access denied")
            assert errors == 0, "ModSecurity blocked a benign request"
        finally:
            waf.stop()
            bare.stop()
    print(f"CRS 4.28.0 at PL{args.pl}, CPU per request, median of {args.runs} (box shared: compare the ratios)")
    print(f"{'request':18s} {'originlock':>11s} {'ModSecurity':>12s} {'(nginx+MS)':>11s} {'(nginx)':>8s} {'ratio':>6s}")
    for name, series in results.items():
        ours = statistics.median(series["ol"]) * 1e6
        with_ms = statistics.median(series["ms"]) * 1e6
        bare_us = statistics.median(series["bare"]) * 1e6
        theirs = max(with_ms - bare_us, 1e-3)
        print(f"{name:18s} {ours:9.0f}us {theirs:10.0f}us {with_ms:9.0f}us {bare_us:6.0f}us {ours / theirs:5.2f}x")


def response_main(runs: int, pl: int) -> None:
    config = EngineConfig(paranoia_level=pl, threshold=5, tx=DEFAULT_TX)
    with tempfile.TemporaryDirectory() as tmp:
        waf = ModSecurityNginx(Path(tmp, "modsec"), config, detection_only=pl > 1, audit=False, response=True)
        bare = ModSecurityNginx(Path(tmp, "bare"), config, audit=False, modsecurity=False, response=True)
        waf.start()
        bare.start()
        try:
            for server in (waf, bare):
                for file, body in PAGES.values():
                    (server.prefix / "www" / file).write_bytes(body)
            results: dict[str, dict[str, list[float]]] = {n: {"ol": [], "ms": [], "bare": []} for n in PAGES}
            for _ in range(runs):
                for name, (file, body) in PAGES.items():
                    request, count = _get(file), PAGE_COUNTS[name]
                    raw = _raw(request)
                    results[name]["bare"].append(nginx_cpu(bare, raw, count))
                    results[name]["ms"].append(nginx_cpu(waf, raw, count))
                    results[name]["ol"].append(engine_response_cpu(request, body, config, count))
            assert waf.error_log().count("ModSecurity: Access denied") == 0, "ModSecurity blocked a benign page"
        finally:
            waf.stop()
            bare.stop()
    print(f"CRS 4.28.0 at PL{pl}, phases 1-4, CPU per request, median of {runs} (box shared: compare the ratios)")
    print(f"{'page':18s} {'originlock':>11s} {'ModSecurity':>12s} {'(nginx+MS)':>11s} {'(nginx)':>8s} {'ratio':>6s}")
    for name, series in results.items():
        ours = statistics.median(series["ol"]) * 1e6
        with_ms = statistics.median(series["ms"]) * 1e6
        bare_us = statistics.median(series["bare"]) * 1e6
        theirs = max(with_ms - bare_us, 1e-3)
        print(f"{name:18s} {ours:9.0f}us {theirs:10.0f}us {with_ms:9.0f}us {bare_us:6.0f}us {ours / theirs:5.2f}x")


if __name__ == "__main__":
    main()
