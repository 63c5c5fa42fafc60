"""Read a client certificate that a TLS-terminating proxy in front of the app forwarded in a header.

Off by default: a header is only as trustworthy as the hop that set it. Enable it only when the app is
reachable *only* through that proxy and the proxy overwrites the header on every request (Envoy's
``forward_client_cert_details: SANITIZE_SET`` does; see docs/origin-kit.md).

Formats:

- Envoy ``X-Forwarded-Client-Cert``: ``;``-separated ``key=value`` pairs, elements separated by ``,``;
  ``Cert="<URL-encoded PEM>"`` is the leaf and ``Chain=`` the full chain. The *last* element is the one
  the nearest proxy added (Envoy appends), so that is the one used.
- A PEM header (nginx ``$ssl_client_escaped_cert``, Traefik ``passTLSClientCert``, AWS ALB): URL-encoded
  or raw PEM, or bare base64 DER without the BEGIN/END lines.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal
from urllib.parse import unquote

from cryptography import x509

from originlock.originkit.verify import EdgeVerificationError

__all__ = ["ForwardedFormat", "parse_forwarded", "parse_pem_header", "parse_xfcc"]

ForwardedFormat = Literal["xfcc", "pem"]

_PAIR = re.compile(r'\s*([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,]*)\s*(;|,|$)')


def _split_elements(value: str) -> list[dict[str, str]]:
    elements: list[dict[str, str]] = [{}]
    pos = 0
    while pos < len(value):
        match = _PAIR.match(value, pos)
        if match is None or match.end() == pos:
            raise EdgeVerificationError("forwarded client certificate header is malformed")
        raw = match.group(2)
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"')
        elements[-1][match.group(1).lower()] = raw
        if match.group(3) == ",":
            elements.append({})
        pos = match.end()
    return [e for e in elements if e]


def _certs_from_pem(text: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise EdgeVerificationError("forwarded client certificate could not be parsed") from None


def parse_xfcc(value: str) -> list[x509.Certificate]:
    """Leaf first, then any chain certificates, from the last element of an Envoy XFCC header."""
    elements = _split_elements(value)
    if not elements:
        raise EdgeVerificationError("forwarded client certificate header is empty")
    last = elements[-1]
    if "chain" in last:
        return _certs_from_pem(unquote(last["chain"]))
    if "cert" in last:
        return _certs_from_pem(unquote(last["cert"]))
    raise EdgeVerificationError("forwarded client certificate header has no Cert= or Chain=")


def parse_pem_header(value: str) -> list[x509.Certificate]:
    """Certificates from a PEM header: URL-encoded PEM, raw PEM (spaces for newlines), or base64 DER."""
    text = unquote(value.strip())
    if "-----BEGIN" in text:
        # Some proxies fold newlines into spaces; PEM parsing needs the base64 lines back.
        text = re.sub(
            r"(-----BEGIN [A-Z ]+-----)(.*?)(-----END [A-Z ]+-----)",
            lambda m: "\n".join([m.group(1), *m.group(2).split(), m.group(3)]),
            text,
            flags=re.S,
        )
        return _certs_from_pem(text)
    certs = []
    for part in text.split(","):  # Traefik joins several certificates with commas
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(part.strip(), validate=False)))
        except (ValueError, binascii.Error):
            raise EdgeVerificationError("forwarded client certificate could not be parsed") from None
    return certs


def parse_forwarded(fmt: ForwardedFormat, value: str) -> list[x509.Certificate]:
    if fmt == "xfcc":
        return parse_xfcc(value)
    return parse_pem_header(value)
