"""One-line explanations for why `originlock serve` cannot use its data directory (instead of a traceback)."""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["data_dir_problem"]


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
