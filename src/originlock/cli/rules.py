"""``originlock rules test 'EXPR' --request FILE``: evaluate an expression offline.

Prints whether the expression matches the request described by FILE (JSON, format in
``docs/waf.md``) and, for every comparison in it, the value the left-hand side had and whether
that comparison matched: the dry run Cloudflare users ask for. Exit status: 0 match, 1 no match,
2 invalid expression or request file.

The CLI root wires this in with ``rules.add_parser(subparsers)``; each subcommand stores its
handler as ``func(args) -> int`` in the parsed namespace.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import ipaddress
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from originlock.waf import FieldValues, ParseError, RequestFields, compile_expression, parse, to_source
from originlock.waf.ast import Combining, Comparison, LogicalExpr, Not, Parenthesized
from originlock.waf.compiler import compile_value
from originlock.waf.fields import FIELD_TYPES
from originlock.waf.types import Kind, Type

__all__ = ["add_parser", "load_request", "run_managed_test", "run_test"]

_EXAMPLE = """example:
  originlock rules test 'http.host eq "app.example.test" and not ip.src in {10.0.0.0/8}' \\
      --request req.json

req.json:
  {"method": "GET", "url": "https://app.example.test/login?next=/",
   "headers": {"User-Agent": "curl/8.5"}, "ip": "203.0.113.7"}
