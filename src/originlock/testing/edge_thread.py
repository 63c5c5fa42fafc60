"""Run an edge in a background thread with its own event loop (blocking tests drive it with curl or
sockets)."""

from __future__ import annotations

import asyncio
import threading

from originlock.edge.config import EdgeConfig
from originlock.edge.loops import loop_factory
from originlock.edge.server import EdgeServer
from originlock.edge.snapshots import SnapshotSource
from originlock.pipeline.hooks import WafHook

__all__ = ["EdgeThread"]


class EdgeThread:
    """``with EdgeThread(config, source) as edge: edge.http_port ...``; stops and joins on exit."""

    def __init__(self, config: EdgeConfig, source: SnapshotSource, *, waf: WafHook | None = None) -> None:
        self.config = config
        self.source = source
        self.waf = waf
        self.server: EdgeServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge", daemon=True)

    def _run(self) -> None:
        loop = self._loop = loop_factory(self.config.loop)()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced to the test thread
            self._error = exc
            self._started.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self.server = EdgeServer(self.config, self.source, waf=self.waf)
        await self.server.start()
        self._task = asyncio.current_task()
        self._started.set()
        await self.server.serve()

    def __enter__(self) -> EdgeThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)

    def call(self, fn: object) -> None:
        """Run ``fn()`` on the edge's loop thread."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)  # type: ignore[arg-type]

    @property
    def http_port(self) -> int:
        assert self.server is not None and self.server.http_address is not None
        return self.server.http_address[1]

    @property
    def https_port(self) -> int:
        assert self.server is not None and self.server.https_address is not None
        return self.server.https_address[1]
