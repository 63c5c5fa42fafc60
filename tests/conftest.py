"""Shared fixtures: the two store backends, a throwaway PKI, and `originlock serve` as a real process."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import originlock
from originlock.edge import exchange
from originlock.testing.require import require_or_skip
from originlock.testing.upload_pki import UploadPki

# Subprocesses (`python -m originlock serve`, the CLI) must run the same code as this test process: the
# checkout's src/ (pyproject's pythonpath; `-o pythonpath=DIR` for another tree, as the compiled-build test
# does), not whichever copy pip last installed.
_SRC = str(Path(originlock.__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join([_SRC, *filter(None, [os.environ.get("PYTHONPATH")])])
if os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1" and exchange.__file__.endswith(".py"):
    raise RuntimeError(f"the compiled hot path was asked for, but {exchange.__file__} is interpreted")

PG_URL = os.environ.get("ORIGINLOCK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    require_or_skip(postgres_available(), f"PostgreSQL is not reachable at {PG_URL}")
    return PG_URL


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each backend: the same tests run against both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = request.getfixturevalue("pg_base_url")
    schema = f"ol_test_{secrets.token_hex(6)}"
    yield f"{base}?schema={schema}"
    drop_schema(schema)


@pytest.fixture(scope="session")
def pki() -> UploadPki:
    return UploadPki.create()


@pytest.fixture(scope="session")
def pg_schema_factory(pg_base_url: str) -> Iterator[object]:
    """Make store URLs in fresh PostgreSQL schemas; every schema is dropped at the end of the session."""
    made: list[str] = []

    def make(prefix: str = "ol") -> str:
        schema = f"{prefix}_{secrets.token_hex(6)}"
        made.append(schema)
        return f"{pg_base_url}?schema={schema}"

    yield make
    for schema in made:
        drop_schema(schema)
