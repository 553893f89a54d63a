"""Alembic: an empty database upgraded to head has exactly the models' schema, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, insert, inspect, select
from sqlmodel import SQLModel

from audit.verify import verify_database
from cases.commands import UnitOfWork
from cases.queries import CaseFilters, load_snapshot
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from store import schema
from store.db import make_engine
from store.errors import SchemaBehindError
from store.tables import CASES, EVENTS, MERCHANT_EVENTS, MERCHANT_FLAGS, MERCHANTS, TIMERS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import make_clocked_service, make_service, new_case
from tests.support.database import postgres_schema_url
from workflow.chain import GENESIS_HASH, canonical_bytes, link
from workflow.errors import PolicyDeniedError
from workflow.events import Event
from workflow.model import SYSTEM, Actor


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        yield from postgres_schema_url()


def test_upgrade_to_head_equals_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with pytest.raises(SchemaBehindError, match="disputes db upgrade"):
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
    service = make_clocked_service(url, privacy=False)  # data of a version before personal data moved out
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


BEFORE_MERCHANT_LOGS = "0143d543fbd1"


def test_upgrade_gives_every_flagged_merchant_a_log_and_old_case_flags_still_replay(
    empty_url: str, tmp_path: Path
) -> None:
    """A database of the version that flagged cases one by one: m-1 is flagged (its open case
    carries ``flag_raised``), m-3 was flagged and cleared (its case carries both events).
    After the upgrade m-1 has a log whose one event raises the flag, m-3 has none; the
    policies still see m-1 flagged and m-3 not; every case and log verifies."""
    names, tables = _cases_flagged_the_old_way(f"sqlite:///{tmp_path / 'source.db'}")
    engine = make_engine(empty_url)
    try:
        schema.upgrade(engine, BEFORE_MERCHANT_LOGS)
        with engine.begin() as conn:
            for table, rows in tables.items():
                conn.execute(insert(table), rows)
        schema.upgrade(engine)

        with engine.connect() as conn:
            logged = conn.execute(select(MERCHANT_EVENTS).order_by(MERCHANT_EVENTS.c.merchant_id)).all()
            standing = conn.execute(select(MERCHANTS.c.merchant_id, MERCHANTS.c.seq, MERCHANTS.c.flagged)).all()
        assert [(r.merchant_id, r.seq, r.type) for r in logged] == [("m-1", 1, "flag_raised")]
        assert [(r.merchant_id, r.seq, bool(r.flagged)) for r in standing] == [("m-1", 1, True)]
        event = logged[0]
        assert event.prev_hash == GENESIS_HASH and event.hash == link(GENESIS_HASH, event.body.encode())
        assert canonical_bytes(json.loads(event.body)) == event.body.encode()  # the engine's own bytes
        body = json.loads(event.body)
        assert body["data"]["reasons"] == ["complaints filed against the merchant: 31 (threshold 30)"]
        assert body["at"] == "2026-03-02T01:00:00.000000Z" and body["actor"] == {"id": "system", "role": "system"}

        service = make_service(empty_url)
        try:
            report = verify_database(service.db, service.registry)
            assert report.intact and (report.cases_checked, report.merchants_checked) == (3, 1), report.to_dict()
            with pytest.raises(PolicyDeniedError, match="only offer the full claim"):
                service.execute(actor=MERCHANT, case_id=names["m-1"], name="propose_offer", data={"amount": 100})
            cleared = Actor("mu-3", "merchant", merchant_id="m-3")
            service.execute(actor=cleared, case_id=names["m-3"], name="propose_offer", data={"amount": 100})
            assert "merchant_flagged" in service.get(actor=AUDITOR, case_id=names["m-1"]).flags
        finally:
            service.db.dispose()

        schema.downgrade(engine, BEFORE_MERCHANT_LOGS)
        new_tables = {"merchant_events", "merchants", "checkpoint_merchant_heads"}
        assert not new_tables & set(inspect(engine).get_table_names())
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision()
    finally:
        engine.dispose()


def _cases_flagged_the_old_way(url: str) -> tuple[dict[str, str], dict[Table, list[dict[str, Any]]]]:
    """Cases of m-1, m-2 and m-3, each assigned, with the supervision flags written as the
    version before merchant logs wrote them; the rows of every table that version had."""
    create = make_engine(url)
    SQLModel.metadata.create_all(create)
    create.dispose()
    service = make_service(url, privacy=False)  # data of a version before personal data moved out
    try:
        names = {
            m: service.file(actor=CONSUMER, new_case=new_case(merchant_id=m, order_ref=f"O-{m}")).id
            for m in ("m-1", "m-2", "m-3")
        }
        for case_id in names.values():
            service.execute(actor=MEDIATOR, case_id=case_id, name="assign")
        flag = {"flag": "merchant_flagged", "flag_id": 1, "reasons": ["x"]}
        _append_as_before(service, names["m-1"], Event("flag_raised", flag))
        _append_as_before(service, names["m-3"], Event("flag_raised", {**flag, "flag_id": 2}))
        _append_as_before(service, names["m-3"], Event("flag_cleared", {"flag": "merchant_flagged", "flag_id": 2}))
        reasons = json.dumps(
            [
                {
                    "metric": "complaints_at_least",
                    "value": 31,
                    "threshold": 30,
                    "message": "complaints filed against the merchant: 31 (threshold 30)",
                }
            ]
        )
        with service.db.write() as session:
            for merchant_id, cleared in (("m-1", None), ("m-3", T0)):
                session.execute(
                    insert(MERCHANT_FLAGS).values(
                        merchant_id=merchant_id,
                        raised_at=T0 - timedelta(hours=1),
                        evaluated_at=T0,
                        period_start=T0 - timedelta(days=30),
                        period_end=T0 - timedelta(hours=1),
                        reasons=reasons,
                        figures="{}",
                        rules_version="ab" * 32,
                        cleared_at=cleared,
                    )
                )
        with service.db.read() as session:
            tables = {
                table: [dict(r) for r in session.execute(select(table)).mappings()]
                for table in SQLModel.metadata.sorted_tables
                if table.name not in ("merchant_events", "merchants", "checkpoint_merchant_heads", "checkpoints")
                # The reports' read model is newer than that version (its migration marks every case).
                and not table.name.startswith("report_")
            }
    finally:
        service.db.dispose()
    for row in tables[EVENTS]:
        del row["id"]  # numbered by the target database, which later commands append to
    return names, {table: rows for table, rows in tables.items() if rows}


def _append_as_before(service: CaseService, case_id: str, event: Event) -> None:
    """What supervision appended to each open case of a merchant before merchant logs."""
    with service.db.write() as session:
        before = load_snapshot(session, case_id)
        work = UnitOfWork(
            service, service.registry.pinned(before.workflow_version, session), before, case_id, service.clock.now()
        )
        work.add([event], SYSTEM)
        work.write(session)
