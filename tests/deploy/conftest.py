"""Deployment tests: PostgreSQL only (real server processes, many workers, killed connections).

Every test here needs DISPUTES_TEST_DATABASE_URL (skipped without it, failed with
DISPUTES_REQUIRE_POSTGRES=1, as in tests/conftest.py). Tests marked ``slow`` run only
when asked for: ``-m slow`` (or any marker expression naming it) or
DISPUTES_DEPLOY_SLOW=1; their bounded versions always run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import postgres_schema_url

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "slow" in (config.getoption("markexpr") or "") or os.environ.get("DISPUTES_DEPLOY_SLOW") == "1"
    if wanted:
        return
    # Deselected, not skipped: the bounded versions of these tests run instead.
    slow = [
        item
        for item in items
        if item.get_closest_marker("slow") is not None and HERE in Path(str(item.fspath)).resolve().parents
    ]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema of this test's own (dropped afterwards)."""
    yield from postgres_schema_url()
