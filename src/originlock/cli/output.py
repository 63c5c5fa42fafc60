"""Human tables by default, JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["emit", "table"]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(result: Any, as_json: bool, columns: Sequence[str] | None = None) -> None:
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    rows = result if isinstance(result, list) else [result]
    if not rows:
        print("(none)")
        return
    print(table(rows, columns or list(rows[0].keys())))
