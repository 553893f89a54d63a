"""Proof that erasures happened: every erased ref has no value row and no live key.

For each ``personal_data_erased`` event in the log: none of the refs it lists has a row in
``personal_values``, and the case's data key is destroyed (its ``case_keys`` row is a tombstone,
or holds a newer key made after the erasure for texts written since). For each tombstone: no
value row of the case is older than it. For each erased subject: no user id is kept.
``disputes audit verify --erasure`` prints what this finds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from store.db import Database
from store.tables import CASE_KEYS, EVENTS, PERSONAL_VALUES, SUBJECTS
from workflow.model import from_iso


@dataclass(frozen=True, slots=True)
class ErasureProblem:
    case_id: str
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: erasure: {self.detail}"


def count_erasures(db: Database) -> int:
    """How many ``personal_data_erased`` events the logs hold."""
    with db.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(EVENTS).where(EVENTS.c.type == "personal_data_erased")
            ).scalar_one()
        )


def verify_erasures(db: Database, *, page: int = 500) -> list[ErasureProblem]:
    """Everything that contradicts an erasure recorded in the log (empty: every erasure holds)."""
    return list(_problems(db, page))


def _problems(db: Database, page: int) -> Iterator[ErasureProblem]:
    last = 0
    while True:
        with db.read() as session:
            rows = session.execute(
                select(EVENTS.c.id, EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.body)
                .where(and_(EVENTS.c.type == "personal_data_erased", EVENTS.c.id > last))
                .order_by(EVENTS.c.id)
                .limit(page)
            ).all()
            for row in rows:
                data = json.loads(row.body)["data"]
                refs = list(data.get("refs", []))
                destroyed = from_iso(data["key"]["destroyed_at"])
                if refs:
                    kept = session.execute(
                        select(func.count()).select_from(PERSONAL_VALUES).where(PERSONAL_VALUES.c.ref.in_(refs))
                    ).scalar_one()
                    if kept:
                        yield ErasureProblem(row.case_id, row.seq, f"{kept} erased value rows are still stored")
                key = session.execute(
                    select(CASE_KEYS.c.wrapped, CASE_KEYS.c.created_at, CASE_KEYS.c.erased_at).where(
                        CASE_KEYS.c.case_id == row.case_id
                    )
                ).first()
                if key is None:
                    yield ErasureProblem(row.case_id, row.seq, "the case's key record is gone (no tombstone)")
                elif key.erased_at is None:
                    yield ErasureProblem(row.case_id, row.seq, "the case's key record has no erasure time")
                elif key.wrapped is not None and key.created_at <= destroyed:
                    yield ErasureProblem(row.case_id, row.seq, "the case's data key erased then is still live")
        if len(rows) < page:
            break
        last = rows[-1].id
    with db.read() as session:
        stale = session.execute(
            select(PERSONAL_VALUES.c.case_id, func.count())
            .join(CASE_KEYS, CASE_KEYS.c.case_id == PERSONAL_VALUES.c.case_id)
            .where(CASE_KEYS.c.wrapped.is_(None))
            .group_by(PERSONAL_VALUES.c.case_id)
        ).all()
        for case_id, count in stale:
            yield ErasureProblem(case_id, None, f"{count} value rows remain under a destroyed key")
        kept_ids = session.execute(
            select(SUBJECTS.c.subject).where(and_(SUBJECTS.c.erased_at.is_not(None), SUBJECTS.c.user_id.is_not(None)))
        ).scalars()
        for subject in kept_ids:
            yield ErasureProblem(subject, None, "an erased subject still maps to a user id")
