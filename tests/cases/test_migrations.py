"""Alembic: an empty database upgraded to head has exactly the models' schema, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from cases import schema
from cases.db import make_engine
from tests.conftest import _postgres_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        yield from _postgres_schema_url()


def test_upgrade_to_head_equals_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with pytest.raises(schema.SchemaBehindError, match="disputes db upgrade"):
        schema.require_current(engine)
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    schema.require_current(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], differences
    schema.upgrade(engine)  # idempotent at head
    engine.dispose()
