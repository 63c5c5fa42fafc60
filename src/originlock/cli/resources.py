"""`originlock zones|dns|certs|tokens ...`: thin commands over the control-plane API."""

from __future__ import annotations

import argparse
from typing import Any

from originlock.cli.certs_local import add_local_commands
from originlock.cli.client import ApiClient, CliError, add_api_arguments, client_from_args, read_text
from originlock.cli.output import emit
from originlock.cli.parsers import subcommand
from originlock.store.setting_catalog import SETTINGS  # not store.settings: no SQLAlchemy to start the CLI

__all__ = ["add_parsers"]

ZONE_COLUMNS = ("id", "name", "status", "paused")
DNS_COLUMNS = ("id", "type", "name", "content", "proxied", "ttl")
CERT_COLUMNS = ("id", "status", "issuer", "serial_number", "expires_on")
TOKEN_COLUMNS = ("id", "name", "status", "permissions", "zones")


def _command(parent: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    parser = subcommand(parent, name, help_text, example)
    add_api_arguments(parser)
    return parser


def _zones(args: argparse.Namespace) -> int:
    api = client_from_args(args)
    if args.action == "list":
        emit(api.request("GET", "/zones", query={"per_page": "50"}), args.json, ZONE_COLUMNS)
    elif args.action == "add":
        emit(api.request("POST", "/zones", {"name": args.name, "type": "full"}), args.json, ZONE_COLUMNS)
    elif args.action == "rm":
        emit(api.request("DELETE", f"/zones/{api.zone_id(args.name)}"), args.json, ("id",))
    elif args.action == "set":
        zone_id = api.zone_id(args.name)
        try:
            result = api.request("PATCH", f"/zones/{zone_id}/settings/{args.setting}", {"value": args.value})
        except CliError as exc:
            allowed = [str(v) for v in SETTINGS[args.setting].allowed]
            if args.value in allowed:
                raise
            # Cloudflare's 1007 does not say what would have been accepted; the CLI knows.
            raise CliError(f"{exc}; valid values of {args.setting}: {', '.join(allowed)}") from None
        emit(result, args.json)
    return 0


def _dns(args: argparse.Namespace) -> int:
    api = client_from_args(args)
    zone_id = api.zone_id(args.zone)
    if args.action == "list":
        emit(api.request("GET", f"/zones/{zone_id}/dns_records"), args.json, DNS_COLUMNS)
        return 0
    if args.action == "rm":
        emit(api.request("DELETE", f"/zones/{zone_id}/dns_records/{args.name}"), args.json, ("id",))
        return 0
    if not args.origin:
        raise CliError("--origin is required: the origin's IP address (A/AAAA) or hostname (CNAME)")
    kind = args.type or ("AAAA" if ":" in args.origin else "A" if args.origin.replace(".", "").isdigit() else "CNAME")
    body = {"type": kind, "name": args.name, "content": args.origin, "ttl": 1, "proxied": args.proxied}
    emit(api.request("POST", f"/zones/{zone_id}/dns_records", body), args.json, DNS_COLUMNS)
    return 0


def _certs(args: argparse.Namespace) -> int:
    # Local files first: a typo in a path is reported as such, not hidden behind an API problem.
    upload = (
        {"certificate": read_text(args.cert, "--cert"), "private_key": read_text(args.key, "--key")}
        if args.action == "upload"
        else None
    )
    api = client_from_args(args)
    zone_id = api.zone_id(args.zone)
    base = f"/zones/{zone_id}/origin_tls_client_auth" + ("/hostnames/certificates" if args.hostname_level else "")
    if args.action == "list":
        certs = api.request("GET", base)
        emit(certs, args.json, CERT_COLUMNS)
        if not certs and not args.json and not args.hostname_level:
            _hint_hostname_level(api, zone_id, args.zone)
    elif args.action == "upload":
        emit(api.request("POST", base, upload), args.json, CERT_COLUMNS)
    elif args.action == "rm":
        emit(api.request("DELETE", f"{base}/{args.id}"), args.json, CERT_COLUMNS)
    elif args.action == "enable-zone":
        emit(api.request("PUT", f"/zones/{zone_id}/origin_tls_client_auth/settings", {"enabled": True}), args.json)
    elif args.action == "associate":
        enabled = {"true": True, "false": False, "null": None}[args.enabled]
        config = [{"hostname": args.hostname, "cert_id": args.id, "enabled": enabled}]
        emit(
            api.request("PUT", f"/zones/{zone_id}/origin_tls_client_auth/hostnames", {"config": config}),
            args.json,
            ("hostname", "cert_id", "enabled", "status"),
        )
    return 0


def _hint_hostname_level(api: ApiClient, zone_id: str, zone: str) -> None:
    """An empty zone-level list often means the certificates were uploaded per hostname: say so."""
    hostname_certs = api.request("GET", f"/zones/{zone_id}/origin_tls_client_auth/hostnames/certificates") or []
    if hostname_certs:
        count = len(hostname_certs)
        print(
            f"no zone-level certificates; {count} hostname-level certificate{'s' if count != 1 else ''}: "
            f"originlock certs list {zone} --hostname-level"
        )


def _tokens(args: argparse.Namespace) -> int:
    api = client_from_args(args)
    if args.action == "list":
        emit(api.request("GET", "/user/tokens"), args.json, TOKEN_COLUMNS)
    elif args.action == "create":
        zones = [api.zone_id(z) for z in args.zone] if args.zone else None
        body = {"name": args.name, "permissions": args.permission, "zones": zones}
        result = api.request("POST", "/user/tokens", body)
        emit(result, args.json, (*TOKEN_COLUMNS, "value"))
        if not args.json:
            print("\nThe token's value is shown only now; store it somewhere safe.")
    elif args.action == "revoke":
        emit(api.request("DELETE", f"/user/tokens/{args.id}"), args.json, ("id", "status"))
    return 0


def _group(sub: Any, name: str, help_text: str, examples: str) -> Any:
    """A command group whose --help page ends with examples, like its subcommands' pages."""
    parser = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text[0].upper()}{help_text[1:]}.\n\nexamples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.add_subparsers(dest="action", required=True)


