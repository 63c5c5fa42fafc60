"""``originlock origin check|config|status``: prove an origin is locked, configure it to be, watch it stay so.

Wiring: ``add_parser(subparsers)`` adds ``origin`` with two subcommands; each sets ``func`` to a callable
``(argparse.Namespace) -> int`` returning the exit code, which ``cli/main.py`` calls. Talking to the
control plane goes through :class:`~originlock.originkit.material.EdgeMaterial`; tests and the exposure
monitor can pass their own via ``args.edge_material``.

Exit codes (``origin check``): 0 LOCKED, 1 OPEN, 3 MISCONFIGURED, 4 UNREACHABLE, 2 usage or
control-plane error. ``origin config``: 0 written, 2 error. ``origin status``: 0 listed, 2 error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from originlock.cli.client import ApiClient, CliError, client_from_args
from originlock.cli.output import table
from originlock.originkit.api_client import API_TOKEN_ENV, API_URL_ENV, ApiEdgeMaterial, ControlPlaneError
from originlock.originkit.check import DEFAULT_TIMEOUT, check_origin
from originlock.originkit.material import EdgeIdentity, EdgeMaterial
from originlock.originkit.memcert import KeyMaterialError
from originlock.originkit.report import CheckReport, Verdict, format_text
from originlock.originkit.snippets import (
    PHASES,
    SERVERS,
    SnippetOptions,
    bundle_file_name,
    render,
    write_ca_bundle,
)
from originlock.tls.certs import CertificateError, describe, load_certificates

__all__ = ["EXIT_CODES", "add_parser", "run_check", "run_config", "run_status"]

EXIT_CODES = {Verdict.LOCKED: 0, Verdict.OPEN: 1, Verdict.MISCONFIGURED: 3, Verdict.UNREACHABLE: 4}
EXIT_ERROR = 2

CHECK_EPILOG = """\
examples:
  originlock origin check https://203.0.113.10 --hostname app.example.test
  originlock origin check 203.0.113.10:8443 --hostname app.example.test \\
      --client-cert edge.pem --client-key edge.key --json
exit codes: 0 LOCKED, 1 OPEN, 3 MISCONFIGURED, 4 UNREACHABLE, 2 usage or control-plane error"""

CONFIG_EPILOG = """\
examples:
  originlock origin config nginx --zone example.test --out-dir /etc/nginx/certs
  originlock origin config apache --zone example.test --hostname app.example.test \\
      --server-cert /etc/ssl/app.pem --server-key /etc/ssl/app.key"""

STATUS_EPILOG = """\
examples:
  originlock origin status
  originlock origin status --zone example.test --json
