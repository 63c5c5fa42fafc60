"""Origin Rules that read only the hostname, evaluated once per (zone, host) and snapshot.

The common Origin Rules route by hostname (``http.host eq "api.example.com"`` → another origin or port).
Their outcome is then a function of the zone's rulesets and the Host alone: the WAF hook asks this memo
first and builds no request fields at all for such a zone's requests (docs/performance.md). A zone with
any rule reading another field (a path, a header, the visitor's address...) is evaluated per request as
before; :func:`~originlock.waf.ast.field_names` decides, once per zone and snapshot.

The outcomes are valid for one snapshot (rulesets and lists are compiled into it): the memo forgets
everything when another snapshot arrives, like ORIGIN_SELECT's peer cache, and both its maps are
:class:`~originlock.cache.BoundedCache` (hosts are chosen by visitors, though only a routed one reaches it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from originlock.cache import BoundedCache
from originlock.waf import CompiledRuleset, RequestFields, RouteOverride, evaluate_origin
from originlock.waf.ast import field_names
from originlock.waf.fields import CONSTANT_FIELDS

__all__ = ["OriginOutcome", "OriginRulesMemo", "reads_host_only"]

#: What Origin Rules decide for a request: the merged override and the ids of the rules that matched.
OriginOutcome = tuple[RouteOverride | None, tuple[str, ...]]

#: ``true`` and ``false`` are written as identifiers (fields to the parser) but read nothing.
_HOST_ONLY: Final = frozenset(("http.host", *CONSTANT_FIELDS))
_LIMIT: Final = 4096


def reads_host_only(rulesets: Sequence[CompiledRuleset]) -> bool:
    """Whether every rule of ``rulesets`` reads no field but ``http.host`` (a rule without its AST: no)."""
    for ruleset in rulesets:
        for rule in ruleset.rules:
            if rule.node is None or not field_names(rule.node) <= _HOST_ONLY:
                return False
    return True


class OriginRulesMemo:
    """Origin Rules' outcomes by (zone id, host) for the zones whose rules read only ``http.host``."""

    __slots__ = ("host_only", "last_host", "last_outcome", "last_zone_id", "outcomes", "snapshot")

    def __init__(self) -> None:
        #: The snapshot the entries were computed for (compared by identity: snapshots are immutable).
        self.snapshot: object = None
        self.host_only = BoundedCache[str, bool](_LIMIT)
        self.outcomes = BoundedCache[tuple[str, str], OriginOutcome](_LIMIT)
        #: The last outcome handed out and for which zone id (by identity: one object per snapshot's
        #: route) and host: the next request usually asks the same, and the two cache lookups with a
        #: tuple key cost ≈ 1k instructions where this costs two comparisons.
        self.last_zone_id: str | None = None
        self.last_host = ""
        self.last_outcome: OriginOutcome | None = None

    def outcome(
        self, snapshot: object, zone_id: str, rulesets: Sequence[CompiledRuleset], host: str
    ) -> OriginOutcome | None:
        """The outcome for ``host``, or None when the zone's rules read more than the host (evaluate them
        per request). ``rulesets`` are the zone's ``http_request_origin`` rulesets in ``snapshot``."""
        if snapshot is not self.snapshot:
            self.snapshot = snapshot
            self.host_only.clear()
            self.outcomes.clear()
            self.last_zone_id = None
        elif zone_id is self.last_zone_id and host == self.last_host:
            return self.last_outcome
        host_only = self.host_only.get(zone_id)
        if host_only is None:
            host_only = self.host_only.put(zone_id, reads_host_only(rulesets))
        if not host_only:
            return None
        key = (zone_id, host)
        found = self.outcomes.get(key)
        if found is None:
            # The rules read nothing but the host: a request made of the host alone has the same outcome.
            found = self.outcomes.put(key, evaluate_origin(RequestFields(method="GET", host=host, path="/"), rulesets))
        self.last_zone_id, self.last_host, self.last_outcome = zone_id, host, found
        return found
