"""Request bodies as ModSecurity's body processors see them: URLENCODED, JSON, MULTIPART, XML.

Each parser takes the (possibly truncated) body and returns plain values, never raising: a body that
does not parse yields what could be read and ``error`` set, as ModSecurity's ``REQBODY_ERROR``.
XML is read without a parser that could expand entities (no DTD processing at all): text and
attribute values are cut out lexically, which is what ``XML:/*`` and ``XML://@*`` need.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .transforms import url_decode

__all__ = ["Multipart", "parse_json", "parse_multipart", "parse_urlencoded", "parse_xml", "processor_for"]

Pairs = list[tuple[bytes, bytes]]


def parse_urlencoded(data: bytes) -> Pairs:
    """``a=1&b=%41`` -> ``[(b"a", b"1"), (b"b", b"A")]`` (names and values URL-decoded)."""
    out: Pairs = []
    if not data:
        return out
    for part in data.split(b"&"):
        if not part:
            continue
        name, sep, value = part.partition(b"=")
        out.append((url_decode(name), url_decode(value) if sep else b""))
    return out


def processor_for(content_type: bytes) -> str:
    """The body processor for a Content-Type, as ModSecurity plus the recommended configuration
    (rules 200000/200001: XML and JSON types) choose it; empty when none applies."""
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/x-www-form-urlencoded":
        return "URLENCODED"
    if media == b"multipart/form-data":
        return "MULTIPART"
    if media.startswith(b"application/json") or (media.startswith(b"application/") and media.endswith(b"+json")):
        return "JSON"
    if re.match(rb"(?:application(?:/soap\+|/)|text/)xml", media):
        return "XML"
    return ""


def _flatten(prefix: str, value: object, out: Pairs) -> None:
    if isinstance(value, dict):
        if not value:
            out.append((prefix.encode(), b""))
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, list):
        if not value:
            out.append((prefix.encode(), b""))
        for index, item in enumerate(value):
            _flatten(f"{prefix}.{index}", item, out)
    elif value is None:
        out.append((prefix.encode(), b""))
    elif value is True or value is False:
        out.append((prefix.encode(), b"true" if value else b"false"))
    else:
        out.append((prefix.encode("utf-8", "surrogateescape"), str(value).encode("utf-8", "surrogateescape")))


def parse_json(data: bytes) -> tuple[Pairs, bool]:
    """Arguments named ``json.a.b`` / ``json.list.0`` (ModSecurity v3's naming), and whether it failed."""
    try:
        document = json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return [], True
    out: Pairs = []
    _flatten("json", document, out)
    return out, False


@dataclass
class Multipart:
    args: Pairs = field(default_factory=list)
    files: Pairs = field(default_factory=list)
    """(field name, file name) of each file part."""
    part_headers: Pairs = field(default_factory=list)
    """(part name, ``Header: value`` line) of every header of every part."""
    files_size: int = 0
    error: bool = False


_PARAM = re.compile(rb';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _params(header: bytes) -> dict[bytes, bytes]:
    params: dict[bytes, bytes] = {}
    for match in _PARAM.finditer(header):
        value = match.group(2).strip()
        if value.startswith(b'"') and value.endswith(b'"') and len(value) >= 2:
            value = value[1:-1].replace(b'\\"', b'"')
        params[match.group(1).lower()] = value
    return params


def parse_multipart(data: bytes, content_type: bytes) -> Multipart:
    result = Multipart()
    boundary = _params(b";" + content_type.split(b";", 1)[-1]).get(b"boundary")
    if not boundary:
        result.error = True
        return result
    delimiter = b"--" + boundary
    chunks = data.split(delimiter)
    if len(chunks) < 2:
        result.error = True
        return result
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk[1:] if chunk.startswith(b"\n") else chunk
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = chunk.partition(b"\n\n")
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
        name = b""
        filename: bytes | None = None
        lines = [line for line in re.split(rb"\r?\n", head) if line]
        for line in lines:
            header, _, value = line.partition(b":")
            if header.strip().lower() == b"content-disposition":
                params = _params(b";" + value.split(b";", 1)[-1]) if b";" in value else {}
                name = params.get(b"name", b"")
                filename = params.get(b"filename", params.get(b"filename*"))
        for line in lines:
            result.part_headers.append((name, line))
        if filename is not None:
            result.files.append((name, filename))
            result.files_size += len(body)
        else:
            result.args.append((name, body))
    return result


_TAG = re.compile(rb"<[^>]*>")
_ATTRIBUTE = re.compile(rb"""\s[^\s=/>]+\s*=\s*(?:"([^"]*)"|'([^']*)')""")


_XML_REFERENCE = re.compile(rb"&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(lt|gt|amp|quot|apos));")
_XML_NAMED = {b"lt": b"<", b"gt": b">", b"amp": b"&", b"quot": b'"', b"apos": b"'"}


def _xml_reference(match: re.Match[bytes]) -> bytes:
    if match.group(3) is not None:
        return _XML_NAMED[match.group(3)]
    code = int(match.group(1), 16) if match.group(1) is not None else int(match.group(2))
    try:
        return chr(code).encode("utf-8")
    except (ValueError, OverflowError):
        return b""


def _xml_text(data: bytes) -> bytes:
    """Character references and the five predefined entities decoded, as an XML parser reports text
    (no other entity is expanded: there is no DTD processing)."""
    return _XML_REFERENCE.sub(_xml_reference, data) if b"&" in data else data


def parse_xml(data: bytes) -> tuple[bytes, list[bytes]]:
    """``XML:/*`` (the document's text, concatenated) and ``XML://@*`` (each attribute value)."""
    attributes: list[bytes] = []
    for tag in _TAG.findall(data):
        if tag.startswith((b"<?", b"<!")):
            continue
        for match in _ATTRIBUTE.finditer(tag):
            value = match.group(1) if match.group(1) is not None else match.group(2)
            attributes.append(_xml_text(value))
    text = _xml_text(_TAG.sub(b"", data))
    return text, attributes
