"""Replay equals the case as the service saw it at every seq and every instant, clocks included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from audit.replay import replay
from audit.verify import verify_database
from cases.service import CaseService
from cases.sweep import fire_due_timers
from policies.base import AllowAllAuthorizer
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.builders import make_service, new_case
from workflow.evolve import evolve
from workflow.model import Actor, CaseSnapshot


@pytest.fixture
def clocked(db_url: str) -> Iterator[CaseService]:
    svc = make_service(
        db_url, authorizer=AllowAllAuthorizer(), sla=SlaPlanner(default_calendars()), clock=ManualClock(T0)
    )
    yield svc
    svc.db.dispose()


def test_replay_equals_the_service_at_every_seq_and_instant(clocked: CaseService) -> None:
    clock = clocked.clock
    assert isinstance(clock, ManualClock)
    seen: dict[str, list[tuple[datetime, CaseSnapshot]]] = {}

    def record(snapshot: CaseSnapshot) -> None:
        seen.setdefault(snapshot.id, []).append((clock.now(), snapshot))

    settled = clocked.file(actor=CONSUMER, new_case=new_case())
    escalated = clocked.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-2", claim_amount=5000))
    record(settled)
    record(escalated)
    steps: list[tuple[str, Actor, str, dict[str, Any] | None]] = [
        (escalated.id, MEDIATOR, "assign", {}),
        (settled.id, MEDIATOR, "assign", {}),
        (settled.id, MERCHANT, "respond", {"statement": "Refund offered"}),
        (settled.id, MEDIATOR, "start_mediation", {}),
        (settled.id, MEDIATOR, "request_info", {"party": "consumer", "question": "Photos, please"}),
        (settled.id, MERCHANT, "propose_offer", {"amount": 20000, "terms": "80% refund"}),
        (settled.id, CONSUMER, "accept_offer", None),
        (settled.id, MEDIATOR, "settle", {}),
        (escalated.id, CONSUMER, "comment", {"body": "还没有回复"}),
        (escalated.id, MEDIATOR, "escalate", {}),
        (escalated.id, SENIOR, "rule", {"decision": "partial", "awarded_amount": 2500, "citations": ["crpl-24"]}),
    ]
    for case_id, actor, name, data in steps:
        clock.advance(timedelta(minutes=30))
        fired = fire_due_timers(clocked, clock.now())
        if fired:
            for other in seen:
                record(clocked.get(actor=AUDITOR, case_id=other))
        if data is None:  # accept the open offer
            current = clocked.get(actor=AUDITOR, case_id=case_id)
            data = {"offer_id": next(o.offer_id for o in current.offers if o.status == "open")}
        record(clocked.execute(actor=actor, case_id=case_id, name=name, data=data))
    clock.advance(timedelta(days=10))  # fulfilment and ruling clocks run out
    fire_due_timers(clocked, clock.now())
    for case_id in seen:
        record(clocked.get(actor=AUDITOR, case_id=case_id))

    with clocked.db.read() as session:
        for case_id, history in seen.items():
            final = replay(session, clocked.registry, case_id)
            # Replay carries markers; the service's one reveal renders them as it answered.
            assert clocked.reveal(final.snapshot, session=session) == history[-1][1]
            events = final.events
            assert len(events) > len(history)  # clock events sit between the commands
            folded: CaseSnapshot | None = None
            for event in events:
                folded = evolve(clocked.registry.pinned(event.workflow_version), folded, event)
                assert replay(session, clocked.registry, case_id, seq=event.seq).snapshot == folded, event.seq
            for moment, snapshot in history:
                by_seq = replay(session, clocked.registry, case_id, seq=snapshot.version).snapshot
                by_time = replay(session, clocked.registry, case_id, at=moment).snapshot
                assert clocked.reveal(by_seq, session=session) == snapshot
                assert clocked.reveal(by_time, session=session) == snapshot
    assert [history[-1][1].state for history in seen.values()] == ["closed", "closed"]  # by the fulfilment clock
    assert verify_database(clocked.db, clocked.registry).intact
