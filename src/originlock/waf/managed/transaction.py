"""One request as the CRS sees it: ModSecurity's collections, computed lazily, and the TX state.

Theory of operation. :class:`HttpRequest` is the plain input (method, request-target, protocol,
headers, visitor address, the body prefix the edge buffered). :class:`Transaction` derives each
collection the first time a rule reads it (``ARGS``, ``REQUEST_COOKIES``, ``FILES``, ``XML``, …)
and carries the per-request mutable state: ``TX`` variables, the last captures, ``MATCHED_VAR(S)``,
the rules and targets removed by ``ctl`` actions, and a transformation cache (the same value under
the same transformation chain is computed once per request, as many rules share chains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .bodies import parse_json, parse_multipart, parse_urlencoded, parse_xml, processor_for
from .rx_set import RxSet
from .transforms import url_decode

__all__ = ["HttpRequest", "HttpResponse", "Item", "Transaction"]

Item = tuple[str, bytes]
"""(variable name as in ``MATCHED_VAR_NAME``, e.g. ``ARGS:id``; value)."""

_EMPTY: Final[list[tuple[bytes, bytes]]] = []


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: bytes
    target: bytes
    """The request-target exactly as received (origin or absolute form)."""
    protocol: bytes = b"HTTP/1.1"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    remote_addr: str = "0.0.0.0"
    body: bytes | None = None
    """The body, or its first bytes up to the inspection limit; None when there is none."""
    unique_id: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The origin's response as the response phases (3 and 4) see it."""

    status: int
    protocol: bytes = b"HTTP/1.1"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes | None = None
    """The body's first bytes up to the inspection limit (ModSecurity's ``ProcessPartial``), or None
    when the body is not inspected (not a text-like content type, or no body)."""


def _name(key: bytes) -> str:
    return key.decode("latin-1")


