"""SecLang transformations (``t:name``) on bytes, as ModSecurity defines them.

Every function takes and returns ``bytes``: the CRS inspects raw octets, and a transformation never
fails (an invalid escape is left as it is). Where ModSecurity reduces a Unicode code point to one
byte (``%uXXXX``, ``\\uXXXX``, ``&#NNNN;``, CSS escapes) we do the same: the low byte, plus 0x20 for
the full-width ASCII block U+FF01..U+FF5E, so ``%uff1c`` decodes to ``<`` as it does there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable

__all__ = ["ALWAYS", "TRANSFORMS", "TRIGGERS", "Transform", "features"]

Transform = Callable[[bytes], bytes]

_HEX = b"0123456789abcdefABCDEF"
_WS = b" \t\n\r\f\v"


def _unicode_byte(code: int) -> int:
    if 0xFF01 <= code <= 0xFF5E:
        return (code - 0xFF00 + 0x20) & 0xFF
    return code & 0xFF


def _is_hex(data: bytes, start: int, count: int) -> bool:
    end = start + count
    if end > len(data):
        return False
    return all(c in _HEX for c in data[start:end])


_URL_ESCAPE_UNI = re.compile(rb"%(?:[uU]([0-9a-fA-F]{4})|([0-9a-fA-F]{2}))")
_URL_ESCAPE = re.compile(rb"%([0-9a-fA-F]{2})")
_HEX_OCTETS = {b"%02x" % i: bytes((i,)) for i in range(256)} | {b"%02X" % i: bytes((i,)) for i in range(256)}


def _uni_escape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code is not None:
        return bytes((_unicode_byte(int(code, 16)),))
    hexa = match.group(2)
    return _HEX_OCTETS.get(hexa) or bytes((int(hexa, 16),))


def _escape(match: re.Match[bytes]) -> bytes:
    hexa = match.group(1)
    return _HEX_OCTETS.get(hexa) or bytes((int(hexa, 16),))


# One pass over the escapes (an escape's result is never read again: ``%2541`` is ``%41``); ``+`` is never
# part of an escape, so it becomes a space first. Invalid escapes stay as they are.
def url_decode_uni(data: bytes) -> bytes:
    if b"%" not in data:
        return data.replace(b"+", b" ") if b"+" in data else data
    return _URL_ESCAPE_UNI.sub(_uni_escape, data.replace(b"+", b" "))


def url_decode(data: bytes) -> bytes:
    if b"%" not in data:
        return data.replace(b"+", b" ") if b"+" in data else data
    return _URL_ESCAPE.sub(_escape, data.replace(b"+", b" "))


_C_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11}


def _backslash_decode(data: bytes, js: bool) -> bytes:
    """Backslash escapes, JavaScript's (``js``) or ANSI C's (``escapeSeqDecode``): ``\\xHH``, octal up to three
    digits, the C letters (``\\n``...); JavaScript adds ``\\uHHHH`` and drops the backslash of any other
    escape, where C decodes only ``\\\\ \\? \\' \\"`` and keeps the others as they are."""
    if b"\\" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c != 0x5C or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        d = data[i + 1]
        if js and d in b"uU" and _is_hex(data, i + 2, 4):
            out.append(_unicode_byte(int(data[i + 2 : i + 6], 16)))
            i += 6
        elif d in b"xX" and _is_hex(data, i + 2, 2):
            out.append(int(data[i + 2 : i + 4], 16))
            i += 4
        elif 0x30 <= d <= 0x37:
            j = i + 1
            while j < n and j < i + 4 and 0x30 <= data[j] <= 0x37:
                j += 1
            out.append(int(data[i + 1 : j], 8) & 0xFF)
            i = j
        elif js or d in _C_ESCAPES or d in b"\\?'\"":
            out.append(_C_ESCAPES.get(d, d))
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def js_decode(data: bytes) -> bytes:
    return _backslash_decode(data, True)


