"""The record of audit reads: who verified, exported, proved or replayed what, and when."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from store.db import Database
from store.tables import AUDIT_READS
from workflow.model import Actor


def record_read(db: Database, *, actor: Actor, what: str, now: datetime, **detail: Any) -> None:
    """Append one audit read in its own transaction (before the read is served)."""
    values = {
        "at": now,
        "actor_id": actor.id,
        "actor_role": actor.role,
        "what": what,
        "detail": json.dumps({k: v for k, v in detail.items() if v is not None}, default=str, sort_keys=True),
    }
    db.run_write(lambda session: session.execute(insert(AUDIT_READS).values(**values)))


def recent_reads(db: Database, *, limit: int = 100) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = session.execute(select(AUDIT_READS).order_by(AUDIT_READS.c.id.desc()).limit(limit)).all()
    return [
        {
            "at": r.at.isoformat(),
            "actor": f"{r.actor_role}:{r.actor_id}",
            "what": r.what,
            "detail": json.loads(r.detail),
        }
        for r in rows
    ]
