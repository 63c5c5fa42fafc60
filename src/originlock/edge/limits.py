"""The edge's resource limits: one frozen dataclass, its defaults (with precedents) and its CLI flags.

Every limit is per edge process (``--workers N`` multiplies them), like nginx's per-worker
``worker_connections``. What happens at each limit is described in docs/edge.md ("Resource limits").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BACKLOG",
    "BODY_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_ORIGIN_CONNECTIONS",
    "ORIGIN_QUEUE_TIMEOUT",
    "EdgeLimits",
    "add_limit_arguments",
    "limits_from_args",
]

#: Listen backlog of the visitor listeners. nginx uses 511 on Linux; wrk with 200+ connections needed more
#: than asyncio's 100. The kernel caps it at ``net.core.somaxconn`` (4096 since Linux 5.4).
BACKLOG: Final = 1024
#: Visitor connections open at once (TLS handshakes in progress included). nginx's ``worker_connections``
#: is 512 (768 in Debian's nginx.conf) and counts upstream connections too; ours counts visitors only,
#: and is lowered at run time to half of what the open-files limit leaves (each visitor may need an
#: origin connection), so the limit is reached before the process runs out of file descriptors.
MAX_CONNECTIONS: Final = 10_000
#: Origin connections (busy, idle and being dialled) per origin address and port. Envoy's circuit-breaker
#: default is 1024 connections per cluster, overflowing with 503; nginx's ``max_conns`` is unlimited
#: unless set. 0 means unlimited.
MAX_ORIGIN_CONNECTIONS: Final = 1024
#: How long a request waits for an origin connection under ``MAX_ORIGIN_CONNECTIONS`` before its 503.
#: (nginx Plus's ``queue ... timeout`` is 60 s, Envoy queues up to its route timeout; a visitor should
#: get an answer well before either.)
ORIGIN_QUEUE_TIMEOUT: Final = 10.0
#: Time allowed between two reads of a request body (nginx's ``client_body_timeout``: 60 s).
BODY_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class EdgeLimits:
    backlog: int = BACKLOG
    #: Visitor connections at once; beyond it new connections get a 503 and are closed.
    max_connections: int = MAX_CONNECTIONS
    #: Origin connections per origin address and port; 0 for no limit.
    max_origin_connections: int = MAX_ORIGIN_CONNECTIONS
    origin_queue_timeout: float = ORIGIN_QUEUE_TIMEOUT
    body_timeout: float = BODY_TIMEOUT

    def __post_init__(self) -> None:
        if self.backlog < 1:
            raise ValueError("--backlog must be at least 1")
        if self.max_connections < 1:
            raise ValueError("--max-connections must be at least 1")
        if self.max_origin_connections < 0:
            raise ValueError("--max-origin-connections must be 0 (no limit) or more")
        if self.origin_queue_timeout < 0 or self.body_timeout <= 0:
            raise ValueError("--origin-queue-timeout must be >= 0 and --body-timeout positive")


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the resource-limit flags to ``parser`` (``originlock serve``)."""
    group = parser.add_argument_group("edge resource limits (per edge process)")
    group.add_argument(
        "--backlog",
        type=int,
        default=BACKLOG,
        metavar="N",
        help=f"listen backlog of the visitor listeners, capped by net.core.somaxconn (default {BACKLOG})",
    )
    group.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"visitor connections at once; more get a 503 and are closed; lowered to fit the open-files "
        f"limit (default {MAX_CONNECTIONS})",
    )
    group.add_argument(
        "--max-origin-connections",
        type=int,
        default=MAX_ORIGIN_CONNECTIONS,
        metavar="N",
        help=f"connections per origin address and port; requests beyond wait, then get a 503; 0 = no limit "
        f"(default {MAX_ORIGIN_CONNECTIONS})",
    )
    group.add_argument(
        "--origin-queue-timeout",
        type=float,
        default=ORIGIN_QUEUE_TIMEOUT,
        metavar="SECONDS",
        help=f"how long a request waits for a connection under --max-origin-connections (default "
        f"{ORIGIN_QUEUE_TIMEOUT:g})",
    )
    group.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_TIMEOUT,
        metavar="SECONDS",
        help=f"close a visitor that sends no request-body bytes for this long (default {BODY_TIMEOUT:g})",
    )


def limits_from_args(args: argparse.Namespace) -> EdgeLimits:
    """The :class:`EdgeLimits` of flags added by :func:`add_limit_arguments` (ValueError if invalid)."""
    return EdgeLimits(
        backlog=args.backlog,
        max_connections=args.max_connections,
        max_origin_connections=args.max_origin_connections,
        origin_queue_timeout=args.origin_queue_timeout,
        body_timeout=args.body_timeout,
    )
