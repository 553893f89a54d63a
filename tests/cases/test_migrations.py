"""Alembic: an empty database upgraded to head has exactly the models' schema, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, insert, inspect, select
from sqlmodel import SQLModel

from cases import schema
from cases.db import make_engine
from cases.projection import CASES, TIMERS
from cases.service import CaseFilters
from cases.timers import fire_due_timers
from sla.clock import ManualClock
from tests.cases.helpers import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, T0, make_clocked_service, make_service, new_case
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


def test_upgrade_back_fills_breaching_from_the_timers(empty_url: str, tmp_path: Path) -> None:
    """A database at the initial revision, holding cases whose clocks stand in every way, is
    upgraded: the new ``breaching`` column says which are breaching (breached, or warned and
    still running), the list filter returns exactly those, and the downgrade undoes it."""
    names, tables = _cases_at_every_clock_stand(f"sqlite:///{tmp_path / 'source.db'}")
    engine = make_engine(empty_url)
    try:
        schema.upgrade(engine, INITIAL)
        with engine.begin() as conn:
            for table, rows in tables.items():
                conn.execute(insert(table), rows)  # each row's keys: the initial schema's columns
        schema.upgrade(engine)

        with engine.connect() as conn:
            column = dict(conn.execute(select(CASES.c.id, CASES.c.breaching)).tuples().all())
        assert column == {case_id: name in ("B", "E") for name, case_id in names.items()}
        service = make_service(empty_url)
        try:
            listed = service.list_cases(actor=AUDITOR, filters=CaseFilters(breaching=True)).data
            assert [c.id for c in listed] == [names["E"], names["B"]]  # newest first
            others = service.list_cases(actor=AUDITOR, filters=CaseFilters(breaching=False)).data
            assert [c.id for c in others] == [names[n] for n in ("A", "F", "D", "C")]
        finally:
            service.db.dispose()

        schema.downgrade(engine, INITIAL)
        inspector = inspect(engine)
        assert "breaching" not in {c["name"] for c in inspector.get_columns("cases")}
        assert "ix_timers_breaching" in {i["name"] for i in inspector.get_indexes("timers")}
        schema.upgrade(engine)
        with engine.connect() as conn:
            assert dict(conn.execute(select(CASES.c.id, CASES.c.breaching)).tuples().all()) == column
    finally:
        engine.dispose()


INITIAL = "e418d792e10b"


def _cases_at_every_clock_stand(url: str) -> tuple[dict[str, str], dict[Table, list[dict[str, Any]]]]:
    """Cases filed by the real service, and their case and timer rows without ``breaching``.

    B: merchant clock warned, running (breaching). E: assignment clock breached, escalated
    (breaching). C: merchant clock warned, then paused while the consumer is asked. D: merchant
    clock met. F: assignment clock warned, then cancelled by a withdrawal. A: just filed.
    """
    create = make_engine(url)
    SQLModel.metadata.create_all(create)
    create.dispose()
    service = make_clocked_service(url)
    clock = service.clock
    assert isinstance(clock, ManualClock)
    try:
        names = {n: service.file(actor=CONSUMER, new_case=new_case(order_ref=f"O-{n}")).id for n in "CDBEF"}
        for n in "BCD":
            service.execute(actor=MEDIATOR, case_id=names[n], name="assign")
        service.execute(actor=MERCHANT, case_id=names["D"], name="respond", data={"statement": "We refund."})
        for offset in (1.5, 2, 36):  # E and F warn; F is withdrawn; E breaches; B and C warn
            clock.set(T0 + timedelta(hours=offset))
            fire_due_timers(service, clock.now())
            if offset == 1.5:
                service.execute(actor=CONSUMER, case_id=names["F"], name="withdraw")
        service.execute(
            actor=MEDIATOR, case_id=names["C"], name="request_info", data={"party": "consumer", "question": "Photos?"}
        )
        names["A"] = service.file(actor=CONSUMER, new_case=new_case(order_ref="O-A")).id
        with service.db.read() as session:
            cases = [dict(r) for r in session.execute(select(CASES).order_by(CASES.c.pk)).mappings()]
            timers = [dict(r) for r in session.execute(select(TIMERS)).mappings()]
    finally:
        service.db.dispose()
    by_id = {case_id: name for name, case_id in names.items()}
    stands = {by_id[t["case_id"]] + ":" + t["name"]: (t["status"], t["warned"]) for t in timers}
    assert stands == {  # the stands the docstring promises, as the timers table holds them
        "A:assignment": ("running", False),
        "B:assignment": ("met", False),
        "B:merchant_response": ("running", True),
        "C:assignment": ("met", False),
        "C:merchant_response": ("paused", True),
        "D:assignment": ("met", False),
        "D:merchant_response": ("met", False),
        "E:assignment": ("breached", True),
        "E:ruling": ("running", False),
        "F:assignment": ("cancelled", True),
    }
    for row in cases:
        del row["breaching"]
    return names, {CASES: cases, TIMERS: timers}
