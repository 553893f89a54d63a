"""Long case histories for B4 (replay) and B5 (verification): one case of ~10,000 events and
100 cases of ~100 events, all made by the engine with the same mix of commands.

They are built once per harness run by the engine's code (see :func:`grow`) on a
scratch in-memory SQLite database, then copied row for row (SQLAlchemy Core, so each
backend stores its own types) into a fresh database of the backend being measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlmodel import SQLModel

from bench.common import CONSUMER, MEDIATOR, MERCHANT, log, make_service, new_case
from bench.context import Context
from cases.commands import UnitOfWork
from cases.queries import load_snapshot
from cases.service import CaseService
from store.db import Database
from store.tables import (
    CASE_KEYS,
    CASES,
    EVENTS,
    EVIDENCE,
    INDEX_KEYS,
    MESSAGES,
    OFFERS,
    ORDER_REFS,
    PERSONAL_VALUES,
    SUBJECTS,
    TIMERS,
)
from workflow.decide import decide
from workflow.model import Actor, CaseSnapshot, Command

# With personal data beside the log (cases/personal.py): the consumer's pseudonym, the cases'
# wrapped keys, the sealed values and the order index, so the copies read as the originals.
TABLES: tuple[Table, ...] = (
    CASES,
    EVENTS,
    TIMERS,
    MESSAGES,
    OFFERS,
    EVIDENCE,
    SUBJECTS,
    CASE_KEYS,
    PERSONAL_VALUES,
    INDEX_KEYS,
    ORDER_REFS,
)
_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@dataclass
class Histories:
    long_id: str
    long_events: int
    short_ids: list[str]
    short_events: int
    rows: dict[str, list[dict[str, Any]]]


@dataclass
class Loaded:
    url: str
    histories: Histories


Command_ = tuple[Actor, str, Callable[[CaseSnapshot], dict[str, Any]]]


def _round(n: int) -> list[Command_]:
    """One round of a long mediation: talk, ask and answer, an offer refused, now and then evidence."""
    commands: list[Command_] = [
        (CONSUMER, "comment", lambda s: {"body": f"Message {n} from the consumer."}),
        (MERCHANT, "comment", lambda s: {"body": f"Message {n} from the merchant."}),
        (MEDIATOR, "comment", lambda s: {"body": f"Note {n} from the mediator."}),
        (MEDIATOR, "request_info", lambda s: {"party": "merchant", "question": f"Question {n}?"}),
        (MERCHANT, "provide_info", lambda s: {"request_id": s.info_requests[-1].request_id, "answer": f"Answer {n}."}),
        (MERCHANT, "propose_offer", lambda s: {"amount": 1000 + n, "currency": "CNY"}),
        (CONSUMER, "reject_offer", lambda s: {"offer_id": s.offers[-1].offer_id, "reason": "Too low."}),
    ]
    if n % 4 == 0:
        evidence = {"sha256": _SHA, "size": 1234, "media_type": "image/jpeg", "filename": f"photo{n}.jpg"}
        commands.append((CONSUMER, "add_evidence", lambda s: evidence))
        commands.append((CONSUMER, "submit_evidence", lambda s: {}))
    return commands


def grow(service: CaseService, events: int) -> CaseSnapshot:
    """A case in mediation with at least ``events`` events.

    Filed, assigned, answered and put in mediation through the service; the long tail
    is then made by the engine's own command path (decide, clock follow-ups, sealing,
    folding: ``UnitOfWork``) in one transaction, without the policy checks and the
    per-command rewrite of the projection, which would make a 10,000-event build take
    many minutes (see B4's note) and are not what B4/B5 measure.
    """
    case = service.file(actor=CONSUMER, new_case=new_case())
    for actor, name, data in (
        (MEDIATOR, "assign", {}),
        (MERCHANT, "respond", {"statement": "We will look into it."}),
        (MEDIATOR, "start_mediation", {}),
    ):
        case = service.execute(actor=actor, case_id=case.id, name=name, data=data, expected_version=case.version)
    now = service.clock.now()
    with service.db.write() as session:
        before = load_snapshot(session, case.id)
        machine = service.registry.machine(before.workflow_version, session)
        work = UnitOfWork(service, machine.definition, before, case.id, now)
        n = 0
        while work.current.version < events:
            n += 1
            for actor, name, data_of in _round(n):
                current = work.current
                work.add(decide(machine, current, Command(name, actor, now, data_of(current))), actor)
                work.follow_up(name, current)
        return work.write(session)


def build(long_events: int, short_count: int) -> Histories:
    log(f"B4/B5: building one {long_events:,}-event case and {short_count} x 100-event cases (in memory)")
    started = time.monotonic()
    scratch = Database("sqlite://")
    SQLModel.metadata.create_all(scratch.engine)
    service = make_service(scratch)
    try:
        long_case = grow(service, long_events)
        shorts = [grow(service, 100) for _ in range(short_count)]
        rows: dict[str, list[dict[str, Any]]] = {}
        with service.db.read() as session:
            for table in TABLES:
                # Surrogate keys are left to the target database.
                keep = [c for c in table.columns if not (table in (CASES, EVENTS) and c.primary_key)]
                rows[table.name] = [dict(r._mapping) for r in session.execute(select(*keep))]
        log(f"B4/B5: built in {time.monotonic() - started:.0f} s")
        return Histories(
            long_id=long_case.id,
            long_events=long_case.version,
            short_ids=[c.id for c in shorts],
            short_events=sum(c.version for c in shorts),
            rows=rows,
        )
    finally:
        service.db.dispose()


_BUILT: dict[tuple[int, int], Histories] = {}


def loaded(ctx: Context) -> Loaded:
    """The histories in a fresh database of this backend (shared by B4 and B5); the
    histories themselves are built once per process."""
    sizes = (ctx.pick(quick=2_000, full=10_000), ctx.pick(quick=20, full=100))

    def make() -> Loaded:
        if sizes not in _BUILT:
            _BUILT[sizes] = build(*sizes)
        histories = _BUILT[sizes]
        url = ctx.stack.enter_context(ctx.backend.fresh("history"))
        service = make_service(url)
        try:
            with service.db.write() as session:
                for table in TABLES:
                    rows = histories.rows[table.name]
                    for start in range(0, len(rows), 2000):
                        session.execute(insert(table), rows[start : start + 2000])
        finally:
            service.db.dispose()
        return Loaded(url, histories)

    return ctx.cached("history-db", make)
