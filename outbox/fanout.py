"""Fanning outbox rows out: each row written by a command (outbox/hook.py) becomes the inbox
notices it planned, their e-mails, its reminders for later and one webhook delivery per
endpoint that wants each of its events; then the row is marked done, all in one transaction.

One fan-out runs at a time (a transaction-scoped advisory lock on PostgreSQL; SQLite has one
writer), and it takes rows in the order they were written, so each (endpoint, case) line of
deliveries is created in the events' order. Every insert is idempotent (unique keys), so a
row fanned out twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from notify import webhook
from notify.plan import Notice
from store.db import Database
from store.tables import CASES, CONTACTS, DELIVERIES, EVENTS, NOTICES, OUTBOX, WEBHOOK_ENDPOINTS

FANOUT_LOCK = 0x2172_0021  # the advisory lock's key: one fan-out at a time


def fan_out(db: Database, now: datetime, *, batch: int = 500) -> int:
    """Fan out every pending outbox row; return how many rows were done."""
    done = 0
    while True:
        count = db.run_write(lambda s: fan_out_batch(s, now, batch))
        done += count
        if count < batch:
            return done


def _insert(session: Session) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def fan_out_batch(session: Session, now: datetime, batch: int) -> int:
    if session.get_bind().dialect.name == "postgresql":
        if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FANOUT_LOCK}).scalar():
            return 0
    rows = session.execute(
        select(OUTBOX.c.pk, OUTBOX.c.case_id, OUTBOX.c.first_seq, OUTBOX.c.last_seq, OUTBOX.c.planned)
        .where(OUTBOX.c.fanned_out.is_(False))
        .order_by(OUTBOX.c.pk)
        .limit(batch)
    ).all()
    if not rows:
        return 0
    endpoints = session.execute(
        select(WEBHOOK_ENDPOINTS.c.id, WEBHOOK_ENDPOINTS.c.merchant_id, WEBHOOK_ENDPOINTS.c.event_types)
    ).all()
    deliveries: list[dict[str, Any]] = []
    if endpoints:
        pks = [r.pk for r in rows]
        events = session.execute(
            select(OUTBOX.c.pk, EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.type, EVENTS.c.body, CASES.c.merchant_id)
            .join(
                EVENTS,
                and_(
                    EVENTS.c.case_id == OUTBOX.c.case_id,
                    EVENTS.c.seq >= OUTBOX.c.first_seq,
                    EVENTS.c.seq <= OUTBOX.c.last_seq,
                ),
            )
            .join(CASES, CASES.c.id == OUTBOX.c.case_id)
            .where(OUTBOX.c.pk.in_(pks))
            .order_by(OUTBOX.c.pk, EVENTS.c.seq)
        ).all()
        wanted = [(e.id, e.merchant_id, set(e.event_types.split(","))) for e in endpoints]
        for event in events:
            body: str | None = None
            for endpoint_id, merchant_id, types in wanted:
                if merchant_id is not None and merchant_id != event.merchant_id:
                    continue
                if "*" not in types and event.type not in types and webhook.event_type(event.type) not in types:
                    continue
                if body is None:
                    body = webhook.body(event.case_id, event.merchant_id, json.loads(event.body))
                deliveries.append(
                    _delivery(
                        "webhook",
                        endpoint_id,
                        event.case_id,
                        event.seq,
                        webhook.message_id(event.case_id, event.seq),
                        body,
                        now,
                    )
                )
    notices: list[Notice] = []
    for row in rows:
        planned = json.loads(row.planned)
        notices.extend(Notice(**n) for n in planned.get("notices", ()))
        for r in planned.get("reminders", ()):
            key = f"{r['case_id']}:{r['timer']}"
            deliveries.append(
                _delivery(
                    "reminder",
                    key,
                    r["case_id"],
                    row.last_seq,
                    _digest("rem", key, r["due_at"]),
                    json.dumps(r, separators=(",", ":")),
                    datetime.fromisoformat(r["at"].replace("Z", "+00:00")),
                )
            )
    insert_deliveries(session, deliveries)
    deliver_notices(session, notices, now)
    session.execute(update(OUTBOX).where(OUTBOX.c.pk.in_([r.pk for r in rows])).values(fanned_out=True))
    return len(rows)


def _digest(*parts: str) -> str:
    return f"{parts[0]}_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def _delivery(
    channel: str, target: str, case_id: str, seq: int, message_id: str, payload: str, due_at: datetime
) -> dict[str, Any]:
    return {
        "channel": channel,
        "target": target,
        "case_id": case_id,
        "seq": seq,
        "message_id": message_id,
        "payload": payload,
        "status": "pending",
        "due_at": due_at,
        "lease_until": None,
        "attempts": 0,
        "last_status": None,
        "last_error": "",
        "created_at": due_at,
        "delivered_at": None,
    }


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = _insert(session)
    for start in range(0, len(rows), 500):
        session.execute(
            insert(DELIVERIES).on_conflict_do_nothing(index_elements=["channel", "target", "message_id"]),
            list(rows[start : start + 500]),
        )


def deliver_notices(session: Session, notices: Iterable[Notice], now: datetime) -> int:
    """Put notices in their recipients' inboxes and queue the e-mails their contacts ask for
    (not for those who take a daily digest: the digest sends them). Returns how many are new."""
    notices = list(notices)
    if not notices:
        return 0
    insert = _insert(session)
    session.execute(
        insert(NOTICES).on_conflict_do_nothing(index_elements=["recipient", "kind", "case_id", "seq"]),
        [
            {
                "recipient": n.recipient,
                "kind": n.kind,
                "case_id": n.case_id,
                "seq": n.seq,
                "data": json.dumps(n.data, separators=(",", ":"), ensure_ascii=False),
                "created_at": now,
                "read_at": None,
            }
            for n in notices
        ],
    )
    keys = sorted({n.recipient for n in notices})
    contacts = {
        c.recipient: c
        for c in session.execute(
            select(CONTACTS.c.recipient, CONTACTS.c.email, CONTACTS.c.email_kinds, CONTACTS.c.digest).where(
                CONTACTS.c.recipient.in_(keys)
            )
        ).all()
    }
    mails = []
    for n in notices:
        contact = contacts.get(n.recipient)
        if contact is None or not contact.email or contact.digest:
            continue
        kinds = set(contact.email_kinds.split(","))
        if "*" not in kinds and n.kind not in kinds:
            continue
        payload = {"recipient": n.recipient, "kind": n.kind, "case_id": n.case_id, "seq": n.seq, "data": n.data}
        mails.append(
            _delivery(
                "email",
                n.recipient,
                n.case_id,
                n.seq,
                _digest("mail", n.recipient, n.kind, n.case_id, str(n.seq)),
                json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                now,
            )
        )
    insert_deliveries(session, mails)
    return len(notices)
