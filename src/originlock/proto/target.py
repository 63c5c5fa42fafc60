"""The request-target (RFC 9112 §3.2): the one parser of its forms, and the path normalisation.

Everything the edge derives from a request-target comes from here: the hostname of an absolute-form
target (which replaces Host, RFC 9112 §3.2.2), the path and query the WAF matches, the path a redirect
keeps, and the target forwarded to the origin. There used to be three parsers that disagreed
(``http://h?a=/b``: redirect path ``/b``, WAF path ``/``).

Path normalisation is Cloudflare's default URL normalisation ("Cloudflare" type, developers.cloudflare.com
/rules/normalization/how-it-works), in its order:

1. backslashes become slashes;
2. runs of slashes are merged into one;
3. RFC 3986 §6.2.2: percent-encoded unreserved characters (``A-Z a-z 0-9 - . _ ~``) are decoded, other
   percent-encodings are upper-cased, bytes that may not appear in a path are percent-encoded (a ``%``
   not starting an encoding too: ``%25``); reserved characters (``/``, ``%2F``, ``;``...) keep their form;
4. dot segments are removed (RFC 3986 §5.2.4; a ``..`` above the root stays at the root).

Beyond Cloudflare: a path in which an encoded slash (``%2F``, or ``%5C``) would form a dot segment or an
empty segment once decoded is refused (400), since origins that decode it (nginx) would then serve a path
the WAF never saw (``/x/..%2Fadmin``). Encoded slashes elsewhere (``/repos/group%2Fproject``) pass.

The query is left as received; a fragment (never valid in a request-target, yet accepted by llhttp and
ignored by nginx) is dropped, so that the WAF and the origin see the same path. Pure functions.
"""

from __future__ import annotations

import re
from typing import Final

from originlock.errors import MalformedRequest
from originlock.proto.events import Headers, lower_name

__all__ = ["normalize_path", "normalize_target", "path_and_query", "resolve_target", "split_absolute"]

_UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: pchar (RFC 3986 §3.3) without pct-encoded, plus "/": the bytes a normal path holds as they are.
_PATH_BYTES: Final = bytes(sorted(_UNRESERVED | frozenset(b"!$&'()*+,;=:@/")))
#: Byte -> 1 when a normal path holds it as it is (``_PATH_BYTES``), else 0: the table of the fast check.
_PLAIN: Final = bytes(1 if byte in _PATH_BYTES else 0 for byte in range(256))
_SLASHES: Final = re.compile(rb"[/\\]+")
_ENCODE: Final = re.compile(rb"%([0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/]")


def split_absolute(target: bytes) -> tuple[bytes, bytes] | None:
    """``(authority, origin-form rest)`` of an ``http``/``https`` absolute-form target, else None.

    The rest always starts with ``/`` (``http://h?a=/b`` -> ``(b"h", b"/?a=/b")``).
    """
    head = target[:8].lower()
    if head.startswith(b"http://"):
        rest = target[7:]
    elif head.startswith(b"https://"):
        rest = target[8:]
    else:
        return None
    end = len(rest)
    for separator in (b"/", b"?", b"#"):
        at = rest.find(separator)
        if 0 <= at < end:
            end = at
    tail = rest[end:]
    return rest[:end], tail if tail[:1] == b"/" else b"/" + tail


def path_and_query(target: bytes) -> tuple[bytes, bytes]:
    """Path and query of any request-target, as in the target (asterisk and authority forms: ``/``)."""
    if target[:1] != b"/":
        absolute = split_absolute(target)
        if absolute is None:
            return b"/", b""
        target = absolute[1]
    target = target.partition(b"#")[0]
    path, _, query = target.partition(b"?")
    return path, query


