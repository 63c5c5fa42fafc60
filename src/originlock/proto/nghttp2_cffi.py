"""The libnghttp2 server session through cffi's ABI mode: the fallback of the compiled shim (``_ngshim.c``),
with the same interface, so that :class:`~originlock.proto.http2_ng.NgH2Server` is one code over either.

The callbacks are Python functions behind libffi closures (about ten crossings per request, hence the
shim); like the shim's C callbacks they only record: each appends an event tuple ``(kind, stream id, int,
object)`` (the ``EV_*`` constants, the same values as ``_ngshim.c``'s) to the list that :meth:`recv` returns,
and the data provider copies from the stream's :class:`_Queue` without calling into the server.
"""

from __future__ import annotations

from typing import Any, Final

from originlock.proto import nghttp2_lib as ng

__all__ = [
    "EV_CHUNK",
    "EV_CLOSE",
    "EV_DATA_END",
    "EV_GOAWAY",
    "EV_HEADERS",
    "EV_REQUEST",
    "EV_RST",
    "EV_WINDOW",
    "CffiSession",
    "binding_version",
]

#: The event kinds of both sessions (_ngshim.c's EV_* values); Final, so that compiled code inlines them.
EV_REQUEST: Final = 1
EV_HEADERS: Final = 2
EV_DATA_END: Final = 3
EV_RST: Final = 4
EV_GOAWAY: Final = 5
EV_WINDOW: Final = 6
EV_CHUNK: Final = 7
EV_CLOSE: Final = 8
_ENCODER_TABLE_SIZE: Final = 4096
_MAX_SETTINGS: Final = 32
_MAX_OUTBOUND_ACK: Final = 1000