_ENTITIES = {b"quot": 34, b"amp": 38, b"lt": 60, b"gt": 62, b"nbsp": 160}
_ENTITY = re.compile(rb"&(?:#[xX]([0-9a-fA-F]+)|#([0-9]+)|(quot|amp|lt|gt|nbsp));?", re.IGNORECASE)


def _entity(match: re.Match[bytes]) -> bytes:
    hexa, dec, name = match.group(1), match.group(2), match.group(3)
    if hexa is not None:
        return bytes((int(hexa[-8:], 16) & 0xFF,))
    if dec is not None:
        return bytes((int(dec[-10:]) & 0xFF,))
    return bytes((_ENTITIES[name.lower()],))


def html_entity_decode(data: bytes) -> bytes:
    if b"&" not in data:
        return data
    return _ENTITY.sub(_entity, data)


def utf8_to_unicode(data: bytes) -> bytes:
    if data.isascii():
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        length = 2 if 0xC0 <= c < 0xE0 else 3 if 0xE0 <= c < 0xF0 else 4 if 0xF0 <= c < 0xF8 else 0
        if length and i + length <= n and all(0x80 <= b < 0xC0 for b in data[i + 1 : i + length]):
            code = data[i : i + length].decode("utf-8", "replace")
            if len(code) == 1 and code != "\ufffd":
                out += b"%%u%04x" % ord(code)
                i += length
                continue
        out.append(c)
        i += 1
    return bytes(out)


def css_decode(data: bytes) -> bytes:
    if b"\\" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c != 0x5C or i + 1 >= n:
            if c != 0x5C:
                out.append(c)
            i += 1
            continue
        j = i + 1
        while j < n and j < i + 7 and data[j] in _HEX:
            j += 1
        if j > i + 1:
            out.append(_unicode_byte(int(data[i + 1 : j], 16)))
            if j < n and data[j] == 0x20:
                j += 1  # one whitespace after a hex escape belongs to it
            i = j
        elif data[i + 1] == 0x0A:
            i += 2
        else:
            out.append(data[i + 1])
            i += 2
    return bytes(out)


_CMD_DROP = bytes.maketrans(b",;", b"  ")
_CMD_SPACE_BEFORE = re.compile(rb"\s+(?=[/(])")
_SPACES = re.compile(rb"\s+")


def cmd_line(data: bytes) -> bytes:
    data = data.translate(_CMD_DROP, b"\\\"'^")
    data = _SPACES.sub(b" ", data)
    data = _CMD_SPACE_BEFORE.sub(b"", data)
    return data.lower()


def remove_whitespace(data: bytes) -> bytes:
    return data.translate(None, _WS + b"\xa0")


def compress_whitespace(data: bytes) -> bytes:
    return re.sub(rb"[ \t\n\r\f\v\xa0]+", b" ", data)


_COMMENT = re.compile(rb"/\*.*?(?:\*/|$)", re.DOTALL)


def replace_comments(data: bytes) -> bytes:
    if b"/*" not in data:
        return data
    return _COMMENT.sub(b" ", data)


def remove_comments_char(data: bytes) -> bytes:
    for token in (b"/*", b"*/", b"--", b"#"):
        data = data.replace(token, b"")
    return data


def normalize_path(data: bytes) -> bytes:
    if b"/" not in data:
        return data
    absolute = data.startswith(b"/")
    trailing = data.endswith(b"/") or data.endswith(b"/.") or data.endswith(b"/..")
    parts: list[bytes] = []
    for part in data.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts and parts[-1] != b"..":
                parts.pop()
            elif not absolute:
                parts.append(part)
            continue
        parts.append(part)
    out = b"/".join(parts)
    if absolute:
        out = b"/" + out
    if trailing and out and not out.endswith(b"/"):
        out += b"/"
    return out


def normalize_path_win(data: bytes) -> bytes:
    return normalize_path(data.replace(b"\\", b"/"))


def escape_seq_decode(data: bytes) -> bytes:
    return _backslash_decode(data, False)


def base64_decode(data: bytes) -> bytes:
    # ModSecurity decodes up to the first character outside the alphabet.
    match = re.match(rb"[A-Za-z0-9+/]*", data)
    body = match.group(0) if match else b""
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + b"=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return b""