"""


class RequestFileError(ValueError):
    pass


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``rules`` and its ``test`` subcommand on the CLI root's subparsers."""
    rules = subparsers.add_parser(
        "rules",
        help="work with WAF rule expressions",
        description="Work with WAF rule expressions offline.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = rules.add_subparsers(dest="rules_command", required=True)
    test = sub.add_parser(
        "test",
        help="evaluate an expression against a request offline",
        description="Evaluate a Rules-language expression against a request described in a JSON file.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("expression", nargs="?", help="the filter expression, as written in a rule")
    test.add_argument("--request", required=True, type=Path, help="JSON request file (see docs/waf.md)")
    test.add_argument("--json", action="store_true", help="print a JSON result instead of text")
    test.add_argument(
        "--managed",
        nargs="?",
        const="{}",
        metavar="ACTION_PARAMETERS",
        help="run the Cloudflare OWASP Core Ruleset instead of an expression; optionally with an execute "
        "rule's action_parameters as JSON (overrides: paranoia level, score threshold...)",
    )
    test.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.managed is not None:
        return run_managed_test(args.request, args.managed, as_json=args.json)
    if args.expression is None:
        print("error: give an expression, or --managed", file=sys.stdout)
        return 2
    return run_test(args.expression, args.request, as_json=args.json)


def run_managed_test(request_file: Path, parameters: str, *, as_json: bool = False, out: TextIO | None = None) -> int:
    """Evaluate the managed OWASP ruleset on the request file. Exit 0 when the request would be stopped
    (the score rule or an overridden rule terminates), 1 when it passes, 2 for bad input."""
    from originlock.waf.managed.cloudflare import OWASP_RULESET_ID, OverrideError, engine_config
    from originlock.waf.managed.phase import request_of

    out = out or sys.stdout
    try:
        request = load_request(json.loads(request_file.read_text(encoding="utf-8")))
        params = json.loads(parameters)
        if not isinstance(params, dict):
            raise ValueError("action parameters must be a JSON object")
        params.setdefault("id", OWASP_RULESET_ID)
        config = engine_config(params)
    except OverrideError as exc:
        print(f"error: action parameters {exc.pointer}: {exc}", file=out)
        return 2
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=out)
        return 2
    from originlock.waf.managed import load_engine

    names = {name.lower() for name, _ in request.headers}
    if request.body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
        # As the edge receives it: a body always comes with its framing header.
        length = (b"Content-Length", str(len(request.body)).encode())
        request = dataclasses.replace(request, headers=(*request.headers, length))
    outcome = load_engine().evaluate(request_of(FieldValues(request)), config)
    matches = [{"ref": str(m.rule_id), "score": m.score, "action": m.action, "message": m.msg} for m in outcome.matches]
    stopped = outcome.action is not None
    if as_json:
        result = {"action": outcome.action, "score": outcome.score, "threshold": config.threshold, "matches": matches}
        print(json.dumps(result, indent=2), file=out)
    else:
        verdict = outcome.action.upper() if outcome.action else "PASS"
        print(
            f"{verdict}: anomaly score {outcome.score} (threshold {config.threshold}, PL{config.paranoia_level})",
            file=out,
        )
        for match in matches:
            print(f"  {match['ref']}  +{match['score']:<2} {match['action']:5} {match['message']}", file=out)
    return 0 if stopped else 1


def _field_value(name: str, raw: Any) -> Any:
    field_type = FIELD_TYPES.get(name)
    if field_type is None:
        raise RequestFileError(f"fields: unknown field {name!r}")
    return _convert(field_type, raw, name)


def _convert(t: Type, raw: Any, name: str) -> Any:
    if raw is None:
        return None
    if t.kind is Kind.BYTES and isinstance(raw, str):
        return raw.encode()
    if t.kind is Kind.INT and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if t.kind is Kind.BOOL and isinstance(raw, bool):
        return raw
    if t.kind is Kind.IP and isinstance(raw, str):
        addr = ipaddress.ip_address(raw)
        return (addr.version, int(addr))
    if t.kind is Kind.ARRAY and isinstance(raw, list) and t.inner is not None:
        return tuple(_convert(t.inner, item, name) for item in raw)
    if t.kind is Kind.MAP and isinstance(raw, dict) and t.inner is not None:
        return {k.encode(): _convert(t.inner, v, name) for k, v in raw.items()}
    raise RequestFileError(f"fields: {name} needs a value of type {t}")


def load_request(data: dict[str, Any]) -> RequestFields:
    """Build ``RequestFields`` from the JSON request-file object.

    Raises:
        RequestFileError: naming the bad member.
    """
    if not isinstance(data, dict) or "url" not in data:
        raise RequestFileError('a request file is a JSON object with at least "url"')
    url = urlsplit(str(data["url"]))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise RequestFileError("url must be an absolute http:// or https:// URL")
    headers_in = data.get("headers", {})
    pairs = headers_in.items() if isinstance(headers_in, dict) else headers_in
    headers: list[tuple[bytes, bytes]] = []
    for pair in pairs:
        name, value = pair
        values = value if isinstance(value, list) else [value]
        headers += [(str(name).encode(), str(v).encode()) for v in values]
    if not any(name.lower() == b"host" for name, _ in headers):
        headers.insert(0, (b"Host", url.netloc.encode()))
    body: bytes | None = None
    if data.get("body_base64") is not None:
        body = base64.b64decode(data["body_base64"])
    elif data.get("body") is not None:
        body = str(data["body"]).encode()
    extra = {name: _field_value(name, raw) for name, raw in (data.get("fields") or {}).items()}
    return RequestFields(
        method=str(data.get("method", "GET")),
        host=url.hostname,
        path=url.path or "/",
        query=url.query,
        headers=tuple(headers),
        ip=str(data.get("ip", "192.0.2.1")),
        scheme=url.scheme,
        ssl=url.scheme == "https",
        http_version=str(data.get("http_version", "HTTP/1.1")),
        body=body,
        timestamp=data.get("timestamp"),
        extra=extra,
    )


def _comparisons(node: LogicalExpr) -> Iterator[Comparison]:
    if isinstance(node, Comparison):
        yield node
    elif isinstance(node, Not):
        yield from _comparisons(node.arg)
    elif isinstance(node, Parenthesized):
        yield from _comparisons(node.expr)
    elif isinstance(node, Combining):
        for item in node.items:
            yield from _comparisons(item)


def _show(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, tuple) and len(value) == 2 and value[0] in (4, 6) and isinstance(value[1], int):
        return str(ipaddress.ip_address(value[1]) if value[0] == 4 else ipaddress.IPv6Address(value[1]))
    if isinstance(value, tuple | list):
        return [_show(v) for v in value]
    if isinstance(value, dict):
        return {_show(k): _show(v) for k, v in value.items()}
    return value


def run_test(expression: str, request_file: Path, *, as_json: bool = False, out: TextIO | None = None) -> int:
    """Evaluate ``expression`` against the request in ``request_file``; returns the exit status."""
    out = out or sys.stdout
    try:
        ast = parse(expression)
        request = load_request(json.loads(request_file.read_text(encoding="utf-8")))
    except ParseError as exc:
        print(str(exc), file=out)
        return 2
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {request_file}: {exc}", file=out)
        return 2
    values = FieldValues(request)
    matched = bool(compile_expression(ast)(values))
    parts = []
    for comparison in _comparisons(ast):
        result = compile_expression(comparison)(values)
        value = None if comparison.lhs.map_each_count else compile_value(comparison.lhs)(values)
        parts.append({"comparison": to_source(comparison), "value": _show(value), "result": _show(result)})
    if as_json:
        print(json.dumps({"matched": matched, "comparisons": parts}, indent=2), file=out)
    else:
        print(f"{'MATCH' if matched else 'NO MATCH'}: {to_source(ast)}", file=out)
        for part in parts:
            mark = "yes" if part["result"] is True or part["result"] == [True] else "no "
            print(f"  {mark}  {part['comparison']}    <- {json.dumps(part['value'])}", file=out)
    return 0 if matched else 1