class _Queue:
    """A stream's response bytes waiting for the data provider."""

    __slots__ = ("chunks", "deferred", "eof", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.deferred = False


class _Binding:
    """The library, the shared callbacks (one set per process: each session finds itself from ``user_data``)
    and the options."""

    def __init__(self, loaded: ng.NgLib) -> None:
        ffi, lib = loaded.ffi, loaded.lib
        self.ffi = ffi
        self.lib = lib
        self.version = loaded.version
        # The backend's functions themselves: FFI's methods are Python wrappers around them (a frame per call).
        backend = ffi._backend
        from_handle = backend.from_handle
        unpack = backend.unpack
        memmove = ffi.memmove

        def on_header(
            session: Any, frame: Any, name: Any, namelen: int, value: Any, valuelen: int, flags: int, user: Any
        ) -> int:
            s: _Record = from_handle(user)
            s.block_size += namelen + valuelen + 32
            if s.block_size > s.max_header_list:
                s.overflow = True  # an HPACK bomb: stop decoding, the connection ends
                return ng.ERR_CALLBACK_FAILURE
            s.fields.append((unpack(name, namelen), unpack(value, valuelen)))
            return 0

        def on_begin_headers(session: Any, frame: Any, user: Any) -> int:
            s: _Record = from_handle(user)
            s.fields = []  # a block found malformed midway never completes: start afresh
            s.block_size = 0
            return 0

        def on_frame_recv(session: Any, frame: Any, user: Any) -> int:
            s: _Record = from_handle(user)
            hd = frame.hd
            kind, flags, sid = hd.type, hd.flags, hd.stream_id
            if kind == ng.FRAME_HEADERS:
                if frame.headers.cat == ng.HCAT_REQUEST:
                    s.events.append((EV_REQUEST, sid, flags, s.fields))
                    s.fields = []
                elif flags & ng.FLAG_END_STREAM:
                    s.events.append((EV_HEADERS, sid, flags, None))
            elif kind == ng.FRAME_DATA:
                if flags & ng.FLAG_END_STREAM:
                    s.events.append((EV_DATA_END, sid, flags, None))
            elif kind == ng.FRAME_RST_STREAM:
                s.events.append((EV_RST, sid, 0, None))
            elif kind == ng.FRAME_GOAWAY:
                s.events.append((EV_GOAWAY, 0, int(frame.goaway.error_code), None))
            elif kind in (ng.FRAME_WINDOW_UPDATE, ng.FRAME_SETTINGS):
                s.events.append((EV_WINDOW, sid, 0, None))
            return 0

        def on_data(session: Any, flags: int, stream_id: int, data: Any, length: int, user: Any) -> int:
            from_handle(user).events.append((EV_CHUNK, stream_id, 0, unpack(data, length)))
            return 0

        def on_close(session: Any, stream_id: int, error_code: int, user: Any) -> int:
            from_handle(user).events.append((EV_CLOSE, stream_id, error_code, None))
            return 0

        def read(session: Any, stream_id: int, buf: Any, length: int, flags: Any, source: Any, user: Any) -> int:
            s: _Record = from_handle(user)
            queue = s.queues.get(stream_id)
            if queue is None:
                return ng.ERR_DEFERRED  # reset meanwhile; nghttp2 drops the stream's item
            chunks = queue.chunks
            done = 0
            while chunks and done < length:
                chunk = chunks[0]
                room = length - done
                if len(chunk) > room:
                    memmove(buf + done, chunk[:room], room)
                    chunks[0] = chunk[room:]
                    done = length
                else:
                    memmove(buf + done, chunk, len(chunk))
                    del chunks[0]
                    done += len(chunk)
            queue.size -= done
            if not chunks and queue.eof:
                flags[0] |= ng.DATA_FLAG_EOF
                s.ended.append(stream_id)
                del s.queues[stream_id]
            elif not done:
                queue.deferred = True
                return ng.ERR_DEFERRED
            s.data_frames += 1
            return done

        def callback(kind: str, function: Any) -> Any:
            return ffi.callback(kind, function, error=ng.ERR_CALLBACK_FAILURE)

        self.keep = (
            callback("nghttp2_on_header_callback", on_header),
            callback("nghttp2_on_begin_headers_callback", on_begin_headers),
            callback("nghttp2_on_frame_recv_callback", on_frame_recv),
            callback("nghttp2_on_data_chunk_recv_callback", on_data),
            callback("nghttp2_on_stream_close_callback", on_close),
            callback("nghttp2_data_source_read_callback", read),
        )
        holder = ffi.new("nghttp2_session_callbacks **")
        if lib.nghttp2_session_callbacks_new(holder) != 0:
            raise MemoryError("nghttp2_session_callbacks_new")
        callbacks = holder[0]  # one per process, never freed
        lib.nghttp2_session_callbacks_set_on_header_callback(callbacks, self.keep[0])
        lib.nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, self.keep[1])
        lib.nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, self.keep[2])
        lib.nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, self.keep[3])
        lib.nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, self.keep[4])
        self.callbacks = callbacks
        option_holder = ffi.new("nghttp2_option **")
        if lib.nghttp2_option_new(option_holder) != 0:
            raise MemoryError("nghttp2_option_new")
        option = option_holder[0]
        lib.nghttp2_option_set_no_auto_window_update(option, 1)
        lib.nghttp2_option_set_no_closed_streams(option, 1)
        lib.nghttp2_option_set_no_http_messaging(option, 1)  # the request checks are http2_request's
        lib.nghttp2_option_set_max_deflate_dynamic_table_size(option, _ENCODER_TABLE_SIZE)
        lib.nghttp2_option_set_max_outbound_ack(option, _MAX_OUTBOUND_ACK)
        lib.nghttp2_option_set_max_settings(option, _MAX_SETTINGS)
        self.option = option
        self.provider = ffi.new("nghttp2_data_provider *")
        self.provider.read_callback = self.keep[5]
        self.newp = backend.newp
        self.cast = backend.cast
        self.from_buffer = backend.from_buffer
        self.unpack = unpack
        self.nv_array = ffi.typeof("nghttp2_nv[]")
        self.uintptr = ffi.typeof("uintptr_t")
        self.char_array = ffi.typeof("char[]")


_binding: _Binding | None = None


def _bind() -> _Binding | None:
    global _binding
    if _binding is None:
        loaded = ng.load()
        if loaded is not None:
            _binding = _Binding(loaded)
    return _binding


def binding_version() -> str | None:
    """libnghttp2's version if the cffi path can run, else None (``nghttp2_lib.unavailable_reason`` says why)."""
    binding = _bind()
    return None if binding is None else binding.version


def strerror(code: int) -> str:
    binding = _bind()
    return "?" if binding is None else str(binding.ffi.string(binding.lib.nghttp2_strerror(code)).decode())


class _Record:
    """What a session's callbacks record (the events of the running call, the header block being decoded,
    the response-body queues): what its user-data handle refers to."""

    __slots__ = ("block_size", "data_frames", "ended", "events", "fields", "max_header_list", "overflow", "queues")

    def __init__(self, max_header_list: int) -> None:
        self.max_header_list = max_header_list
        self.events: list[tuple[int, int, int, Any]] = []
        self.fields: list[tuple[bytes, bytes]] = []
        self.block_size = 0
        self.overflow = False
        self.queues: dict[int, _Queue] = {}
        self.ended: list[int] = []
        self.data_frames = 0


