"""A token whose weak reference tells whether the snapshot holding it is still alive.

The snapshot class is compiled by mypyc in the wheel, and native classes take no weak references; this module
is not compiled, so its objects do. Each snapshot holds one token that nothing else holds.
"""

from __future__ import annotations

__all__ = ["Lifetime"]


class Lifetime:
    __slots__ = ("__weakref__",)
