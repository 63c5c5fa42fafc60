"""PRAGMA data_version as the SQLite store's change signal (store/commit_watch.py)."""

from __future__ import annotations

from pathlib import Path

from originlock.store import tokens
from originlock.store.commit_watch import CommitWatch, sqlite_file
from originlock.store.db import Store
from originlock.store.sealing import KeySealer


def test_a_commit_by_another_connection_reads_as_changed_until_settled(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", KeySealer(b"k" * 32))
    path = sqlite_file(store)
    assert path == str(tmp_path / "store.db")
    watch = CommitWatch(path)
    try:
        assert not watch.changed()
        with store.read() as conn:  # a read commits nothing
            tokens.list_tokens(conn)
        assert not watch.changed()
        with store.write() as conn:
            tokens.create_token(conn, "ci", ["*"], None)
        # Changed until the caller says it applied what it read: a failed catch-up looks again.
        assert watch.changed() and watch.changed()
        watch.settle()
        assert not watch.changed()
        with store.write() as conn:
            tokens.create_token(conn, "ci2", ["*"], None)
        assert watch.changed()
    finally:
        watch.close()
        store.close()


def test_only_sqlite_files_are_watched(tmp_path: Path) -> None:
    memory = Store("sqlite://", KeySealer(b"k" * 32))
    try:
        assert sqlite_file(memory) is None
    finally:
        memory.close()