TRANSFORMS: dict[str, Transform] = {
    "lowercase": bytes.lower,
    "urldecodeuni": url_decode_uni,
    "urldecode": url_decode,
    "jsdecode": js_decode,
    "htmlentitydecode": html_entity_decode,
    "utf8tounicode": utf8_to_unicode,
    "removenulls": lambda data: data.replace(b"\x00", b""),
    "cssdecode": css_decode,
    "cmdline": cmd_line,
    "removewhitespace": remove_whitespace,
    "compresswhitespace": compress_whitespace,
    "replacecomments": replace_comments,
    "removecommentschar": remove_comments_char,
    "normalizepath": normalize_path,
    "normalisepath": normalize_path,
    "normalizepathwin": normalize_path_win,
    "normalisepathwin": normalize_path_win,
    "escapeseqdecode": escape_seq_decode,
    "length": lambda data: str(len(data)).encode(),
    "base64decode": base64_decode,
    "sha1": lambda data: hashlib.sha1(data, usedforsecurity=False).digest(),
    "hexencode": lambda data: data.hex().encode(),
    "trim": lambda data: data.strip(_WS),
    "uppercase": bytes.upper,
}
"""Name (lower case, as in ``t:urlDecodeUni``) -> function. ``none`` is handled by the compiler."""


# What can make a transformation change a value: one bit per kind of octet. A value whose features miss
# every bit of a chain comes out of it unchanged (each step is then the identity on the same input), which
# is what most values of benign traffic do; the engine skips the chain for them.
PERCENT = 1
AMPERSAND = 2
BACKSLASH = 4
UPPER = 8
LOWER = 16
NON_ASCII = 32
NUL = 64
SPACE = 128
SLASH = 256
COMMENT = 512
SHELL = 1024
ALWAYS = 2048

_UPPER = bytes(range(0x41, 0x5B))
_LOWER = bytes(range(0x61, 0x7B))
_SPACE_OCTETS = _WS + b"\xa0"
_SHELL = b",;\\\"'^"


def features(data: bytes) -> int:
    """The trigger bits present in ``data`` (``ALWAYS`` included)."""
    found = ALWAYS
    if b"%" in data or b"+" in data:
        found |= PERCENT
    if b"&" in data:
        found |= AMPERSAND
    if b"\\" in data:
        found |= BACKSLASH
    if len(data.translate(None, _UPPER)) != len(data):
        found |= UPPER
    if len(data.translate(None, _LOWER)) != len(data):
        found |= LOWER
    if not data.isascii():
        found |= NON_ASCII
    if b"\x00" in data:
        found |= NUL
    if len(data.translate(None, _SPACE_OCTETS)) != len(data):
        found |= SPACE
    if b"/" in data:
        found |= SLASH
    if b"/*" in data or b"*/" in data or b"--" in data or b"#" in data:
        found |= COMMENT
    if len(data.translate(None, _SHELL)) != len(data):
        found |= SHELL
    return found


TRIGGERS: dict[str, int] = {
    "lowercase": UPPER,
    "uppercase": LOWER,
    "urldecodeuni": PERCENT,
    "urldecode": PERCENT,
    "jsdecode": BACKSLASH,
    "htmlentitydecode": AMPERSAND,
    "utf8tounicode": NON_ASCII,
    "removenulls": NUL,
    "cssdecode": BACKSLASH,
    "cmdline": UPPER | SPACE | SHELL,
    "removewhitespace": SPACE,
    "compresswhitespace": SPACE,
    "replacecomments": COMMENT,
    "removecommentschar": COMMENT,
    "normalizepath": SLASH,
    "normalisepath": SLASH,
    "normalizepathwin": SLASH | BACKSLASH,
    "normalisepathwin": SLASH | BACKSLASH,
    "escapeseqdecode": BACKSLASH,
    "trim": SPACE,
}
"""Per transformation: the features without which it returns its input unchanged (absent: ``ALWAYS``)."""
