"""The system's libnghttp2 (``libnghttp2.so.14``, the library curl and nghttp2's tools use), through cffi in
ABI mode: no headers, no compiler, only the few declarations below, written from nghttp2's public API
(``nghttp2.h``, stable since 1.0; 1.52 on Debian 12).

Only what :mod:`originlock.proto.http2_ng` needs: a server session fed with ``mem_recv`` and drained with
``mem_send`` (no I/O callbacks), the receive callbacks, response submission with a data provider, resets,
GOAWAY, flow-control consumption and the options that bound memory. Struct layouts are declared in full up
to the last member read here (cffi computes the offsets with the platform's C rules, as the compiler
building the library did); ``nghttp2_frame`` is declared as the union of the members read.

:func:`load` returns None (and :data:`UNAVAILABLE` says why) when the library or cffi is missing or older
than :data:`MIN_VERSION`; the edge then uses the ``h2``-based codec (``proto/http2.py``).
"""

from __future__ import annotations

import os
from typing import Any, Final

__all__ = [
    "DISABLE_ENV",
    "MIN_VERSION",
    "SHIM_ENV",
    "NgLib",
    "load",
    "load_shim",
    "shim_unavailable_reason",
    "unavailable_reason",
]

#: 1.52.0 is Debian 12's; older releases lack options relied on (max outbound ACKs, max SETTINGS entries).
MIN_VERSION: Final = 0x013400
#: ``ORIGINLOCK_H2_CODEC=h2`` makes the edge use the pure-Python codec even where libnghttp2 loads.
DISABLE_ENV: Final = "ORIGINLOCK_H2_CODEC"
#: ``ORIGINLOCK_H2_SHIM=0`` makes the libnghttp2 codec use cffi (this module) even where the compiled shim
#: (``proto/_ngshim.c``, built with the wheel) loads.
SHIM_ENV: Final = "ORIGINLOCK_H2_SHIM"
_SONAMES: Final = ("libnghttp2.so.14", "libnghttp2.so", "libnghttp2.14.dylib", "libnghttp2.dylib")

CDEF: Final = """
typedef struct nghttp2_session nghttp2_session;
typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;
typedef struct nghttp2_option nghttp2_option;

typedef struct { int age; int version_num; const char *version_str; const char *proto_str; } nghttp2_info;

/* name and value are pointers; declared as integers so that one array of tuples can fill them */
typedef struct { uintptr_t name; uintptr_t value; size_t namelen; size_t valuelen; uint8_t flags; } nghttp2_nv;

typedef struct { size_t length; int32_t stream_id; uint8_t type; uint8_t flags; uint8_t reserved; } nghttp2_frame_hd;
typedef struct { int32_t stream_id; int32_t weight; uint8_t exclusive; } nghttp2_priority_spec;
typedef struct {
  nghttp2_frame_hd hd; size_t padlen; nghttp2_priority_spec pri_spec; nghttp2_nv *nva; size_t nvlen; int cat;
} nghttp2_headers;
typedef struct { nghttp2_frame_hd hd; uint32_t error_code; } nghttp2_rst_stream;
typedef struct {
  nghttp2_frame_hd hd; int32_t last_stream_id; uint32_t error_code; uint8_t *opaque_data; size_t opaque_data_len;
  uint8_t reserved;
} nghttp2_goaway;
typedef union { nghttp2_frame_hd hd; nghttp2_headers headers; nghttp2_rst_stream rst_stream; nghttp2_goaway goaway; }
  nghttp2_frame;
typedef struct { int32_t settings_id; uint32_t value; } nghttp2_settings_entry;

typedef union { int fd; void *ptr; } nghttp2_data_source;
typedef ssize_t (*nghttp2_data_source_read_callback)(nghttp2_session *, int32_t, uint8_t *, size_t, uint32_t *,
                                                     nghttp2_data_source *, void *);
typedef struct { nghttp2_data_source source; nghttp2_data_source_read_callback read_callback; } nghttp2_data_provider;

typedef int (*nghttp2_on_frame_recv_callback)(nghttp2_session *, const nghttp2_frame *, void *);
typedef int (*nghttp2_on_data_chunk_recv_callback)(nghttp2_session *, uint8_t, int32_t, const char *, size_t, void *);
typedef int (*nghttp2_on_stream_close_callback)(nghttp2_session *, int32_t, uint32_t, void *);
typedef int (*nghttp2_on_begin_headers_callback)(nghttp2_session *, const nghttp2_frame *, void *);
typedef int (*nghttp2_on_header_callback)(nghttp2_session *, const nghttp2_frame *, const char *, size_t,
                                          const char *, size_t, uint8_t, void *);

nghttp2_info *nghttp2_version(int least_version);
const char *nghttp2_strerror(int lib_error_code);

int nghttp2_session_callbacks_new(nghttp2_session_callbacks **callbacks_ptr);
void nghttp2_session_callbacks_set_on_frame_recv_callback(nghttp2_session_callbacks *, nghttp2_on_frame_recv_callback);
void nghttp2_session_callbacks_set_on_data_chunk_recv_callback(nghttp2_session_callbacks *,
                                                               nghttp2_on_data_chunk_recv_callback);
void nghttp2_session_callbacks_set_on_stream_close_callback(nghttp2_session_callbacks *,
                                                            nghttp2_on_stream_close_callback);
void nghttp2_session_callbacks_set_on_begin_headers_callback(nghttp2_session_callbacks *,
                                                             nghttp2_on_begin_headers_callback);
void nghttp2_session_callbacks_set_on_header_callback(nghttp2_session_callbacks *, nghttp2_on_header_callback);

int nghttp2_option_new(nghttp2_option **option_ptr);
void nghttp2_option_set_no_auto_window_update(nghttp2_option *, int);
void nghttp2_option_set_no_closed_streams(nghttp2_option *, int);
void nghttp2_option_set_no_http_messaging(nghttp2_option *, int);
void nghttp2_option_set_max_deflate_dynamic_table_size(nghttp2_option *, size_t);
void nghttp2_option_set_max_outbound_ack(nghttp2_option *, size_t);
void nghttp2_option_set_max_settings(nghttp2_option *, size_t);

int nghttp2_session_server_new2(nghttp2_session **, const nghttp2_session_callbacks *, void *, const nghttp2_option *);
void nghttp2_session_del(nghttp2_session *);
ssize_t nghttp2_session_mem_recv(nghttp2_session *, const char *, size_t);
ssize_t nghttp2_session_mem_send(nghttp2_session *, const char **);
int nghttp2_session_want_read(nghttp2_session *);
int nghttp2_session_want_write(nghttp2_session *);
int nghttp2_session_consume(nghttp2_session *, int32_t, size_t);
int nghttp2_session_resume_data(nghttp2_session *, int32_t);
int nghttp2_session_set_local_window_size(nghttp2_session *, uint8_t, int32_t, int32_t);
int nghttp2_session_terminate_session(nghttp2_session *, uint32_t);
int32_t nghttp2_session_get_last_proc_stream_id(nghttp2_session *);
int32_t nghttp2_session_get_stream_remote_window_size(nghttp2_session *, int32_t);

int nghttp2_submit_settings(nghttp2_session *, uint8_t, const nghttp2_settings_entry *, size_t);
int nghttp2_submit_response(nghttp2_session *, int32_t, const nghttp2_nv *, size_t, const nghttp2_data_provider *);
int32_t nghttp2_submit_headers(nghttp2_session *, uint8_t, int32_t, const nghttp2_priority_spec *, const nghttp2_nv *,
                               size_t, void *);
int nghttp2_submit_rst_stream(nghttp2_session *, uint8_t, int32_t, uint32_t);
int nghttp2_submit_goaway(nghttp2_session *, uint8_t, int32_t, uint32_t, const uint8_t *, size_t);
int nghttp2_submit_shutdown_notice(nghttp2_session *);
"""

