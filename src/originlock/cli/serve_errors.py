"""One-line explanations for why `originlock serve` cannot use its data directory or its store (instead of a
traceback)."""

from __future__ import annotations

import errno
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from originlock.store.errors import StoreError

__all__ = ["data_dir_problem", "store_problem"]


def data_dir_problem(data_dir: Path, exc: OSError) -> str:
    """What went wrong with ``--data-dir`` and what to do about it, from the ``OSError`` bootstrap raised."""
    where = exc.filename or data_dir
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) or (data_dir.exists() and not data_dir.is_dir()):
        return f"--data-dir {data_dir} is not a directory ({where} is a file); pass a directory path"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write to --data-dir {data_dir} ({where}: {exc.strerror}); "
            "pass a directory this user can write to, e.g. --data-dir ./originlock-data"
        )
    return f"cannot use --data-dir {data_dir} ({where}: {exc.strerror or exc})"


def _shown(url: str) -> str:
    """The store URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def store_problem(url: str | None, exc: Exception) -> str:
    """Why the store could not be opened: the driver's first line (no SQL, no traceback) and what to check."""
    where = f"--store {_shown(url)}" if url else "the SQLite store in --data-dir"
    # The store's own StoreUnavailable wraps the driver's error (store/db.py): say what the driver said.
    if isinstance(exc, StoreError) and exc.__cause__ is not None:
        exc = exc.__cause__  # type: ignore[assignment]
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot open {where}: {detail}"