class Transaction:
    """The evaluation state of one request (not shared between requests or threads)."""

    def __init__(self, request: HttpRequest, tx: dict[str, bytes], rx_set: RxSet) -> None:
        self.request = request
        self.response: HttpResponse | None = None
        """Set when the response phases start (:meth:`Engine.respond`)."""
        self.tx = tx
        self.matched_var: Item = ("", b"")
        self.matched_vars: list[Item] = []
        self.removed_ids: set[int] = set()
        self.removed_tags: set[str] = set()
        self.removed_targets: list[tuple[int | None, str | None, str]] = []
        self.force_body_variable = False
        self.cache: dict[tuple[bytes, str], bytes] = {}
        self.transformed: dict[tuple[str, str], list[Item]] = {}
        """Per (target text, transformation chain): the transformed items (rules share both)."""
        self.group_hits: dict[tuple[str, str], frozenset[int] | None] = {}
        """Per (target text, transformation chain): the union of its values' RE2-set hits."""
        self.target_values: dict[str, list[bytes]] = {}
        """Per target text (``ARGS``, ``REQUEST_HEADERS:User-Agent``): its values, before exclusions."""
        self.target_hits: dict[tuple[str, str, bool], frozenset[int] | None] = {}
        """Per (target text, transformation chain, multiMatch): a superset of its values' RE2-set hits."""
        self.candidates: dict[tuple[str, str, bool, bool], list[bytes]] = {}
        """Per (target text, chain, multiMatch, with unchanged values): the distinct values an operator sees."""
        self.target_features: dict[str, int] = {}
        """Per target text: the union of its values' features."""
        self.features: dict[bytes, int] = {}
        """Per distinct value: ``transforms.features`` (which transformations can change it)."""
        self.steps: dict[tuple[bytes, str], bytes] = {}
        """Per (value, one transformation): its result (chains share their steps)."""
        self.rx_hits: dict[bytes, frozenset[int] | None] = {}
        """Per distinct inspected value: which of the engine's RE2-set regexes match it."""
        self.rx_set = rx_set
        """The RE2 set of the phases running (the request's, then the response's)."""
        self._collections: dict[str, list[tuple[bytes, bytes]]] = {}
        self._indexes: dict[str, dict[bytes, list[tuple[bytes, bytes]]]] = {}
        self._processor: str | None = None
        self._body_done = False
        self._body_args: list[tuple[bytes, bytes]] = []
        self._files: list[tuple[bytes, bytes]] = []
        self._part_headers: list[tuple[bytes, bytes]] = []
        self._files_size = 0
        self._xml: tuple[bytes, list[bytes]] | None = None
        path, _, query = self._uri().partition(b"?")
        self.path = path
        self.query = query

    def _uri(self) -> bytes:
        target = self.request.target
        if not target.startswith(b"/"):
            _scheme, sep, rest = target.partition(b"://")
            if sep:
                slash = rest.find(b"/")
                return rest[slash:] if slash >= 0 else b"/"
        return target

    # Body ----------------------------------------------------------------------------------------

    @property
    def processor(self) -> str:
        if self._processor is None:
            self._processor = processor_for(self.header(b"content-type") or b"")
        return self._processor

    def set_processor(self, name: str) -> None:
        self._processor = name
        self._body_done = False
        self._collections.clear()
        self._indexes.clear()
        self.transformed.clear()
        self.group_hits.clear()
        self.target_values.clear()
        self.target_features.clear()
        self.target_hits.clear()
        self.candidates.clear()

    def _body(self) -> None:
        if self._body_done:
            return
        self._body_done = True
        self._body_args, self._files, self._part_headers, self._files_size = [], [], [], 0
        self._xml = None
        body = self.request.body
        if not body:
            return
        processor = self.processor
        if processor == "URLENCODED":
            self._body_args = parse_urlencoded(body)
        elif processor == "JSON":
            self._body_args = parse_json(body)[0]
        elif processor == "MULTIPART":
            parts = parse_multipart(body, self.header(b"content-type") or b"")
            self._body_args, self._files = parts.args, parts.files
            self._part_headers, self._files_size = parts.part_headers, parts.files_size
        elif processor == "XML":
            self._xml = parse_xml(body)

    # Collections ---------------------------------------------------------------------------------

    def response_header(self, lower_name: bytes) -> bytes | None:
        response = self.response
        if response is not None:
            for name, value in response.headers:
                if name.lower() == lower_name:
                    return value
        return None

    def header(self, lower_name: bytes) -> bytes | None:
        for name, value in self.request.headers:
            if name.lower() == lower_name:
                return value
        return None

    def keyed(self, collection: str) -> list[tuple[bytes, bytes]]:
        """A keyed collection's (key, value) pairs in order; keys as received."""
        cached = self._collections.get(collection)
        if cached is not None:
            return cached
        builder = _KEYED.get(collection)
        pairs = builder(self) if builder is not None else _EMPTY
        if collection not in _UNCACHED:
            self._collections[collection] = pairs
        return pairs

    def indexed(self, collection: str) -> dict[bytes, list[tuple[bytes, bytes]]]:
        """A keyed collection's pairs by lower-cased key (for ``COLLECTION:name`` targets)."""
        key = collection + "#"
        cached = self._indexes.get(key)
        if cached is None:
            cached = {}
            for name, value in self.keyed(collection):
                cached.setdefault(name.lower(), []).append((name, value))
            self._indexes[key] = cached
        return cached

    def scalar(self, name: str) -> bytes | None:
        getter = _SCALARS.get(name)
        return getter(self) if getter is not None else None

    def xml(self) -> tuple[bytes, list[bytes]] | None:
        self._body()
        return self._xml


def _args_get(t: Transaction) -> list[tuple[bytes, bytes]]:
    return parse_urlencoded(t.query)


def _args_post(t: Transaction) -> list[tuple[bytes, bytes]]:
    t._body()
    return t._body_args


def _cookies(t: Transaction) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in t.request.headers:
        if name.lower() != b"cookie":
            continue
        for part in value.split(b";"):
            part = part.lstrip(b" \t")
            if not part:
                continue
            key, _, item = part.partition(b"=")
            out.append((key, item))
    return out


def _files(t: Transaction) -> list[tuple[bytes, bytes]]:
    t._body()
    return t._files


def _part_headers(t: Transaction) -> list[tuple[bytes, bytes]]:
    t._body()
    return t._part_headers


def _names(source: str) -> Callable[[Transaction], list[tuple[bytes, bytes]]]:
    return lambda t: [(key, key) for key, _ in t.keyed(source)]


def _tx(t: Transaction) -> list[tuple[bytes, bytes]]:
    return [(key.encode("latin-1"), value) for key, value in t.tx.items()]


