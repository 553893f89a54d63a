"""Fast builders for audit tests: many cases written through the service's own command path.

Each case is filed with ``file_case`` and its further commands are decided and
folded by a ``UnitOfWork``, exactly as ``CaseService.execute`` does, but many
commands and cases share one transaction: the events, hashes and projections are
the real ones, without a commit per command.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from cases.commands import UnitOfWork, file_case
from cases.queries import load_snapshot
from cases.registry import WorkflowRegistry, record_versions
from cases.service import CaseService
from policies.base import AllowAllAuthorizer
from sla.clock import ManualClock
from store.db import Database
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import TEST_MEDIATORS, new_case, register_mediators
from workflow.decide import decide
from workflow.model import Actor, CaseSnapshot, Command

Data = dict[str, Any] | Callable[[CaseSnapshot], dict[str, Any]]
Step = tuple[str, Actor, Data]

OPENING: list[Step] = [
    ("assign", MEDIATOR, {}),
    ("respond", MERCHANT, {"statement": "The kettle was tested before shipping."}),
    ("propose_offer", MERCHANT, {"amount": 10000, "terms": "Partial refund, keep the kettle"}),
    (
        "reject_offer",
        CONSUMER,
        lambda s: {"offer_id": next(o.offer_id for o in s.offers if o.status == "open"), "reason": "too low"},
    ),
]
SPEAKERS = (CONSUMER, MERCHANT, MEDIATOR)
TEXTS = ("Any news?", "请尽快处理", "Photos attached earlier", "We will check with the courier", "Noted")


def make_fast_service(url: str, start: datetime = T0) -> CaseService:
    """A service without policies or clocks: audit tests need many events, not decisions."""
    service = CaseService(
        db=Database(url),
        registry=WorkflowRegistry.from_directory(),
        authorizer=AllowAllAuthorizer(),
        clock=ManualClock(start),
    )
    record_versions(service.db, service.registry, service.authorizer, service.clock.now())
    register_mediators(service, TEST_MEDIATORS)
    return service


def script(count: int, rng: random.Random) -> list[Step]:
    """``count`` commands (one event each): the opening moves, then conversation."""
    steps = OPENING[:count]
    for i in range(count - len(steps)):
        speaker = SPEAKERS[i % len(SPEAKERS)]
        steps.append(("comment", speaker, {"body": f"{rng.choice(TEXTS)} #{i}"}))
    return steps


def apply_steps(
    service: CaseService, session: Session, snapshot: CaseSnapshot, steps: Sequence[Step], now: datetime
) -> CaseSnapshot:
    definition = service.registry.pinned(snapshot.workflow_version, session)
    machine = service.registry.machine(snapshot.workflow_version, session)
    work = UnitOfWork(service, definition, snapshot, snapshot.id, now)
    for name, actor, data in steps:
        values = data(work.current) if callable(data) else data
        work.add(decide(machine, work.current, Command(name=name, actor=actor, at=now, data=values)), actor)
    return work.write(session)


@dataclass
class Built:
    case_ids: list[str]
    events: int


def build_cases(
    service: CaseService,
    *,
    count: int,
    events_per_case: Callable[[int], int],
    rng: random.Random,
    start: datetime = T0,
    batch: int = 100,
) -> Built:
    """File ``count`` cases, case i with ``events_per_case(i)`` events, a minute apart."""
    clock = service.clock
    assert isinstance(clock, ManualClock)
    definition = service.registry.active()
    ids: list[str] = []
    total = 0
    for first in range(0, count, batch):
        with service.db.write() as session:
            for i in range(first, min(count, first + batch)):
                now = start + timedelta(minutes=i)
                clock.set(now)
                filed = file_case(
                    session, service, actor=CONSUMER, new_case=new_case(order_ref=f"ORD-{i}"), definition=definition
                )
                wanted = max(1, events_per_case(i))
                apply_steps(service, session, filed, script(wanted - 1, rng), now)
                ids.append(filed.id)
                total += wanted
    return Built(ids, total)


def extend_cases(
    service: CaseService, case_ids: Sequence[str], *, comments: int, now: datetime, rng: random.Random
) -> int:
    """Append ``comments`` comments to each case; returns the number of events written."""
    with service.db.write() as session:
        for case_id in case_ids:
            snapshot = load_snapshot(session, case_id)
            steps: list[Step] = [
                ("comment", SPEAKERS[i % 3], {"body": f"{rng.choice(TEXTS)} later #{i}"}) for i in range(comments)
            ]
            apply_steps(service, session, snapshot, steps, now)
    return comments * len(case_ids)
