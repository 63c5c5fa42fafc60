"""``originlock rules test``, driven through our own argparse root."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from originlock.cli import rules


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    root = argparse.ArgumentParser(prog="originlock")
    rules.add_parser(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(argv)
    status = args.func(args)
    return status, capsys.readouterr().out


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "req.json"
    path.write_text(
        json.dumps(
            {
                "method": "POST",
                "url": "https://app.example.test/login?next=/",
                "headers": {"User-Agent": "curl/8.5", "X-Multi": ["a", "b"]},
                "ip": "203.0.113.7",
                "body": "user=bob",
                "fields": {"cf.tls_version": "TLSv1.3", "cf.edge.server_port": 443},
            }
        )
    )
    return path


def test_match_shows_each_comparison(request_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(
        [
            "rules",
            "test",
            'http.host eq "app.example.test" and not ip.src in {10.0.0.0/8}',
            "--request",
            str(request_file),
        ],
        capsys,
    )
    assert status == 0
    assert out.startswith("MATCH: ")
    assert 'yes  http.host eq "app.example.test"    <- "app.example.test"' in out


def test_no_match_and_json_output(request_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expression = 'cf.tls_version eq "TLSv1.2" or any(http.request.headers["x-multi"][*] eq "b")'
    status, out = _run(["rules", "test", expression, "--request", str(request_file), "--json"], capsys)
    result = json.loads(out)
    assert status == 0 and result["matched"] is True
    first = {"comparison": 'cf.tls_version eq "TLSv1.2"', "value": "TLSv1.3", "result": False}
    assert result["comparisons"][0] == first
    status, out = _run(["rules", "test", "not ssl", "--request", str(request_file)], capsys)
    assert status == 1 and out.startswith("NO MATCH")


def test_errors_exit_2(request_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(["rules", "test", 'http.host eq "a', "--request", str(request_file)], capsys)
    assert status == 2 and "Filter parsing error (1:14)" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"url": "not-a-url"}')
    status, out = _run(["rules", "test", "ssl", "--request", str(bad)], capsys)
    assert status == 2 and "absolute" in out


def test_load_request_defaults_and_field_types() -> None:
    request = rules.load_request({"url": "http://h.test/", "fields": {"ip.src.country": "GB"}})
    assert request.headers == ((b"Host", b"h.test"),)
    assert request.extra["ip.src.country"] == b"GB"
    with pytest.raises(ValueError, match="type Int"):
        rules.load_request({"url": "http://h.test/", "fields": {"cf.edge.server_port": "x"}})
    assert rules.run_test("ssl", Path("/nonexistent.json"), out=io.StringIO()) == 2
