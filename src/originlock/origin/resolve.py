"""Resolving CNAME origins, with a small positive/negative cache (the clock is injected)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from originlock.errors import OriginDnsError

__all__ = ["Resolver"]

#: getaddrinfo returns no TTL; 30 s bounds staleness like nginx's ``resolver ... valid=30s`` examples.
CACHE_SECONDS = 30.0
#: Failures are remembered briefly so a broken CNAME does not hammer the resolver.
NEGATIVE_CACHE_SECONDS = 5.0

Lookup = Callable[[str, int], Awaitable[list[str]]]


@functools.lru_cache(maxsize=4096)  # asked at every new origin connection, for a handful of origins
def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Resolver:
    def __init__(self, lookup: Lookup, clock: Callable[[], float]) -> None:
        self._lookup = lookup
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    def resolve_nowait(self, host: str) -> str | None:
        """``host`` when it is an IP literal, its cached address when there is one, else None (then
        :meth:`resolve`): a dial to an A/AAAA origin creates no coroutine for this."""
        if is_ip_literal(host):
            return host
        hit = self._cache.get(host)
        if hit is not None and hit[1] is not None and hit[0] > self._clock():
            return hit[1]
        return None

    async def resolve(self, host: str, port: int) -> str:
        """An address for ``host`` (returned as is when it is an IP literal).

        Raises:
            OriginDnsError: the name does not resolve (530 / 1016).
        """
        if is_ip_literal(host):
            return host
        now = self._clock()
        hit = self._cache.get(host)
        if hit is not None and hit[0] > now:
            if hit[1] is None:
                raise OriginDnsError(f"{host} does not resolve")
            return hit[1]
        try:
            addresses = await self._lookup(host, port)
        except (OSError, UnicodeError) as exc:
            self._cache[host] = (now + NEGATIVE_CACHE_SECONDS, None)
            raise OriginDnsError(f"{host} does not resolve ({exc})") from exc
        if not addresses:
            self._cache[host] = (now + NEGATIVE_CACHE_SECONDS, None)
            raise OriginDnsError(f"{host} has no addresses")
        self._cache[host] = (now + CACHE_SECONDS, addresses[0])
        return addresses[0]


def getaddrinfo_lookup(loop: asyncio.AbstractEventLoop) -> Lookup:
    """Adapt ``loop.getaddrinfo`` to a :data:`Lookup`."""

    async def lookup(host: str, port: int) -> list[str]:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    return lookup
