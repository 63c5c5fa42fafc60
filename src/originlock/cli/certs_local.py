"""`originlock certs issue-ca|issue-client|inspect`: make and read AOP certificates locally, no API needed.

Follows the shape of Cloudflare's OpenSSL recipe for AOP: a private CA, and leaves with ``CA:FALSE`` and
the clientAuth extended key usage, ready to upload.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from originlock.cli.client import CliError
from originlock.cli.parsers import subcommand

if TYPE_CHECKING:
    from originlock.tls.issue import Issued

# The tls modules (cryptography) are imported by the commands that use them: every other command of the
# CLI starts without them (cli/main.py).

__all__ = ["add_local_commands"]

KEY_KINDS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")


def _write(path: Path, data: bytes, secret: bool) -> None:
    # Keys are created 0600 from the start: never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _save(issued: Issued, prefix: str) -> tuple[Path, Path]:
    cert_path, key_path = Path(f"{prefix}.pem"), Path(f"{prefix}.key")
    _write(cert_path, issued.cert_pem.encode(), secret=False)
    _write(key_path, issued.key_pem, secret=True)
    return cert_path, key_path


def _issue_ca(args: argparse.Namespace) -> int:
    from originlock.tls.issue import issue_ca, new_key

    ca = issue_ca(args.cn, now=datetime.now(UTC), days=args.days, key=new_key(args.key), organization=args.org)
    cert_path, key_path = _save(ca, args.out)
    print(f"CA certificate: {cert_path}  (install it on your origin as the CA it trusts)")
    print(f"CA key:         {key_path}  (0600; keep it offline)")
    print(f"next: originlock certs issue-client --ca {cert_path} --ca-key {key_path} --cn app.example.test")
    return 0


def _issue_client(args: argparse.Namespace) -> int:
    from originlock.tls.certs import load_certificates, load_private_key
    from originlock.tls.issue import Issued, issue_leaf, new_key

    try:
        ca_cert = load_certificates(Path(args.ca).read_text())[0]
        ca_key = load_private_key(Path(args.ca_key).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the CA: {exc}") from None
    leaf = issue_leaf(Issued(ca_cert, ca_key), args.cn, now=datetime.now(UTC), days=args.days, key=new_key(args.key))
    cert_path, key_path = _save(leaf, args.out)
    print(f"client certificate: {cert_path}\nclient key:         {key_path}  (0600)")
    print(f"next: originlock certs upload ZONE --cert {cert_path} --key {key_path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from originlock.tls.certs import describe, load_certificates
    from originlock.tls.policy import fips_verdict

    try:
        certs = load_certificates(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    rows: list[dict[str, Any]] = []
    for cert in certs:
        info = describe(cert)
        verdict = fips_verdict(cert)
        rows.append(
            {
                "subject": info.subject,
                "issuer": info.issuer,
                "serial_number": info.serial_number,
                "signature": info.signature,
                "key_type": info.key_type,
                "is_ca": info.is_ca,
                "not_before": info.not_before.isoformat(),
                "expires_on": info.expires_on.isoformat(),
                "sha256": info.fingerprint_sha256,
                "fips": "approved" if verdict.approved else "not approved: " + "; ".join(verdict.reasons),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            width = max(len(k) for k in row)
            print("\n".join(f"{k.ljust(width)}  {v}" for k, v in row.items()), end="\n\n")
    return 0


def add_local_commands(certs: Any) -> None:
    p = subcommand(
        certs,
        "issue-ca",
        "create a private CA for AOP client certificates",
        "originlock certs issue-ca --cn example.test --out example-ca",
    )
    p.add_argument("--cn", required=True, help="the CA's common name (Cloudflare's recipe uses the domain)")
    p.add_argument("--org", default=None)
    p.add_argument("--days", type=int, default=1826, help="validity (default 1826, as in Cloudflare's recipe)")
    p.add_argument("--key", choices=KEY_KINDS, default="ecdsa-p256")
    p.add_argument("--out", default="aop-ca", help="output prefix: writes PREFIX.pem and PREFIX.key")
    p.set_defaults(func=_issue_ca)

    p = subcommand(
        certs,
        "issue-client",
        "issue an AOP client certificate from a private CA",
        "originlock certs issue-client --ca aop-ca.pem --ca-key aop-ca.key --cn app.example.test",
    )
    p.add_argument("--ca", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--cn", required=True, help="common name (Cloudflare's recipe uses the hostname)")
    p.add_argument("--days", type=int, default=730, help="validity (default 730, as in Cloudflare's recipe)")
    p.add_argument("--key", choices=KEY_KINDS, default="ecdsa-p256")
    p.add_argument("--out", default="aop-client", help="output prefix: writes PREFIX.pem and PREFIX.key")
    p.set_defaults(func=_issue_client)

    p = subcommand(
        certs,
        "inspect",
        "show what the API would record for a certificate file",
        "originlock certs inspect aop-client.pem",
    )
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_inspect)