_KEYED: dict[str, Callable[[Transaction], list[tuple[bytes, bytes]]]] = {
    "ARGS_GET": _args_get,
    "ARGS_POST": _args_post,
    "ARGS": lambda t: t.keyed("ARGS_GET") + t.keyed("ARGS_POST"),
    "ARGS_NAMES": _names("ARGS"),
    "ARGS_GET_NAMES": _names("ARGS_GET"),
    "ARGS_POST_NAMES": _names("ARGS_POST"),
    "REQUEST_HEADERS": lambda t: list(t.request.headers),
    "REQUEST_HEADERS_NAMES": _names("REQUEST_HEADERS"),
    "REQUEST_COOKIES": _cookies,
    "REQUEST_COOKIES_NAMES": _names("REQUEST_COOKIES"),
    "FILES": _files,
    "FILES_NAMES": lambda t: [(name, name) for name, _ in _files(t)],
    "MULTIPART_PART_HEADERS": _part_headers,
    "RESPONSE_HEADERS": lambda t: list(t.response.headers) if t.response is not None else [],
    "RESPONSE_HEADERS_NAMES": _names("RESPONSE_HEADERS"),
    "TX": _tx,
}
_UNCACHED: Final = frozenset({"TX"})
"""Collections that change during the transaction (the body's are dropped when ``ctl`` changes the processor)."""


def _filename(t: Transaction) -> bytes:
    """The path, percent-decoded (``+`` stays): what ModSecurity v3 and Coraza give ``REQUEST_FILENAME``."""
    path = t.path
    return url_decode(path.replace(b"+", b"%2B")) if b"%" in path else path


def _basename(t: Transaction) -> bytes:
    path = _filename(t)
    cut = max(path.rfind(b"/"), path.rfind(b"\\"))
    return path[cut + 1 :]


def _request_body(t: Transaction) -> bytes | None:
    body = t.request.body
    if body is None:
        return None
    # As the CRS's reference engines do: the raw body for URLENCODED and JSON bodies, not for XML (whose
    # element and attribute names are not data: XML:/* holds its text) nor MULTIPART (inspected part by
    # part); forceRequestBodyVariable (rule 901340, unknown content types) adds it.
    if t.processor in ("URLENCODED", "JSON") or t.force_body_variable:
        return body
    return None


def _combined_size(t: Transaction) -> bytes:
    return str(sum(len(k) + len(v) for k, v in t.keyed("ARGS"))).encode()


def _files_size(t: Transaction) -> bytes:
    t._body()
    return str(t._files_size).encode()


_SCALARS: dict[str, Callable[[Transaction], bytes | None]] = {
    "REQUEST_METHOD": lambda t: t.request.method,
    "REQUEST_PROTOCOL": lambda t: t.request.protocol,
    "REQUEST_URI": lambda t: t.path + (b"?" + t.query if t.query or t.request.target.endswith(b"?") else b""),
    "REQUEST_URI_RAW": lambda t: t.request.target,
    "REQUEST_FILENAME": _filename,
    "REQUEST_BASENAME": _basename,
    "REQUEST_LINE": lambda t: b"%s %s %s" % (t.request.method, t.request.target, t.request.protocol),
    "QUERY_STRING": lambda t: t.query,
    "REMOTE_ADDR": lambda t: t.request.remote_addr.encode(),
    "UNIQUE_ID": lambda t: t.request.unique_id,
    "REQUEST_BODY": _request_body,
    "REQUEST_BODY_LENGTH": lambda t: str(len(t.request.body or b"")).encode(),
    "REQBODY_PROCESSOR": lambda t: t.processor.encode(),
    "ARGS_COMBINED_SIZE": _combined_size,
    "RESPONSE_STATUS": lambda t: str(t.response.status).encode() if t.response is not None else None,
    "RESPONSE_PROTOCOL": lambda t: t.response.protocol if t.response is not None else None,
    "RESPONSE_BODY": lambda t: t.response.body if t.response is not None else None,
    "RESPONSE_CONTENT_TYPE": lambda t: t.response_header(b"content-type"),
    "RESPONSE_CONTENT_LENGTH": lambda t: t.response_header(b"content-length"),
    "FILES_COMBINED_SIZE": _files_size,
}
"""Single-valued variables; None means absent (a rule on it sees nothing)."""

KEYED_COLLECTIONS: Final = frozenset(_KEYED) | {"XML", "MATCHED_VARS", "MATCHED_VARS_NAMES"}
SCALAR_VARIABLES: Final = frozenset(_SCALARS) | {"MATCHED_VAR", "MATCHED_VAR_NAME"}
