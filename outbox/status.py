"""The outbox's state for operators: depth, oldest undelivered, attempts and failures per
endpoint (``disputes outbox status``, ``/readyz``, Prometheus), and failed deliveries listed
and re-sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update

from cases import idempotency
from outbox.endpoints import get as get_endpoint
from store.db import Database
from store.tables import DELIVERIES, DELIVERY_ATTEMPTS, OUTBOX, WEBHOOK_ENDPOINTS
from workflow.errors import NotFoundError
from workflow.model import Actor


@dataclass(frozen=True, slots=True)
class EndpointCounts:
    endpoint_id: str
    enabled: bool
    attempts: int
    failures: int
    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    unfanned: int  # outbox rows not yet fanned out
    pending: dict[str, int]  # pending deliveries by channel
    failed: int
    oldest_undelivered_seconds: float
    endpoints: list[EndpointCounts]

    @property
    def depth(self) -> int:
        return self.unfanned + sum(self.pending.values())


def outbox_depth(db: Database) -> int:
    """Outbox rows not fanned out plus deliveries not yet delivered (cheap: two index counts)."""
    with db.read() as session:
        unfanned = session.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.fanned_out.is_(False))
        ).scalar_one()
        pending = session.execute(
            select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.status == "pending")
        ).scalar_one()
    return int(unfanned) + int(pending)


def outbox_status(db: Database, now: datetime, *, per_endpoint: bool = True) -> OutboxStatus:
    d = DELIVERIES
    with db.read() as session:
        unfanned, oldest_row = session.execute(
            select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.fanned_out.is_(False))
        ).one()
        pending = {
            r.channel: int(r.n)
            for r in session.execute(
                select(d.c.channel, func.count().label("n")).where(d.c.status == "pending").group_by(d.c.channel)
            ).all()
        }
        oldest_delivery = session.execute(
            select(func.min(d.c.created_at)).where(d.c.status == "pending", d.c.channel != "reminder")
        ).scalar()
        failed = session.execute(select(func.count()).select_from(d).where(d.c.status == "failed")).scalar_one()
        endpoints: list[EndpointCounts] = []
        if per_endpoint:
            a = DELIVERY_ATTEMPTS
            tried = {
                r.target: (int(r.attempts), int(r.failures or 0))
                for r in session.execute(
                    select(
                        d.c.target,
                        func.count().label("attempts"),
                        func.sum(
                            case(
                                (or_(a.c.status_code.is_(None), a.c.status_code < 200, a.c.status_code >= 300), 1),
                                else_=0,
                            )
                        ).label("failures"),
                    )
                    .join(a, a.c.delivery_pk == d.c.pk)
                    .where(d.c.channel == "webhook")
                    .group_by(d.c.target)
                ).all()
            }
            waiting = {
                (r.target, r.status): int(r.n)
                for r in session.execute(
                    select(d.c.target, d.c.status, func.count().label("n"))
                    .where(d.c.channel == "webhook", d.c.status.in_(("pending", "failed")))
                    .group_by(d.c.target, d.c.status)
                ).all()
            }
            for e in session.execute(
                select(WEBHOOK_ENDPOINTS.c.id, WEBHOOK_ENDPOINTS.c.enabled).order_by(WEBHOOK_ENDPOINTS.c.id)
            ).all():
                attempts, failures = tried.get(e.id, (0, 0))
                endpoints.append(
                    EndpointCounts(
                        e.id,
                        e.enabled,
                        attempts,
                        failures,
                        waiting.get((e.id, "pending"), 0),
                        waiting.get((e.id, "failed"), 0),
                    )
                )
    oldest = min((t for t in (oldest_row, oldest_delivery) if t is not None), default=None)
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return OutboxStatus(int(unfanned), pending, int(failed), age, endpoints)


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    id: int
    endpoint_id: str
    case_id: str
    seq: int
    message_id: str
    attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime


def list_failed(db: Database, actor: Actor, endpoint_id: str, *, limit: int = 100) -> list[FailedDelivery]:
    get_endpoint(db, actor, endpoint_id)  # the caller may see the endpoint, or 404
    d = DELIVERIES
    with db.read() as session:
        rows = session.execute(
            select(d)
            .where(d.c.channel == "webhook", d.c.target == endpoint_id, d.c.status == "failed")
            .order_by(d.c.pk)
            .limit(max(1, min(limit, 1000)))
        ).all()
    return [
        FailedDelivery(
            r.pk, r.target, r.case_id, r.seq, r.message_id, r.attempts, r.last_status, r.last_error, r.created_at
        )
        for r in rows
    ]


def resend(db: Database, actor: Actor, endpoint_id: str, now: datetime, ids: list[int] | None = None) -> int:
    """Queue the endpoint's failed deliveries (``ids``: only those) again, from a fresh schedule,
    and enable the endpoint; returns how many were queued."""
    get_endpoint(db, actor, endpoint_id)
    d = DELIVERIES
    condition: Any = and_(d.c.channel == "webhook", d.c.target == endpoint_id, d.c.status == "failed")
    if ids is not None:
        condition = and_(condition, d.c.pk.in_(ids))

    def work(session: Any) -> int:
        if ids is not None:
            found = session.execute(select(func.count()).select_from(d).where(condition)).scalar_one()
            if found != len(set(ids)):
                raise NotFoundError("failed delivery", ",".join(str(i) for i in ids))
        count = session.execute(
            update(d).where(condition).values(status="pending", attempts=0, due_at=now, lease_until=None)
        ).rowcount
        session.execute(
            update(WEBHOOK_ENDPOINTS)
            .where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)
            .values(enabled=True, disabled_reason="", slow_until=None)
        )
        return int(count)

    return int(db.run_write(lambda s: idempotency.command(s, now, lambda: work(s))))
