"""Shared fixtures: every storage test runs on SQLite and, when configured, on PostgreSQL.

DISPUTES_TEST_DATABASE_URL points at a PostgreSQL server; each test gets its own
schema there (so parallel workers never meet). With DISPUTES_REQUIRE_POSTGRES=1 a
missing or unreachable server fails the run instead of skipping.
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


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError("DISPUTES_REQUIRE_POSTGRES=1 but DISPUTES_TEST_DATABASE_URL is not set")


def _postgres_schema_url() -> Iterator[str]:
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL with the schema created, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'disputes.db'}"
        yield from _with_schema(url)
    else:
        for url in _postgres_schema_url():
            yield from _with_schema(url)


def _with_schema(url: str) -> Iterator[str]:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    yield url
