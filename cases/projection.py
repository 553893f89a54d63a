"""Write a folded snapshot to the query tables: the case row and its child rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, text, update
from sqlmodel import Session

from store.codec import snapshot_to_json
from store.fastpath import Prepared, inserting
from store.tables import CASES, EVIDENCE, MESSAGES, OFFERS, TIMERS
from workflow.errors import ConflictError
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, TimerState, from_iso


def case_values(s: CaseSnapshot) -> dict[str, Any]:
    """Every column of the case row but its numbered key."""
    return {**case_columns(s), "snapshot": snapshot_to_json(s)}


def case_columns(s: CaseSnapshot) -> dict[str, Any]:
    """The case row's columns that queries read instead of the snapshot, as the snapshot
    gives them (``audit verify`` compares the stored ones with a replay's)."""
    return {
        "id": s.id,
        "workflow_name": s.workflow_name,
        "workflow_version": s.workflow_version,
        "policy_version": s.policy_version,
        "state": s.state,
        "version": s.version,
        "consumer_id": s.consumer_id,
        "merchant_id": s.merchant_id,
        "mediator_id": s.mediator_id,
        "category": s.category,
        "priority": s.priority,
        "claim_amount": s.claim_amount,
        "currency": s.currency,
        "awaiting": ",".join(s.awaiting),
        "flags": ",".join(s.flags),
        "outcome": s.outcome,
        "awarded_amount": s.awarded_amount,
        "created_at": from_iso(s.created_at),
        "updated_at": from_iso(s.updated_at),
        "closed_at": from_iso(s.closed_at) if s.closed_at else None,
        "head_hash": s.head_hash,
        "breaching": s.breaching,
    }


# The hot path's statements are compiled once per dialect and run on the driver's
# cursor (store/fastpath.py, bench B1).
# case_values gives every column but the surrogate key.
_INSERT_CASE = inserting(CASES)
_UPDATE_CASE = Prepared(
    update(CASES).where(and_(CASES.c.id == bindparam("where_id"), CASES.c.version == bindparam("where_version"))),
    [c.name for c in CASES.c if c.name not in ("pk", "id")],
)


def insert_case(session: Session, snapshot: CaseSnapshot) -> None:
    _INSERT_CASE.execute(session.connection(), case_values(snapshot))
    write_children(session, None, snapshot)


def update_case(session: Session, before: CaseSnapshot, after: CaseSnapshot) -> Any:
    """Compare-and-set on the version: the loser of a race updates nothing. Returns the
    UPDATE's cursor for :func:`require_updated`, which runs once its result is in (after
    a pipelined batch, see store.fastpath.pipelined)."""
    values = case_values(after)
    del values["id"]  # the key is not rewritten
    values["where_id"], values["where_version"] = before.id, before.version
    result = _UPDATE_CASE.execute(session.connection(), values)
    write_children(session, before, after)
    return result


def require_updated(session: Session, before: CaseSnapshot, result: Any) -> None:
    """A Conflict for the writer whose compare-and-set changed no row."""
    if result.rowcount != 1:
        current = session.execute(CASES.select().with_only_columns(CASES.c.version).where(CASES.c.id == before.id))
        raise ConflictError(before.id, int(current.scalar_one()), before.version)


def timer_values(case_id: str, t: TimerState) -> dict[str, Any]:
    running = t.status == "running"
    warn_at = from_iso(t.warn_at) if t.warn_at else None
    due_at = from_iso(t.due_at)
    next_fire = None
    if running:
        next_fire = warn_at if (warn_at is not None and not t.warned and warn_at < due_at) else due_at
    return {
        "case_id": case_id,
        "name": t.name,
        "status": t.status,
        "started_at": from_iso(t.started_at),
        "due_at": due_at,
        "warn_at": warn_at,
        "warned": t.warned,
        "paused_at": from_iso(t.paused_at) if t.paused_at else None,
        "paused_seconds": t.paused_seconds,
        "next_fire_at": next_fire,
    }


def write_children(session: Session, before: CaseSnapshot | None, after: CaseSnapshot) -> None:
    """Upsert the offers, evidence and timers that the new events changed."""
    _upsert(
        session,
        OFFERS,
        ("case_id", "offer_id"),
        [
            {
                "case_id": after.id,
                "offer_id": o.offer_id,
                "amount": o.amount,
                "currency": o.currency,
                "terms": o.terms,
                "proposed_by": o.proposed_by,
                "proposer_id": o.proposer_id,
                "status": o.status,
                "decided_by": o.decided_by,
                "created_at": from_iso(o.created_at),
                "decided_at": from_iso(o.decided_at) if o.decided_at else None,
            }
            for o in _changed(before.offers if before else (), after.offers)
        ],
    )
    _upsert(
        session,
        EVIDENCE,
        ("case_id", "evidence_id"),
        [
            {
                "case_id": after.id,
                "evidence_id": e.evidence_id,
                "party": e.party,
                "added_by": e.added_by,
                "filename": e.filename,
                "media_type": e.media_type,
                "size": e.size,
                "sha256": e.sha256,
                "description": e.description,
                "status": e.status,
                "added_at": from_iso(e.added_at),
            }
            for e in _changed(before.evidence if before else (), after.evidence)
        ],
    )
    _upsert(
        session,
        TIMERS,
        ("case_id", "name"),
        [timer_values(after.id, t) for t in _changed(before.timers if before else (), after.timers)],
    )


def insert_messages(session: Session, events: Iterable[RecordedEvent]) -> None:
    rows = [
        {
            "case_id": e.case_id,
            "message_id": e.data["message_id"],
            "seq": e.seq,
            "party": e.data["party"],
            "author_id": e.actor_id,
            "body": e.data["body"],
            "internal": e.data["internal"],
            "at": from_iso(e.at),
        }
        for e in events
        if e.type == "message"
    ]
    if rows:
        _INSERT_MESSAGES.execute_many(session.connection(), rows)


def _changed(old: Sequence[Any], new: Sequence[Any]) -> list[Any]:
    """The items of ``new`` that are not in ``old``.

    By identity: the fold keeps every item an event did not touch as the same object
    (and the same tuple when none was touched), so a command on a case with thousands
    of offers compares pointers instead of hashing every offer's fields. Both
    snapshots are alive here, so no id can be reused. Were ``new`` built apart from
    ``old``, every item would count as changed: more upserts, the same rows.
    """
    if old is new:
        return []
    previous = {id(item) for item in old}
    return [item for item in new if id(item) not in previous]


_INSERT_MESSAGES = inserting(MESSAGES)
_UPSERTS: dict[tuple[str, tuple[str, ...]], Prepared] = {}


def _upsert(session: Session, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert or update child rows by their natural key.

    Written as text because SQLAlchemy cannot cache-key its ``on_conflict_do_update``
    construct and would compile it on every command; SQLite and PostgreSQL share this
    syntax. The bind parameters carry the columns' types, so values convert as in Core.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    stmt = _UPSERTS.get((table.name, columns))
    if stmt is None:  # built once per table and column set (a benign race builds it twice)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        stmt = Prepared(
            text(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))
        )
        _UPSERTS[(table.name, columns)] = stmt
    stmt.execute_many(session.connection(), rows)