class CffiSession:
    """One server session (the interface of ``_ngshim.Session``; see that file for each method)."""

    def __init__(self, max_header_list: int) -> None:
        binding = _bind()
        if binding is None:
            raise RuntimeError(f"libnghttp2 is not available: {ng.unavailable_reason()}")
        self._b = binding
        self._lib = binding.lib
        ffi = binding.ffi
        # What the callbacks write lives apart, behind the session's user-data handle: a handle to the
        # session itself, kept on it, would be a reference cycle (each closed connection's session left
        # to the cyclic garbage collector).
        self._r = _Record(max_header_list)
        self._handle = ffi.new_handle(self._r)
        holder = ffi.new("nghttp2_session **")
        if self._lib.nghttp2_session_server_new2(holder, binding.callbacks, self._handle, binding.option) != 0:
            raise MemoryError("nghttp2_session_server_new2")
        self._session = ffi.gc(holder[0], self._lib.nghttp2_session_del)
        self._sent = ffi.new("const char **")
        self._blob = b""

    def recv(self, data: bytes) -> tuple[int, list[tuple[int, int, int, Any]], bool]:
        self._r.overflow = False
        rv = self._lib.nghttp2_session_mem_recv(self._session, data, len(data))
        events, self._r.events = self._r.events, []
        return rv, events, self._r.overflow

    def send(self) -> tuple[int, bytes, list[int], int, bool, list[tuple[int, int, int, Any]]]:
        lib, session, out, unpack = self._lib, self._session, self._sent, self._b.unpack
        self._r.data_frames = 0
        frames: list[bytes] = []
        goaway = False
        while True:
            size = lib.nghttp2_session_mem_send(session, out)
            if size <= 0:
                break
            frame = unpack(out[0], size)
            goaway = goaway or frame[3] == ng.FRAME_GOAWAY  # each answer is one frame (or its continuation)
            frames.append(frame)
        ended, self._r.ended = self._r.ended, []
        events, self._r.events = self._r.events, []
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        return min(size, 0), data, ended, self._r.data_frames, goaway, events

    def _nva(self, fields: list[tuple[bytes, bytes]]) -> Any:
        """nghttp2_nv[] for ``fields``: pointers into one joined buffer, kept in ``_blob`` until the next
        submit (nghttp2 copies the fields; a local would not do: compiled by mypyc, a value is released
        after its last use, before the submit call)."""
        b = self._b
        blob = b"".join([part for field in fields for part in field])
        self._blob = blob
        at = int(b.cast(b.uintptr, b.from_buffer(b.char_array, blob, False)))
        entries = []
        for name, value in fields:
            n, v = len(name), len(value)
            entries.append((at, at + n, n, v, 0))
            at += n + v
        return b.newp(b.nv_array, entries)

    def submit_response(self, stream_id: int, fields: list[tuple[bytes, bytes]], body: bool) -> int:
        nva = self._nva(fields)
        if body:
            self._r.queues[stream_id] = _Queue()
        provider = self._b.provider if body else self._b.ffi.NULL
        return int(self._lib.nghttp2_submit_response(self._session, stream_id, nva, len(fields), provider))

    def submit_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]]) -> int:
        nva = self._nva(fields)
        null = self._b.ffi.NULL
        return int(self._lib.nghttp2_submit_headers(self._session, 0, stream_id, null, nva, len(fields), null))

    def push(self, stream_id: int, data: bytes, end: bool) -> bool:
        queue = self._r.queues.get(stream_id)
        if queue is None:
            return False
        if data:
            queue.chunks.append(data)
            queue.size += len(data)
        queue.eof = end
        if queue.deferred:
            queue.deferred = False
            self._lib.nghttp2_session_resume_data(self._session, stream_id)
        return True

    def buffered(self, stream_id: int) -> int:
        queue = self._r.queues.get(stream_id)
        return 0 if queue is None else queue.size

    def forget(self, stream_id: int) -> None:
        self._r.queues.pop(stream_id, None)

    def rst(self, stream_id: int, code: int) -> int:
        return int(self._lib.nghttp2_submit_rst_stream(self._session, 0, stream_id, code))

    def consume(self, stream_id: int, size: int) -> int:
        return int(self._lib.nghttp2_session_consume(self._session, stream_id, size))

    def settings(self, entries: list[tuple[int, int]]) -> int:
        iv = self._b.ffi.new("nghttp2_settings_entry[]", entries)
        return int(self._lib.nghttp2_submit_settings(self._session, 0, iv, len(entries)))

    def set_local_window(self, size: int) -> int:
        return int(self._lib.nghttp2_session_set_local_window_size(self._session, 0, 0, size))

    def want_read(self) -> bool:
        return bool(self._lib.nghttp2_session_want_read(self._session))
