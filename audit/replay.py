"""Replay a case to any point of its history: its events folded through the workflow versions
they were recorded under."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from cases.registry import WorkflowRegistry
from store.db import Database
from store.tables import EVENTS
from workflow.chain import event_from_body
from workflow.errors import NotFoundError
from workflow.events import RecordedEvent
from workflow.evolve import evolve
from workflow.model import CaseSnapshot


@dataclass(frozen=True)
class Replay:
    snapshot: CaseSnapshot
    events: list[RecordedEvent]


def replay(
    session: Session,
    registry: WorkflowRegistry,
    case_id: str,
    *,
    seq: int | None = None,
    at: datetime | None = None,
) -> Replay:
    """The case as it stood after event ``seq`` (or at instant ``at``), through its pinned version."""
    stmt = select(EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash).where(EVENTS.c.case_id == case_id)
    if seq is not None:
        stmt = stmt.where(EVENTS.c.seq <= seq)
    if at is not None:
        stmt = stmt.where(EVENTS.c.at <= at)
    rows = session.execute(stmt.order_by(EVENTS.c.seq)).all()
    if not rows:
        raise NotFoundError("case history", case_id if seq is None and at is None else f"{case_id} at that point")
    events = [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows]
    snapshot: CaseSnapshot | None = None
    for event in events:
        definition = registry.pinned(event.workflow_version, session)
        snapshot = evolve(definition, snapshot, event)
    assert snapshot is not None
    return Replay(snapshot=snapshot, events=events)


def read_replay(
    db: Database, registry: WorkflowRegistry, case_id: str, *, seq: int | None = None, at: datetime | None = None
) -> Replay:
    """:func:`replay` in a read transaction of its own."""
    with db.read() as session:
        return replay(session, registry, case_id, seq=seq, at=at)


def stored_chain(db: Database, case_id: str) -> list[dict[str, Any]]:
    """A case's log as stored, for an outsider's own check (the console's in-browser
    verification): each event's seq, its stored body text exactly as hashed, prev_hash and hash."""
    with db.read() as session:
        rows = session.execute(
            select(EVENTS.c.seq, EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
            .where(EVENTS.c.case_id == case_id)
            .order_by(EVENTS.c.seq)
        ).all()
    if not rows:
        raise NotFoundError("case history", case_id)
    return [{"seq": r.seq, "body": r.body, "prev_hash": r.prev_hash, "hash": r.hash} for r in rows]
