"""Edge configuration: one frozen, validated dataclass, and the CLI flags that build it."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from originlock.edge.limits import EdgeLimits, add_limit_arguments, limits_from_args
from originlock.origin.connector import OriginTimeouts
from originlock.origin.pool import IDLE_TIMEOUT, MAX_IDLE_PER_KEY
from originlock.pipeline.context import DEFAULT_COLO, PipelineSettings

__all__ = ["EdgeConfig", "add_edge_arguments", "auto_workers", "edge_config_from_args", "parse_address"]

DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_HTTPS = "127.0.0.1:8443"
#: Visitor keep-alive idle timeout: nginx's keepalive_timeout default is 75 s.
DOWNSTREAM_IDLE_TIMEOUT = 75.0
#: Time allowed to receive a complete request head: nginx's client_header_timeout is 60 s.
DOWNSTREAM_HEADER_TIMEOUT = 60.0
#: Time allowed for the visitor to accept response bytes before the connection is dropped
#: (nginx send_timeout 60 s).
DOWNSTREAM_WRITE_TIMEOUT = 60.0
#: On shutdown, in-flight requests get this long to finish (uvicorn's timeout_graceful_shutdown is off by
#: default; Kubernetes' terminationGracePeriodSeconds is 30 s).
SHUTDOWN_GRACE = 10.0
#: A WebSocket without data either way is closed after this long (Cloudflare: 100 s).
WEBSOCKET_IDLE_TIMEOUT = 100.0


def auto_workers() -> int:
    """``--workers auto``: one edge process per CPU this process may run on, as nginx's packaged
    configuration does (``worker_processes auto``; Linux: the CPU affinity mask, so taskset and cpusets
    count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _workers(value: str) -> int:
    if value == "auto":
        return auto_workers()
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes >= 1 or 'auto', got {value!r}")
    return int(value)


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port). Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    number = int(port)
    if not 0 <= number < 65536:
        raise ValueError(f"port out of range in {value!r}")
    return host, number