the verdicts come from the exposure monitor that `originlock serve` runs (--origin-monitor-interval)"""
STATUS_COLUMNS = ("zone", "hostname", "origin", "verdict", "previous_verdict", "changed_at", "checked_at")


def _api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help=f"control-plane URL (default: ${API_URL_ENV})")
    parser.add_argument("--token", help=f"API token, sent as Bearer (default: ${API_TOKEN_ENV})")


def add_parser(subparsers: Any) -> None:
    """Add ``origin`` (with ``check``, ``config`` and ``status``) to the root parser's subparsers."""
    origin = subparsers.add_parser(
        "origin",
        help="check and configure origins that enforce AOP",
        description=(
            "Prove that an origin only accepts the edge, and configure it to.\n\nexamples:\n"
            "  originlock origin config nginx --zone example.test --out-dir /etc/nginx/certs\n"
            "  originlock origin check https://203.0.113.10 --hostname app.example.test\n"
            "  originlock origin status"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = origin.add_subparsers(dest="origin_command", metavar="{check,config,status}", required=True)

    check = sub.add_parser(
        "check",
        help="probe an origin directly and say LOCKED / OPEN / MISCONFIGURED",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("url", metavar="URL", help="the origin itself (not the edge): https://HOST[:PORT][/path]")
    check.add_argument("--hostname", help="the proxied hostname: SNI and Host header for every probe")
    check.add_argument("--zone", help="zone name, to ask the control plane which certificate the edge presents")
    check.add_argument("--client-cert", type=Path, help="the edge's client certificate chain (PEM), for probe 3")
    check.add_argument("--client-key", type=Path, help="its private key (PEM); read into memory only")
    check.add_argument(
        "--via-edge",
        metavar="EDGE_URL",
        help="run probe 3 through the edge at this URL instead of with local key material",
    )
    check.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per network step")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    _api_flags(check)
    check.set_defaults(func=run_check)

    config = sub.add_parser(
        "config",
        help="print the origin server's AOP configuration and write its CA bundle",
        epilog=CONFIG_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("server", metavar="SERVER", choices=sorted(SERVERS), help=", ".join(SERVERS))
    config.add_argument("--zone", help="zone name (required unless --ca-file is given)")
    config.add_argument("--hostname", help="one hostname with its own certificate (per-hostname AOP)")
    config.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the CA bundle")
    config.add_argument("--ca-file", type=Path, help="use this CA bundle instead of asking the control plane")
    config.add_argument(
        "--server-cert",
        default="/etc/ssl/originlock/origin.pem",
        help="the origin's own server certificate path, as written into the config",
    )
    config.add_argument(
        "--server-key",
        default="/etc/ssl/originlock/origin.key",
        help="the origin's own server key path, as written into the config",
    )
    config.add_argument("--port", type=int, default=443, help="HTTPS port the origin listens on")
    config.add_argument("--app", help="where admitted requests go (needed for haproxy/envoy; optional otherwise)")
    config.add_argument("--phase", choices=["both", *PHASES], default="both", help="which phase to print")
    config.add_argument("--json", action="store_true", help="machine-readable output")
    _api_flags(config)
    config.set_defaults(func=run_config)

    status = sub.add_parser(
        "status",
        help="the exposure monitor's latest verdict for every proxied origin",
        epilog=STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--zone", help="one zone (name or id); default: every zone the token can see")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _api_flags(status)
    status.set_defaults(func=run_status)


def _material(args: argparse.Namespace, *, required: bool) -> EdgeMaterial | None:
    given: EdgeMaterial | None = getattr(args, "edge_material", None)
    if given is not None:
        return given
    try:
        return ApiEdgeMaterial.from_env(args.api_url, args.token)
    except ControlPlaneError:
        if required:
            raise
        return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _read_local_client(args: argparse.Namespace) -> tuple[str, bytes] | None:
    if (args.client_cert is None) != (args.client_key is None):
        raise ValueError("--client-cert and --client-key go together")
    if args.client_cert is None:
        return None
    try:
        return args.client_cert.read_text(), args.client_key.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None


def _explicit_api(args: argparse.Namespace) -> bool:
    """Did the operator ask for the control plane (so that failing to reach it is an error)?"""
    return bool(
        args.zone
        or args.api_url
        or args.token
        or os.environ.get(API_URL_ENV)
        or os.environ.get(API_TOKEN_ENV)
        or getattr(args, "edge_material", None)
    )


def run_check(args: argparse.Namespace) -> int:
    skipped_api: str | None = None
    try:
        local = _read_local_client(args)
        explicit = _explicit_api(args)
        material = _material(args, required=explicit)
        identity: EdgeIdentity | None = None
        if material is not None and (args.zone or args.hostname):
            try:
                identity = material.edge_identity(zone=args.zone, hostname=args.hostname)
            except (ControlPlaneError, LookupError) as exc:
                if explicit:
                    raise
                # Only the defaults were tried: probing the origin is still worth doing.
                skipped_api = str(exc)
        report = check_origin(
            args.url,
            server_name=args.hostname,
            edge_client=local,
            via_edge=args.via_edge,
            edge_certificate_pem=identity.certificate_pem if identity else None,
            edge_source=identity.source if identity else None,
            timeout=args.timeout,
        )
    except (ValueError, LookupError, ControlPlaneError, KeyMaterialError) as exc:
        return _fail(str(exc))
    if material is None or skipped_api is not None:
        why = skipped_api or "no --api-url/--token"
        report = _with_note(
            report, f"control plane not consulted ({why}): the edge's certificate for this hostname is unknown"
        )
    if args.json:
        out = report.to_dict()
        if identity is not None:
            out["edge_certificate_id"] = identity.certificate_id
        print(json.dumps(out, indent=2))
    else:
        print(format_text(report))
    return EXIT_CODES[report.verdict]


def _with_note(report: CheckReport, note: str) -> CheckReport:
    return replace(report, notes=(*report.notes, note))


def _bundle(args: argparse.Namespace) -> tuple[str, str | None]:
    """CA bundle PEM and where it came from (``None`` for a local file)."""
    if args.ca_file is not None:
        try:
            return args.ca_file.read_text(), None
        except OSError as exc:
            raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if args.zone is None:
        raise ValueError("--zone is required (or give --ca-file to skip the control plane)")
    material = _material(args, required=True)
    assert material is not None
    identity = material.edge_identity(zone=args.zone, hostname=args.hostname)
    scope = args.hostname or args.zone
    if identity.presents_certificate and not identity.ca_bundle_pem:
        # A custom certificate uploaded without its issuer: the edge presents it, but the control plane
        # cannot tell the origin which CA to trust.
        raise ValueError(
            f"the edge presents the {identity.source}-level certificate {identity.certificate_id or ''} for "
            f"{scope}, but its issuing CA was not uploaded with it, so there is no CA bundle to write: pass the CA "
            f"that issued it with --ca-file (e.g. --ca-file ca.pem from `originlock certs issue-ca`)"
        )
    if not identity.presents_certificate or not identity.ca_bundle_pem:
        raise ValueError(
            f"the edge presents no client certificate for {scope}: enable Authenticated Origin "
            "Pulls for the zone or hostname first, then run this again"
        )
    return identity.ca_bundle_pem, identity.source


def run_config(args: argparse.Namespace) -> int:
    try:
        pem, source = _bundle(args)
        names = (args.hostname,) if args.hostname else ((args.zone, f"*.{args.zone}") if args.zone else ("_",))
        file_name = bundle_file_name(args.zone, args.hostname)
        opts = SnippetOptions(
            server_names=names,
            server_cert_path=args.server_cert,
            server_key_path=args.server_key,
            ca_bundle_path=str(args.out_dir.resolve() / file_name),
            listen_port=args.port,
            app_url=args.app,
        )
        phases = PHASES if args.phase == "both" else (args.phase,)
        # Render first: a usage error (e.g. no --app for haproxy) must not leave a bundle behind.
        rendered = {phase: render(args.server, opts, phase) for phase in phases}
        path = write_ca_bundle(pem, args.out_dir, file_name)
        cas = [describe(c) for c in load_certificates(path.read_text())]
    except (ValueError, LookupError, ControlPlaneError, CertificateError, OSError) as exc:
        return _fail(str(exc))
    if args.json:
        print(
            json.dumps(
                {
                    "server": args.server,
                    "source": source,
                    "ca_bundle_path": str(path),
                    "ca_certificates": [
                        {
                            "subject": c.subject,
                            "expires_on": c.expires_on.isoformat(),
                            "fingerprint_sha256": c.fingerprint_sha256,
                        }
                        for c in cas
                    ],
                    "phases": rendered,
                },
                indent=2,
            )
        )
        return 0
    for i, phase in enumerate(phases):
        step = (
            "step 1: accept (certificates requested, not yet required)"
            if phase == "accept"
            else "step 2: enforce (only the edge gets in)"
        )
        print(("\n" if i else "") + f"# ---- {step} ----\n{rendered[phase]}", end="")
    print(
        f"wrote {path} ({len(cas)} CA certificate{'s' if len(cas) != 1 else ''}: {'; '.join(c.subject for c in cas)})",
        file=sys.stderr,
    )
    target = args.hostname or (args.zone or "HOST")
    print(
        f"next: deploy the accept phase, then the enforce phase, then run "
        f"`originlock origin check https://ORIGIN --hostname {target}`",
        file=sys.stderr,
    )
    return 0


def _zones(api: ApiClient, zone: str | None) -> list[dict[str, Any]]:
    if zone is not None:
        return [api.request("GET", f"/zones/{api.zone_id(zone)}")]
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = api.request("GET", "/zones", query={"per_page": "50", "page": str(page)}) or []
        found += batch
        if len(batch) < 50:
            return found
        page += 1


def run_status(args: argparse.Namespace) -> int:
    try:
        api = client_from_args(args)
        rows = [
            {"zone": zone["name"], "zone_id": zone["id"], **item}
            for zone in _zones(api, args.zone)
            for item in api.request("GET", f"/zones/{zone['id']}/origin_tls_client_auth/exposure") or []
        ]
    except CliError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(
            "(none) the exposure monitor has not recorded any origin yet: `originlock serve` checks the origins of "
            "proxied hostnames in SSL mode full, strict or origin_pull every --origin-monitor-interval seconds"
        )
        return 0
    print(table(rows, STATUS_COLUMNS))
    for row in rows:
        if row["verdict"] != Verdict.LOCKED.value and row.get("reasons"):
            print(f"{row['hostname']}: {row['verdict']}: {'; '.join(row['reasons'])}")
    return 0
