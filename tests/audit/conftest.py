"""Audit test fixtures: a signing key, a small service per backend, and the slow-test switch.

Tests marked ``slow`` here run only when asked for: ``-m slow`` (or any marker
expression naming it) or DISPUTES_AUDIT_SLOW=1; the bounded versions always run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.keys import generate_signing_key
from cases.service import CaseService
from tests.support.audit_builders import make_fast_service

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "slow" in (config.getoption("markexpr") or "") or os.environ.get("DISPUTES_AUDIT_SLOW") == "1"
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


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_fast_service(db_url)
    yield svc
    svc.db.dispose()