@dataclass(frozen=True)
class EdgeConfig:
    """Everything the edge data plane is configured with."""

    #: Visitor-facing plain HTTP listener; None disables it.
    http: tuple[str, int] | None = field(default_factory=lambda: parse_address(DEFAULT_HTTP))
    #: Visitor-facing HTTPS listener; None disables it.
    https: tuple[str, int] | None = field(default_factory=lambda: parse_address(DEFAULT_HTTPS))
    origin_https_port: int = 443
    origin_http_port: int = 80
    #: Edge processes sharing the listeners through SO_REUSEPORT.
    workers: int = 1
    origin_timeouts: OriginTimeouts = field(default_factory=OriginTimeouts)
    idle_timeout: float = DOWNSTREAM_IDLE_TIMEOUT
    header_timeout: float = DOWNSTREAM_HEADER_TIMEOUT
    write_timeout: float = DOWNSTREAM_WRITE_TIMEOUT
    shutdown_grace: float = SHUTDOWN_GRACE
    pool_max_idle_per_key: int = MAX_IDLE_PER_KEY
    pool_idle_timeout: float = IDLE_TIMEOUT
    #: Access log destination: a path, ``-`` for stdout, or None for no access log.
    access_log: str | None = None
    #: Public ports used in redirects; default to the listener ports.
    public_http_port: int | None = None
    public_https_port: int | None = None
    colo: str = DEFAULT_COLO
    #: ``uvloop`` (falls back to asyncio when not installed) or ``asyncio``.
    loop: str = "uvloop"
    #: Connection caps, backlog, body timeout (edge/limits.py).
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    websocket_idle_timeout: float = WEBSOCKET_IDLE_TIMEOUT
    #: Secret from which every edge process derives the same rotating TLS session-ticket key
    #: (edge/ticket_keys.py): one per ``serve``, handed to the --workers processes with this config.
    ticket_secret: bytes = field(default_factory=lambda: os.urandom(32), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.http is None and self.https is None:
            raise ValueError("the edge needs an HTTP or an HTTPS listener")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        timeouts = (self.idle_timeout, self.header_timeout, self.write_timeout, self.websocket_idle_timeout)
        if min(timeouts) <= 0 or self.shutdown_grace < 0:
            raise ValueError("timeouts must be positive")
        if self.loop not in ("uvloop", "asyncio"):
            raise ValueError("loop must be 'uvloop' or 'asyncio'")
        self.pipeline_settings()  # validates ports

    def pipeline_settings(self, http_port: int | None = None, https_port: int | None = None) -> PipelineSettings:
        """Settings for the pure phases; ``*_port`` are the bound listener ports (for redirects)."""
        public_http = self.public_http_port or http_port or (self.http[1] if self.http else 80) or 80
        public_https = self.public_https_port or https_port or (self.https[1] if self.https else 443) or 443
        return PipelineSettings(
            origin_https_port=self.origin_https_port,
            origin_http_port=self.origin_http_port,
            public_http_port=public_http,
            public_https_port=public_https,
            colo=self.colo,
        )


def _address(value: str) -> tuple[str, int] | None:
    if value.lower() in ("", "off", "none"):
        return None
    try:
        return parse_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the edge's flags to ``parser`` (``originlock serve``)."""
    group = parser.add_argument_group("edge")
    group.add_argument(
        "--http",
        type=_address,
        default=DEFAULT_HTTP,
        metavar="HOST:PORT",
        help=f"visitor HTTP listener, or 'off' (default {DEFAULT_HTTP})",
    )
    group.add_argument(
        "--https",
        type=_address,
        default=DEFAULT_HTTPS,
        metavar="HOST:PORT",
        help=f"visitor HTTPS listener, or 'off' (default {DEFAULT_HTTPS})",
    )
    group.add_argument(
        "--origin-https-port", type=int, default=443, metavar="PORT", help="origin port for HTTPS pulls (default 443)"
    )
    group.add_argument(
        "--origin-http-port", type=int, default=80, metavar="PORT", help="origin port for plain HTTP pulls (default 80)"
    )
    group.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N|auto",
        help="edge processes sharing the listeners with SO_REUSEPORT; 'auto' is one per CPU core, like "
        "nginx's worker_processes auto (default auto)",
    )
    defaults = OriginTimeouts()
    group.add_argument(
        "--origin-connect-timeout",
        type=float,
        default=defaults.connect,
        metavar="SECONDS",
        help=f"522 after this long without a TCP connection (default {defaults.connect:g})",
    )
    group.add_argument(
        "--origin-read-timeout",
        type=float,
        default=defaults.read,
        metavar="SECONDS",
        help=f"524 after this long without a response (default {defaults.read:g})",
    )
    group.add_argument(
        "--origin-write-timeout",
        type=float,
        default=defaults.write,
        metavar="SECONDS",
        help=f"524 when the origin does not accept the request (default {defaults.write:g})",
    )
    group.add_argument(
        "--idle-timeout",
        type=float,
        default=DOWNSTREAM_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"close idle visitor connections after this long (default {DOWNSTREAM_IDLE_TIMEOUT:g})",
    )
    group.add_argument(
        "--header-timeout",
        type=float,
        default=DOWNSTREAM_HEADER_TIMEOUT,
        metavar="SECONDS",
        help=f"close a visitor connection whose request head is not complete this long after its first byte "
        f"(default {DOWNSTREAM_HEADER_TIMEOUT:g})",
    )
    group.add_argument(
        "--websocket-idle-timeout",
        type=float,
        default=WEBSOCKET_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"close a WebSocket without data either way for this long (default {WEBSOCKET_IDLE_TIMEOUT:g})",
    )
    group.add_argument(
        "--access-log",
        default="-",
        metavar="PATH",
        help="JSON-lines access log: a path, '-' for stdout, 'off' to disable (default -)",
    )
    add_limit_arguments(parser)


def edge_config_from_args(args: argparse.Namespace) -> EdgeConfig:
    """Build the :class:`EdgeConfig` from flags added by :func:`add_edge_arguments` (ValueError if invalid)."""
    access_log = None if args.access_log in ("off", "none", "") else args.access_log
    return EdgeConfig(
        http=args.http,
        https=args.https,
        origin_https_port=args.origin_https_port,
        origin_http_port=args.origin_http_port,
        workers=args.workers,
        origin_timeouts=OriginTimeouts(
            connect=args.origin_connect_timeout,
            handshake=args.origin_connect_timeout,
            read=args.origin_read_timeout,
            write=args.origin_write_timeout,
        ),
        idle_timeout=args.idle_timeout,
        header_timeout=args.header_timeout,
        access_log=access_log,
        limits=limits_from_args(args),
        websocket_idle_timeout=args.websocket_idle_timeout,
    )
