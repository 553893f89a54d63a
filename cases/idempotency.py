"""Idempotency keys: claim a key for one request, store its response, replay it later.

Keys are unique per (scope, key) across every worker because the row's primary
key is; the first request to insert it owns it, the others wait for its response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cases.db import Database
from cases.models import IdempotencyRow

KEYS = IdempotencyRow.__table__  # type: ignore[attr-defined]
KEEP_FOR = timedelta(hours=24)
# An in-flight claim older than this is presumed dead (its worker crashed) and may be retaken.
STALE_CLAIM = timedelta(seconds=60)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: str
    body: bytes


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a key: ``owned``, or someone else's ``in_flight``/``done``."""

    outcome: str  # owned, in_flight, done, mismatch
    response: StoredResponse | None = None


def claim(db: Database, *, scope: str, key: str, fingerprint: str, now: datetime) -> Claim:
    def work(session: Session) -> Claim:
        session.execute(delete(KEYS).where(KEYS.c.expires_at < now))
        row = session.execute(select(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key)).first()
        if row is None:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(KEYS).values(
                            scope=scope,
                            key=key,
                            fingerprint=fingerprint,
                            status="in_flight",
                            created_at=now,
                            expires_at=now + KEEP_FOR,
                        )
                    )
            except IntegrityError:
                return Claim("in_flight")
            return Claim("owned")
        if row.fingerprint != fingerprint:
            return Claim("mismatch")
        if row.status == "done":
            return Claim(
                "done", StoredResponse(row.response_status, row.response_headers or "{}", row.response_body or b"")
            )
        if row.created_at < now - STALE_CLAIM:
            session.execute(update(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key).values(created_at=now))
            return Claim("owned")
        return Claim("in_flight")

    return db.run_write(work)


def complete(db: Database, *, scope: str, key: str, response: StoredResponse) -> None:
    def work(session: Session) -> None:
        session.execute(
            update(KEYS)
            .where(KEYS.c.scope == scope, KEYS.c.key == key)
            .values(
                status="done",
                response_status=response.status,
                response_headers=response.headers,
                response_body=response.body,
            )
        )

    db.run_write(work)


def release(db: Database, *, scope: str, key: str) -> None:
    """Forget a claim whose request failed on our side, so a retry can run it."""
    db.run_write(lambda session: session.execute(delete(KEYS).where(KEYS.c.scope == scope, KEYS.c.key == key)))
