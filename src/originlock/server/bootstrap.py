"""First start and every start: data dir, master key, store, default account, admin token, CAs.

The store layer (SQLAlchemy and its dialects, ~0.45 CPU-s) is imported by :func:`bootstrap` itself, not by
this module: an ``originlock edge`` node reads :data:`MASTER_KEY_ENV` from here and serves its last-known-good
copy before it imports any of it (server/disk_start.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from originlock.store.sealing import KeySealer, load_or_create_master_key

if TYPE_CHECKING:
    from originlock.store.db import Store
    from originlock.store.deadline import StoreTimeouts

__all__ = ["Deployment", "bootstrap", "default_store_url", "prepare_data_dir"]

log = logging.getLogger("originlock")

ADMIN_TOKEN_ENV = "ORIGINLOCK_ADMIN_TOKEN"
MASTER_KEY_ENV = "ORIGINLOCK_MASTER_KEY"


@dataclass(frozen=True)
class Deployment:
    data_dir: Path
    store: Store
    store_url: str
    account_id: str
    admin_token_path: Path
    #: The admin token's secret when this start created it from scratch (print it once), else None.
    new_admin_token: str | None
    #: True on the deployment's first start (the store was just initialised), for first-run hints.
    first_start: bool = False


def default_store_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / 'originlock.db'}"


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def prepare_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` 0700 if it is missing; leave an existing directory's mode alone.

    An existing directory belongs to the operator (it may be shared, or owned by someone else, like a
    mounted volume): changing its mode behind their back is surprising and fails on a directory this user
    does not own. The secrets in it are created 0600 either way; a warning says when the directory is open.

    Raises:
        OSError: ``data_dir`` is a file, or cannot be created.
    """
    if not data_dir.is_dir():
        data_dir.mkdir(mode=0o700, parents=True)
        os.chmod(data_dir, 0o700)  # mkdir's mode is filtered by the umask
        return
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning(
            "warning: --data-dir %s is readable by other users (mode %o); the secrets in it are 0600, but consider "
            "chmod 700 %s",
            data_dir,
            mode,
            data_dir,
        )


def bootstrap(
    data_dir: Path,
    store_url: str | None = None,
    now: datetime | None = None,
    *,
    fips: bool = False,
    timeouts: StoreTimeouts | None = None,
) -> Deployment:
    """``timeouts``: the store's (default ``API_TIMEOUTS``)."""
    from originlock.store.db import Store
    from originlock.store.deadline import API_TIMEOUTS

    now = now or datetime.now(UTC)
    prepare_data_dir(data_dir)
    master = load_or_create_master_key(data_dir / "master.key", os.environ.get(MASTER_KEY_ENV))
    if store_url is None:
        db_file = data_dir / "originlock.db"
        if not db_file.exists():
            # Create it 0600 ourselves; SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT, 0o600))
    store_url = store_url or default_store_url(data_dir)
    store = Store(store_url, KeySealer(master), fips=fips, timeouts=timeouts or API_TIMEOUTS)
    try:
        return _prepare(store, data_dir, store_url, now)
    except BaseException:
        # Closed, or its breaker's probe thread would go on trying the store (serve retries bootstrap every
        # second through an outage: cli/serve_outage.py).
        store.close()
        raise


def _prepare(store: Store, data_dir: Path, store_url: str, now: datetime) -> Deployment:
    """The account, the deployment's CAs and the admin token, made once (``bootstrap``)."""
    from sqlalchemy import insert, select

    from originlock.store import schema
    from originlock.store.migrate import startup_lock
    from originlock.store.pki import ensure_pki
    from originlock.store.tokens import create_token, find_token
    from originlock.store.zones import create_account, list_accounts

    token_path = data_dir / "admin-token"
    from_env = os.environ.get(ADMIN_TOKEN_ENV, "").strip() or None
    new_token: str | None = None
    with store.write() as conn:
        # Every step below reads before it creates. On PostgreSQL, nodes of a fleet starting at once take
        # turns here (the lock is held until this transaction commits), so each one after the first reads
        # the account, token and CAs the first one committed and uses them; SQLite's BEGIN IMMEDIATE
        # already admits one writer at a time.
        startup_lock(conn)
        accounts = list_accounts(conn)
        account_id = accounts[0].id if accounts else create_account(conn, "originlock")
        ensure_pki(conn, store.sealer, now)
        bootstrapped = conn.execute(select(schema.meta).where(schema.meta.c.key == "admin_token_created")).first()
        if from_env is not None:
            if find_token(conn, from_env) is None:
                create_token(conn, "admin (from environment)", ["*"], None, secret=from_env)
        elif bootstrapped is None:
            _, new_token = create_token(conn, "admin", ["*"], None)
        if bootstrapped is None:
            conn.execute(insert(schema.meta).values(key="admin_token_created", value=now.isoformat()))
    if new_token is not None:
        _write_secret(token_path, new_token)
    return Deployment(data_dir, store, store_url, account_id, token_path, new_token, first_start=bootstrapped is None)
