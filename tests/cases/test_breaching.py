"""The cases' ``breaching`` column: kept by the projection writer from the snapshot's clocks,
and what ``GET /v1/cases?breaching=...`` filters on (an index walk whatever the table's size)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from cases.queries import CaseFilters, decode_cursor, list_query
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from store.db import make_engine
from store.tables import CASES, TIMERS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import default_policies, make_clocked_service, new_case

HOUR = timedelta(hours=1)


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_clocked_service(db_url)
    yield svc
    svc.db.dispose()


def at(service: CaseService, offset: timedelta) -> None:
    """Move the clock to T0 + offset and fire what is due."""
    assert isinstance(service.clock, ManualClock)
    service.clock.set(T0 + offset)
    fire_due_timers(service, service.clock.now())


def listed(service: CaseService, breaching: bool, limit: int = 50) -> list[str]:
    """Every case the auditor's list returns, following the cursor (pages of ``limit``)."""
    page = service.list_cases(actor=AUDITOR, filters=CaseFilters(breaching=breaching), limit=limit)
    ids = [c.id for c in page.data]
    while page.next_cursor:
        page = service.list_cases(
            actor=AUDITOR, filters=CaseFilters(breaching=breaching), limit=limit, before=decode_cursor(page.next_cursor)
        )
        ids += [c.id for c in page.data]
    return ids


def check(service: CaseService, names: dict[str, str], expected: set[str]) -> None:
    """The lists, the stored column and the timers table all say ``expected`` (case names)."""
    with service.db.read() as session:
        order = [r.id for r in session.execute(select(CASES.c.id).order_by(CASES.c.pk.desc()))]
        column = {r.id for r in session.execute(select(CASES.c.id).where(CASES.c.breaching.is_(True)))}
        by_timers = {
            r.case_id
            for r in session.execute(
                select(TIMERS.c.case_id).where(text("status = 'breached' OR (status = 'running' AND warned)"))
            )
        }
    ids = {names[n] for n in expected}
    assert column == ids == by_timers
    want_true = [i for i in order if i in ids]
    want_false = [i for i in order if i not in ids]
    assert listed(service, True) == want_true
    assert listed(service, False) == want_false
    assert listed(service, True, limit=1) == want_true  # the cursor walks the same range
    assert listed(service, False, limit=2) == want_false
    for case_id in order:
        snapshot = service.get(actor=AUDITOR, case_id=case_id)
        assert snapshot.breaching == (case_id in ids)


def test_a_case_is_breaching_while_a_clock_is_breached_or_warned_and_running(service: CaseService) -> None:
    names = {n: service.file(actor=CONSUMER, new_case=new_case(order_ref=f"O-{n}")).id for n in "ABCDEF"}
    for n in "BCD":
        service.execute(actor=MEDIATOR, case_id=names[n], name="assign")
    check(service, names, set())

    # Monday 11:30 local: the assignment clocks (2 business hours) of A, E and F warn at 75%.
    at(service, 1.5 * HOUR)
    check(service, names, {"A", "E", "F"})
    service.execute(actor=MEDIATOR, case_id=names["A"], name="assign")  # met
    service.execute(actor=CONSUMER, case_id=names["F"], name="withdraw")  # cancelled
    check(service, names, {"E"})

    # 12:00: E's clock breaches (escalated by the system); breached stays breaching.
    at(service, 2 * HOUR)
    assert service.get(actor=AUDITOR, case_id=names["E"]).state == "escalated"
    check(service, names, {"E"})

    # T0 + 36 h: the merchant-response clocks (48 h) of B, C, D warn; A's (started 1.5 h later) not yet.
    at(service, 36 * HOUR)
    check(service, names, {"B", "C", "D", "E"})
    service.execute(actor=MERCHANT, case_id=names["B"], name="respond", data={"statement": "We refund."})  # met
    service.execute(
        actor=MEDIATOR, case_id=names["C"], name="request_info", data={"party": "consumer", "question": "Photos?"}
    )  # C's clock pauses while the consumer is asked: warned but not running
    check(service, names, {"D", "E"})
    request_id = service.get(actor=CONSUMER, case_id=names["C"]).info_requests[-1].request_id
    service.execute(
        actor=CONSUMER, case_id=names["C"], name="provide_info", data={"request_id": request_id, "answer": "Here."}
    )  # resumed: running and still warned
    check(service, names, {"C", "D", "E"})

    # T0 + 37.5 h: A's warns. T0 + 48 h: D's breaches (decided for the consumer), and so does C's.
    at(service, 37.5 * HOUR)
    check(service, names, {"A", "C", "D", "E"})
    at(service, 48 * HOUR)
    assert service.get(actor=AUDITOR, case_id=names["D"]).state == "settled"
    check(service, names, {"A", "C", "D", "E"})


def test_the_list_filter_walks_the_breaching_index_on_sqlite(tmp_path: Path) -> None:
    """``WHERE breaching = ? ORDER BY pk DESC LIMIT n``: one index range, no sort, no scan of
    the cases (the plan SQLite keeps whatever the table holds; PostgreSQL's depends on its
    statistics, see the report of bench B7)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    SQLModel.metadata.create_all(engine)
    visible = default_policies().visibility(actor=AUDITOR).condition  # an auditor reads every case: none
    try:
        for breaching in (True, False):
            for cursor in (None, 1000):
                stmt = list_query(visible, CaseFilters(breaching=breaching), cursor, 50)
                compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
                with engine.connect() as conn:
                    plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
                pk = " AND pk<?" if cursor else ""
                assert plan == f"SEARCH cases USING INDEX ix_cases_breaching_pk (breaching=?{pk})", plan
    finally:
        engine.dispose()
