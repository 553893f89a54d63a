"""Shared fixtures: every storage test runs on SQLite and, when configured, on PostgreSQL
(tests/support/database.py says how); the outsider's export verifier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import PG_URL, REQUIRE_PG, postgres_schema_url, with_schema
from tests.support.verifier import make_verifier


def pytest_configure(config: pytest.Config) -> None:
    # The apps and servers the tests start (dozens, several of them worker processes) do not warm
    # the triage's encoder at start-up (~2 s of a core and ~120 MB each): a test that classifies
    # loads it on first use, and tests/intake/test_use_forward.py tests warming itself.
    os.environ.setdefault("DISPUTES_WARM_TRIAGE", "false")
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError("DISPUTES_REQUIRE_POSTGRES=1 but DISPUTES_TEST_DATABASE_URL is not set")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL with the schema created, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'disputes.db'}"
        yield from with_schema(url)
    else:
        for url in postgres_schema_url():
            yield from with_schema(url)


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tools/verify_export.py where nothing of this project can be imported (tests/support/verifier.py)."""
    return make_verifier(tmp_path_factory)