def _encoded(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    if digits is None:
        return b"%%%02X" % match.group(0)[0]  # a byte a path may not hold, or a stray "%"
    value = int(digits, 16)
    return bytes((value,)) if value in _UNRESERVED else b"%" + digits.upper()


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 for an absolute path (starts with ``/``)."""
    segments = path.split(b"/")[1:]
    out: list[bytes] = []
    for segment in segments:
        if segment == b"..":
            if out:
                out.pop()
        elif segment != b".":
            out.append(segment)
    result = b"/" + b"/".join(out)
    if segments[-1] in (b".", b"..") and out:
        result += b"/"  # "/a/b/.." is "/a/", a directory
    return result


def normalize_path(path: bytes) -> bytes:
    """Cloudflare's URL normalisation of ``path`` (see the module docstring); always starts with ``/``.

    Raises:
        MalformedRequest: an encoded slash or backslash (``%2F``, ``%5C``) next to dots or another slash,
            which an origin that decodes them (nginx does) would read as a dot segment the edge did not
            remove: ``/x/..%2Fadmin`` is ``/admin`` there, yet ``/x/..%2Fadmin`` to the WAF.
    """
    path = _SLASHES.sub(b"/", path)
    if path[:1] != b"/":
        path = b"/" + path
    path = _remove_dot_segments(_ENCODE.sub(_encoded, path))
    if b"%2F" in path or b"%5C" in path:
        decoded = path.replace(b"%2F", b"/").replace(b"%5C", b"/")
        if b"//" in decoded or _remove_dot_segments(decoded) != decoded:
            raise MalformedRequest("an encoded slash forms a dot segment or an empty segment in the path")
    return path


def _is_normal(target: bytes) -> bool:
    """Whether the path of an origin-form target is already normal: every byte one a path holds as it is,
    and no ``//`` or ``/.`` (an empty or dot segment, or a name starting with a dot: the slow path decides).

    One pass over the path only, stopping at ``?``. Compiled (the hot path is), it is a native loop of a few
    instructions per byte (≈ 0.9k for a 30-byte path under valgrind), where ``bytes.translate`` (which
    builds a 256-entry table per call) plus two substring tests cost several times that: parsing and
    rewriting a typical request took 37.0k instructions that way, 31.6k this way (30.1k before the target
    was normalised at all; docs/edge.md). Interpreted, the loop costs more than those C calls; the
    interpreted build is the fallback, not what ``pip install .`` ships.
    """
    plain = _PLAIN
    previous = 0
    for at in range(len(target)):
        byte = target[at]
        if byte == 63:  # "?": the query is left as received
            return True
        if not plain[byte] or (previous == 47 and (byte == 47 or byte == 46)):  # "//" or "/."
            return False
        previous = byte
    return True


def normalize_target(target: bytes) -> bytes:
    """An origin-form target with its path normalised and its fragment dropped; ``target`` itself (the
    same object) when it is already normal, which is the common case and costs one pass over the path."""
    if _is_normal(target):
        return target
    if target[:1] != b"/":
        raise MalformedRequest("the request-target is not in origin-form")
    target = target.partition(b"#")[0]
    path, question, query = target.partition(b"?")
    return normalize_path(path) + question + query


def resolve_target(target: bytes, headers: Headers, version: bytes) -> tuple[bytes, Headers]:
    """A request-target not in origin-form, resolved: ``(origin-form target, fields)``.

    An absolute-form target's authority replaces the Host field's value (RFC 9112 §3.2.2), so routing,
    the WAF and the origin all see that one host; an HTTP/1.1 request still needs a Host field (RFC 9112
    §3.2: 400 without one; nginx answers 400 too), an HTTP/1.0 one gets the authority as its Host.

    Raises:
        MalformedRequest: the asterisk form (``OPTIONS *``), the authority form, another scheme, an
            empty authority or one with userinfo, several Host fields (nginx answers 400 to each).
    """
    if target == b"*":
        raise MalformedRequest("the asterisk-form request-target (OPTIONS *) is not supported")
    absolute = split_absolute(target)
    if absolute is None:
        raise MalformedRequest("the request-target is neither origin-form nor http(s) absolute-form")
    authority, rest = absolute
    if not authority or b"@" in authority:
        raise MalformedRequest("the absolute-form request-target has an empty authority or userinfo")
    hosts = [at for at, (name, _) in enumerate(headers) if len(name) == 4 and lower_name(name) == b"host"]
    if len(hosts) > 1:
        raise MalformedRequest("more than one Host header field")
    if hosts:
        fields = list(headers)
        fields[hosts[0]] = (headers[hosts[0]][0], authority)
    elif version == b"1.0":
        fields = [(b"Host", authority), *headers]
    else:
        raise MalformedRequest("missing Host header field (required with an absolute-form target too)")
    return normalize_target(rest), fields
