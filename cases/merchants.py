"""Merchant logs: a supervision flag recorded once per merchant, hash-chained like a case's log.

Raising or clearing a merchant's flag appends one event to ``merchant_events`` and
moves the merchant's row in ``merchants`` (its head and whether it is flagged) in the
same transaction, whatever the number of its open cases: no case event is written
and no case's version moves. The chain is the cases' (workflow/chain.py): each hash is
sha256(previous hash || RFC 8785 JSON of the body), starting from 64 zeros; the body
(workflow/merchant.py) names the merchant where a case event names the case.

Commands read the merchant's standing with the case (:func:`cases.queries.load_case`),
the policies see it through :func:`workflow.merchant.seen_with`, and the decision's
event records it. ``audit verify`` walks these logs like the cases' (audit/verify.py),
checkpoints sign their heads (audit/checkpoints.py) and exports carry them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.tables import MERCHANT_EVENTS, MERCHANTS
from workflow.chain import canonical_bytes, link
from workflow.errors import ConflictError
from workflow.merchant import GENESIS, NO_LOG, MerchantEvent, MerchantStanding, merchant_event_from_doc
from workflow.model import SYSTEM, Actor, to_iso


def standing_of(session: Session, merchant_id: str) -> MerchantStanding:
    """The merchant's flag as its log stands now (no log: not flagged, seq 0)."""
    row = session.execute(
        select(MERCHANTS.c.seq, MERCHANTS.c.flagged).where(MERCHANTS.c.merchant_id == merchant_id)
    ).first()
    return MerchantStanding(row.seq, bool(row.flagged)) if row is not None else NO_LOG


def standings(session: Session, merchant_ids: Iterable[str]) -> dict[str, MerchantStanding]:
    """The standing of each of ``merchant_ids`` that has a log (one query)."""
    wanted = sorted(set(merchant_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(MERCHANTS.c.merchant_id, MERCHANTS.c.seq, MERCHANTS.c.flagged).where(MERCHANTS.c.merchant_id.in_(wanted))
    )
    return {r.merchant_id: MerchantStanding(r.seq, bool(r.flagged)) for r in rows}


def flagged_merchants(session: Session) -> set[str]:
    """Every merchant whose log says it is flagged now."""
    return set(session.execute(select(MERCHANTS.c.merchant_id).where(MERCHANTS.c.flagged.is_(True))).scalars())


def append_merchant_event(
    session: Session, merchant_id: str, type_: str, data: Mapping[str, Any], now: datetime, actor: Actor = SYSTEM
) -> MerchantEvent:
    """Append one event to the merchant's log and move its row, in the caller's transaction.

    The caller serialises writers of one merchant (supervision takes a lock per merchant
    on PostgreSQL; SQLite has one writer); a writer that still loses the race hits the
    (merchant_id, seq) key and gets a ConflictError, having written nothing.
    """
    head = session.execute(
        select(MERCHANTS.c.seq, MERCHANTS.c.head_hash).where(MERCHANTS.c.merchant_id == merchant_id)
    ).first()
    seq, prev_hash = (head.seq + 1, head.head_hash) if head is not None else (1, GENESIS)
    unsealed = MerchantEvent(merchant_id, seq, type_, to_iso(now), actor.id, actor.role, dict(data), prev_hash)
    body = canonical_bytes(unsealed.body())
    event = replace(unsealed, hash=link(prev_hash, body))
    try:
        with session.begin_nested():
            session.execute(
                insert(MERCHANT_EVENTS).values(
                    merchant_id=merchant_id,
                    seq=seq,
                    type=type_,
                    at=now,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    body=body.decode("utf-8"),
                    prev_hash=prev_hash,
                    hash=event.hash,
                )
            )
            row = {"seq": seq, "head_hash": event.hash, "flagged": type_ == "flag_raised", "updated_at": now}
            if head is None:
                session.execute(insert(MERCHANTS).values(merchant_id=merchant_id, **row))
            else:
                moved = session.execute(
                    update(MERCHANTS)
                    .where(MERCHANTS.c.merchant_id == merchant_id, MERCHANTS.c.seq == head.seq)
                    .values(**row)
                )
                if moved.rowcount != 1:  # type: ignore[attr-defined]
                    raise ConflictError(f"merchant {merchant_id}", seq - 1)
    except IntegrityError as exc:
        raise ConflictError(f"merchant {merchant_id}", seq - 1) from exc
    return event


def merchant_log(session: Session, merchant_id: str, *, upto: int | None = None) -> list[MerchantEvent]:
    """The merchant's events in order (up to seq ``upto``), as stored."""
    stmt = select(MERCHANT_EVENTS.c.body, MERCHANT_EVENTS.c.prev_hash, MERCHANT_EVENTS.c.hash).where(
        MERCHANT_EVENTS.c.merchant_id == merchant_id
    )
    if upto is not None:
        stmt = stmt.where(MERCHANT_EVENTS.c.seq <= upto)
    return [
        merchant_event_from_doc(json.loads(r.body), prev_hash=r.prev_hash, hash_=r.hash)
        for r in session.execute(stmt.order_by(MERCHANT_EVENTS.c.seq))
    ]
