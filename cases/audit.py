"""Replay a case to any point, and verify chains and projections, naming each damage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlmodel import Session

from cases.chain import GENESIS_HASH, event_from_body
from cases.codec import snapshot_from_json, snapshot_to_dict
from cases.models import EventRow
from cases.projection import CASES
from cases.registry import WorkflowRegistry
from workflow.errors import NotFoundError
from workflow.events import RecordedEvent
from workflow.evolve import ReplayError, evolve
from workflow.model import CaseSnapshot, from_iso

EVENTS = EventRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Damage:
    """One finding: the case, the first bad seq, the kind and a human explanation."""

    case_id: str
    seq: int
    kind: str  # changed, deleted, inserted, reordered, truncated, projection
    detail: str

    def __str__(self) -> str:
        return f"case {self.case_id} seq {self.seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Replay:
    snapshot: CaseSnapshot
    events: list[RecordedEvent]


def _rows(session: Session, case_id: str) -> list[tuple[int, int, str, str, str, str, str, str, datetime]]:
    result = session.execute(
        select(
            EVENTS.c.id,
            EVENTS.c.seq,
            EVENTS.c.body,
            EVENTS.c.prev_hash,
            EVENTS.c.hash,
            EVENTS.c.type,
            EVENTS.c.actor_id,
            EVENTS.c.actor_role,
            EVENTS.c.at,
        )
        .where(EVENTS.c.case_id == case_id)
        .order_by(EVENTS.c.seq)
    ).all()
    return [tuple(r) for r in result]


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


def verify_case(session: Session, registry: WorkflowRegistry, case_id: str) -> list[Damage]:
    """Walk one case's chain and replay it against its projection. Empty list = intact."""
    damages: list[Damage] = []
    rows = _rows(session, case_id)
    case_row = session.execute(
        select(CASES.c.version, CASES.c.head_hash, CASES.c.snapshot, CASES.c.state).where(CASES.c.id == case_id)
    ).first()
    if case_row is None:
        return [Damage(case_id, 0, "deleted", "the case row is missing")]
    prev_hash = GENESIS_HASH
    expected_seq = 1
    snapshot: CaseSnapshot | None = None
    for _id, seq, body, stored_prev, stored_hash, type_, actor_id, actor_role, at in rows:
        if seq != expected_seq:
            kind = "deleted" if seq > expected_seq else "inserted"
            return [*damages, Damage(case_id, expected_seq, kind, f"expected seq {expected_seq}, found {seq}")]
        digest = hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("utf-8")).hexdigest()
        try:
            doc = json.loads(body)
        except ValueError:
            return [*damages, Damage(case_id, seq, "changed", "the event body is not valid JSON")]
        if doc.get("seq") != seq or doc.get("case_id") != case_id:
            kind = "reordered" if doc.get("case_id") == case_id else "inserted"
            return [*damages, Damage(case_id, seq, kind, f"row seq {seq} holds the body of seq {doc.get('seq')}")]
        if stored_prev != prev_hash:
            return [
                *damages,
                Damage(
                    case_id,
                    seq,
                    "inserted" if digest == stored_hash else "changed",
                    "prev_hash does not link to the previous event",
                ),
            ]
        if digest != stored_hash:
            return [*damages, Damage(case_id, seq, "changed", "hash does not match the event body")]
        if (type_, actor_id, actor_role) != (doc["type"], doc["actor"]["id"], doc["actor"]["role"]) or (
            at != from_iso(doc["at"])
        ):
            return [*damages, Damage(case_id, seq, "changed", "indexed columns differ from the hashed body")]
        event = event_from_body(body, prev_hash=stored_prev, hash_=stored_hash)
        try:
            snapshot = evolve(registry.pinned(event.workflow_version, session), snapshot, event)
        except (ReplayError, KeyError, TypeError, NotFoundError) as exc:
            return [*damages, Damage(case_id, seq, "changed", f"does not replay: {exc}")]
        prev_hash = stored_hash
        expected_seq += 1
    last_seq = expected_seq - 1
    version, head_hash, stored_snapshot, state = case_row
    if last_seq < version:
        return [Damage(case_id, last_seq + 1, "truncated", f"log ends at seq {last_seq}, the case is at {version}")]
    if last_seq > version:
        return [Damage(case_id, version + 1, "inserted", f"log runs to seq {last_seq}, the case is at {version}")]
    if head_hash != prev_hash:
        return [Damage(case_id, last_seq, "changed", "the case's head hash differs from the log's last hash")]
    if (
        snapshot is None
        or snapshot_to_dict(snapshot) != snapshot_to_dict(snapshot_from_json(stored_snapshot))
        or (state != snapshot.state)
    ):
        return [Damage(case_id, last_seq, "projection", "replaying the log does not give the stored case")]
    return damages


def case_ids_page(session: Session, after_pk: int, limit: int = 500) -> list[tuple[int, str]]:
    rows = session.execute(
        select(CASES.c.pk, CASES.c.id).where(and_(CASES.c.pk > after_pk)).order_by(CASES.c.pk).limit(limit)
    ).all()
    return [(r.pk, r.id) for r in rows]
