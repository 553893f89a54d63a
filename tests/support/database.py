"""Databases for tests: every storage test runs on SQLite and, when configured, on PostgreSQL.

DISPUTES_TEST_DATABASE_URL points at a PostgreSQL server; each test gets its own schema there
(so parallel workers never meet). With DISPUTES_REQUIRE_POSTGRES=1 a missing or unreachable
server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables)
from store.db import make_engine

PG_URL = os.environ.get("DISPUTES_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("DISPUTES_REQUIRE_POSTGRES") == "1"


def postgres_schema_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server of DISPUTES_TEST_DATABASE_URL, dropped afterwards;
    skipped (or failed, with DISPUTES_REQUIRE_POSTGRES=1) when there is none."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("PostgreSQL required but DISPUTES_TEST_DATABASE_URL is unset")
        pytest.skip("PostgreSQL tests need DISPUTES_TEST_DATABASE_URL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the same here
        admin.dispose()
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def with_schema(url: str) -> Iterator[str]:
    """``url`` with the tables created."""
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    yield url


def database_url(backend: str, directory: Path) -> Iterator[str]:
    """A fresh database with the schema, for fixtures wider than one test (see tests/conftest.py)."""
    if backend == "sqlite":
        yield from with_schema(f"sqlite:///{directory / 'disputes.db'}")
    else:
        for url in postgres_schema_url():
            yield from with_schema(url)