def add_parsers(sub: Any) -> None:
    zones = _group(
        sub,
        "zones",
        "manage zones",
        "  originlock zones add example.test\n  originlock zones set example.test ssl strict\n  originlock zones list",
    )
    _command(zones, "list", "list zones", "originlock zones list").set_defaults(func=_zones)
    p = _command(zones, "add", "create a zone", "originlock zones add example.test")
    p.add_argument("name")
    p.set_defaults(func=_zones)
    p = _command(zones, "rm", "delete a zone and everything in it", "originlock zones rm example.test")
    p.add_argument("name")
    p.set_defaults(func=_zones)
    p = _command(zones, "set", "change a zone setting", "originlock zones set example.test ssl strict")
    p.add_argument("name")
    p.add_argument("setting", choices=sorted(SETTINGS))
    p.add_argument("value")
    p.set_defaults(func=_zones)

    dns = _group(
        sub,
        "dns",
        "manage DNS records",
        "  originlock dns add example.test app --origin 127.0.0.1 --proxied\n  originlock dns list example.test",
    )
    p = _command(dns, "list", "list a zone's records", "originlock dns list example.test")
    p.add_argument("zone")
    p.set_defaults(func=_dns)
    p = _command(dns, "add", "add a record", "originlock dns add example.test app --origin 127.0.0.1 --proxied")
    p.add_argument("zone")
    p.add_argument("name", help="record name, relative to the zone or fully qualified")
    p.add_argument("--origin", help="IP address (A/AAAA) or hostname (CNAME) of the origin")
    p.add_argument("--type", choices=("A", "AAAA", "CNAME"))
    p.add_argument("--proxied", action="store_true", help="send traffic through the edge")
    p.set_defaults(func=_dns)
    p = _command(dns, "rm", "delete a record", "originlock dns rm example.test RECORD_ID")
    p.add_argument("zone")
    p.add_argument("name", metavar="record_id")
    p.set_defaults(func=_dns)

    certs = _group(
        sub,
        "certs",
        "manage AOP client certificates",
        "  originlock certs issue-ca --cn example.test --out ca\n"
        "  originlock certs issue-client --ca ca.pem --ca-key ca.key --cn app.example.test --out app\n"
        "  originlock certs upload example.test --cert app.pem --key app.key\n"
        "  originlock certs list example.test",
    )
    add_local_commands(certs)
    specs = [
        ("list", "list AOP certificates", "originlock certs list example.test [--hostname-level]", ()),
        (
            "upload",
            "upload an AOP client certificate",
            "originlock certs upload example.test --cert c.pem --key k.pem",
            ("cert", "key"),
        ),
        ("rm", "delete an AOP certificate", "originlock certs rm example.test --id CERT_ID", ("id",)),
        ("enable-zone", "turn zone-level AOP on", "originlock certs enable-zone example.test", ()),
        (
            "associate",
            "associate a hostname with a hostname certificate",
            "originlock certs associate example.test --hostname app.example.test --id CERT_ID --enabled true",
            ("hostname", "id", "enabled"),
        ),
    ]
    for name, help_text, example, required in specs:
        p = _command(certs, name, help_text, example)
        p.add_argument("zone")
        p.add_argument("--hostname-level", action="store_true", help="per-hostname certificates instead of zone-level")
        for option in required:
            if option == "enabled":
                p.add_argument("--enabled", required=True, choices=("true", "false", "null"))
            else:
                p.add_argument(f"--{option}", required=True)
        p.set_defaults(func=_certs)

    tokens = _group(
        sub,
        "tokens",
        "manage API tokens",
        "  originlock tokens create ci --permission ssl:edit --zone example.test\n  originlock tokens list",
    )
    _command(tokens, "list", "list tokens", "originlock tokens list").set_defaults(func=_tokens)
    p = _command(
        tokens, "create", "create a token", "originlock tokens create ci --permission ssl:edit --zone example.test"
    )
    p.add_argument("name")
    p.add_argument("--permission", action="append", required=True, help="e.g. zone:read, dns:edit, ssl:edit (repeat)")
    p.add_argument("--zone", action="append", help="limit the token to this zone (repeat)")
    p.set_defaults(func=_tokens)
    p = _command(tokens, "revoke", "revoke a token", "originlock tokens revoke TOKEN_ID")
    p.add_argument("id")
    p.set_defaults(func=_tokens)
