"""The CRS regression tests (go-ftw YAML) as raw HTTP requests and expectations.

Each YAML file holds tests for one rule; each test has stages (one request each) with an ``input``
(method, uri, version, headers, data, or an ``encoded_request``/``raw_request`` sent verbatim) and an
``output`` (``log.expect_ids`` / ``log.no_expect_ids``, or a ``status``). :func:`load_cases` turns
them into :class:`Case` values holding the exact bytes to send: go-ftw's header completion is
reproduced (form-urlencoded ``Content-Type`` and ``Content-Length`` for a body, unless
``autocomplete_headers: false``), and ``Host: localhost`` is rewritten to the hostname the test
edge serves (the only change made to a request).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML, a test dependency

__all__ = ["Case", "judge", "load_cases", "load_overrides"]


@dataclass(frozen=True, slots=True)
class Case:
    rule_id: int
    test_id: int
    stage: int
    raw: bytes
    expect_ids: frozenset[int]
    no_expect_ids: frozenset[int]
    status: tuple[int, ...]
    """Expected status codes when the test judges by status only."""

    @property
    def name(self) -> str:
        suffix = f".{self.stage}" if self.stage else ""
        return f"{self.rule_id}-{self.test_id}{suffix}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _build(data: dict[str, Any], host: str) -> bytes:
    if data.get("encoded_request"):
        raw = base64.b64decode(data["encoded_request"])
        return raw.replace(b"Host: localhost\r\n", f"Host: {host}\r\n".encode())
    if data.get("raw_request"):
        raw = _text(data["raw_request"]).encode("utf-8")
        return raw.replace(b"Host: localhost\r\n", f"Host: {host}\r\n".encode())
    method = _text(data.get("method") or "GET")
    uri = _text(data.get("uri") or "/")
    version = _text(data["version"]) if "version" in data else "HTTP/1.1"
    headers: list[tuple[str, str]] = [(str(k), _text(v)) for k, v in (data.get("headers") or {}).items()]
    headers = [(k, host if k.lower() == "host" and v == "localhost" else v) for k, v in headers]
    # A same-site Referer/Origin stays same-site once Host is rewritten.
    headers = [
        (k, v.replace("//localhost", f"//{host}") if k.lower() in ("referer", "origin") else v) for k, v in headers
    ]
    body = _text(data.get("data")).encode("utf-8") if data.get("data") is not None else b""
    if data.get("autocomplete_headers", True):
        names = {k.lower() for k, _ in headers}
        if body and "content-type" not in names:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if body and "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(body))))
    line = f"{method} {uri} {version}" if version else f"{method} {uri}"  # no version: HTTP/0.9
    head = f"{line}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + body


def _ids(value: Any) -> frozenset[int]:
    return frozenset(int(v) for v in (value or ()))


def load_cases(root: Path, host: str = "localhost") -> list[Case]:
    """Every stage of every test under ``root`` (a ``tests/regression/tests`` folder), in file order."""
    cases: list[Case] = []
    for path in sorted(root.rglob("*.yaml")):
        document = yaml.safe_load(path.read_text("utf-8"))
        rule_id = int(document.get("rule_id") or path.stem)
        for index, test in enumerate(document.get("tests") or (), 1):
            test_id = int(test.get("test_id") or index)
            stages = test.get("stages") or ()
            for number, stage in enumerate(stages):
                stage = stage.get("stage", stage)
                output = stage.get("output") or {}
                log = output.get("log") or {}
                status = output.get("status")
                statuses = tuple(status) if isinstance(status, list) else (int(status),) if status else ()
                cases.append(
                    Case(
                        rule_id,
                        test_id,
                        number if len(stages) > 1 else 0,
                        _build(stage.get("input") or {}, host),
                        _ids(log.get("expect_ids")),
                        _ids(log.get("no_expect_ids")),
                        statuses,
                    )
                )
    return cases


def load_overrides(path: Path) -> dict[tuple[int, int], str]:
    """(rule id, test id) -> reason, from an engine's ``*-overrides.yaml``."""
    document = yaml.safe_load(path.read_text("utf-8")) or {}
    out: dict[tuple[int, int], str] = {}
    for item in document.get("test_overrides") or ():
        for test_id in item.get("test_ids") or ():
            out[(int(item["rule_id"]), int(test_id))] = str(item.get("reason", ""))
    return out


def judge(case: Case, logged: set[int], status: int | None) -> str | None:
    """None when ``case`` passes, else why it failed. A case with log expectations is judged by the
    rule ids in the access log; one with only a status by the status."""
    if case.expect_ids or case.no_expect_ids:
        missing = case.expect_ids - logged
        unexpected = case.no_expect_ids & logged
        if missing or unexpected:
            return f"missing {sorted(missing)} unexpected {sorted(unexpected)}"
        return None
    if case.status and status not in case.status:
        return f"status {status}, expected {list(case.status)}"
    return None