# nghttp2.h's constants used by the codec.
ERR_DEFERRED: Final = -508
ERR_TEMPORAL_CALLBACK_FAILURE: Final = -521
ERR_CALLBACK_FAILURE: Final = -902
ERR_FLOODED: Final = -904
ERR_TOO_MANY_CONTINUATIONS: Final = -905
DATA_FLAG_EOF: Final = 0x01
FLAG_END_STREAM: Final = 0x01
HCAT_REQUEST: Final = 0
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6
FRAME_DATA, FRAME_HEADERS, FRAME_RST_STREAM, FRAME_SETTINGS, FRAME_GOAWAY, FRAME_WINDOW_UPDATE = 0, 1, 3, 4, 7, 8


class NgLib:
    """The loaded library: ``ffi`` (cffi's FFI with :data:`CDEF`), ``lib`` and its version string."""

    __slots__ = ("ffi", "lib", "version")

    def __init__(self, ffi: Any, lib: Any, version: str) -> None:
        self.ffi = ffi
        self.lib = lib
        self.version = version


_loaded: NgLib | None = None
_reason: str | None = None


def _load() -> NgLib:
    if os.environ.get(DISABLE_ENV, "").lower() == "h2":
        raise OSError(f"{DISABLE_ENV}=h2")
    try:
        import cffi  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - cffi comes with cryptography
        raise OSError(f"cffi is not installed ({exc})") from exc
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    errors = []
    for name in _SONAMES:
        try:
            lib = ffi.dlopen(name)
            break
        except OSError as exc:
            errors.append(str(exc))
    else:
        raise OSError("libnghttp2 not found (" + "; ".join(errors) + ")")
    info = lib.nghttp2_version(0)
    if info == ffi.NULL or info.version_num < MIN_VERSION:
        found = "unknown" if info == ffi.NULL else ffi.string(info.version_str).decode()
        raise OSError(f"libnghttp2 {found} is older than 1.52")
    return NgLib(ffi, lib, ffi.string(info.version_str).decode())


def load() -> NgLib | None:
    """The library, loaded once per process; None if it cannot be (see :func:`unavailable_reason`)."""
    global _loaded, _reason
    if _loaded is None and _reason is None:
        try:
            _loaded = _load()
        except (OSError, AttributeError) as exc:  # AttributeError: a symbol missing from an odd build
            _reason = str(exc)
    return _loaded


def unavailable_reason() -> str | None:
    """Why :func:`load` returned None (None when it loaded or was not tried)."""
    load()
    return _reason


_shim: Any = None
_shim_reason: str | None = None


def _load_shim() -> Any:
    if os.environ.get(DISABLE_ENV, "").lower() == "h2":
        raise ImportError(f"{DISABLE_ENV}=h2")
    if os.environ.get(SHIM_ENV, "") == "0":
        raise ImportError(f"{SHIM_ENV}=0")
    from originlock.proto import _ngshim  # type: ignore[attr-defined]

    return _ngshim


def load_shim() -> Any:
    """The compiled shim module (``_ngshim``), loaded once per process; None if it is not installed (a source
    tree, a wheel built without a compiler), does not load (libnghttp2 missing or older than 1.52), or
    :data:`SHIM_ENV` turns it off (:func:`shim_unavailable_reason` says which)."""
    global _shim, _shim_reason
    if _shim is None and _shim_reason is None:
        try:
            _shim = _load_shim()
        except ImportError as exc:
            _shim_reason = str(exc)
    return _shim


def shim_unavailable_reason() -> str | None:
    """Why :func:`load_shim` returned None (None when it loaded)."""
    load_shim()
    return _shim_reason
