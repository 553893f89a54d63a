"""Merchant supervision: the thresholds applied to the last period raise or clear
``merchant_flags`` records; a flag raised or cleared is recorded once, as ``flag_raised`` /
``flag_cleared`` on the merchant's own log (cases/merchants.py), which the policies read
through the merchant's standing. No case is written: however many open cases the merchant
has, their versions stay where they are. The ticker runs it (runtime/ticker.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlmodel import Session

from cases.merchants import append_merchant_event, flagged_merchants, standing_of
from intake.supervision import FlagReason, MerchantFigures, SupervisionRules, flag_reasons
from reports.facts import active_flags, as_iso, case_facts, filed_between, histories, merchant_figures
from store.db import Database
from store.tables import MERCHANT_FLAGS
from workflow.errors import ConflictError
from workflow.merchant import MERCHANT_FLAGGED
from workflow.model import to_iso

log = logging.getLogger("disputes.reports")


@dataclass
class SupervisionOutcome:
    since: datetime
    until: datetime
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    # Events appended to merchants' logs: one per flag raised or cleared, never one per case.
    merchant_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": as_iso(self.since),
            "until": as_iso(self.until),
            "raised": self.raised,
            "cleared": self.cleared,
            "kept": self.kept,
            "merchant_events": self.merchant_events,
        }


def evaluate_merchants(db: Database, rules: SupervisionRules, now: datetime) -> SupervisionOutcome:
    """Apply the supervision thresholds to the period ending now: flag merchants that reach one,
    clear the flags of those that no longer do, each on the merchant's own log."""
    since = now - rules.period
    outcome = SupervisionOutcome(since, now)
    with db.read() as session:
        facts = [case_facts(events) for events in histories(session, filed_between(session, since, now))]
        # A merchant counts as flagged if its log or its flag record says so: the two are
        # written together, and whichever disagrees is brought back in line below.
        standing = set(active_flags(session)) | flagged_merchants(session)
    figures = merchant_figures(facts, response_clock=rules.response_clock)
    reasons = {m: r for m, f in figures.items() if (r := flag_reasons(f, rules))}
    for merchant_id in sorted(set(reasons) | standing):
        found = reasons.get(merchant_id, ())
        for attempt in range(3):
            try:
                outcome.merchant_events += db.run_write(
                    partial(
                        _apply_flag,
                        dialect=db.dialect,
                        merchant_id=merchant_id,
                        reasons=found,
                        figures=figures.get(merchant_id),
                        rules=rules,
                        since=since,
                        now=now,
                    )
                )
                break
            except ConflictError:
                if attempt == 2:
                    log.warning("merchant %s: its log kept changing; the next evaluation retries", merchant_id)
        if found and merchant_id not in standing:
            outcome.raised.append(merchant_id)
        elif found:
            outcome.kept.append(merchant_id)
        else:
            outcome.cleared.append(merchant_id)
    return outcome


def _apply_flag(
    session: Session,
    dialect: str,
    merchant_id: str,
    reasons: Sequence[FlagReason],
    figures: MerchantFigures | None,
    rules: SupervisionRules,
    since: datetime,
    now: datetime,
) -> int:
    """Bring the merchant's flag record and log in line with ``reasons`` (empty: not flagged);
    return the number of events appended to its log (0 or 1)."""
    if dialect == "postgresql":
        # Two evaluations at once (several workers' tickers) must not both raise a flag: the second
        # waits here, then its query sees the first one's row. SQLite serialises writers anyway.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"merchant-flag:{merchant_id}"})
    current = session.execute(
        select(MERCHANT_FLAGS.c.id).where(
            MERCHANT_FLAGS.c.merchant_id == merchant_id, MERCHANT_FLAGS.c.cleared_at.is_(None)
        )
    ).scalar()
    values = {
        "evaluated_at": now,
        "period_start": since,
        "period_end": now,
        "reasons": json.dumps([r.to_dict() for r in reasons], ensure_ascii=False),
        "figures": json.dumps(asdict(figures) if figures else {}, ensure_ascii=False),
        "rules_version": rules.version,
    }
    if reasons and current is None:
        current = session.execute(
            insert(MERCHANT_FLAGS)
            .values(merchant_id=merchant_id, raised_at=now, **values)
            .returning(MERCHANT_FLAGS.c.id)
        ).scalar_one()
    elif reasons:
        session.execute(update(MERCHANT_FLAGS).where(MERCHANT_FLAGS.c.id == current).values(**values))
    elif current is not None:
        session.execute(
            update(MERCHANT_FLAGS).where(MERCHANT_FLAGS.c.id == current).values(cleared_at=now, evaluated_at=now)
        )
    flagged = bool(reasons)
    if standing_of(session, merchant_id).flagged == flagged:
        return 0
    data: dict[str, Any] = {"flag": MERCHANT_FLAGGED, "flag_id": current}
    if flagged:
        data.update(
            reasons=[r.message for r in reasons],
            rules_version=rules.version,
            period={"since": to_iso(since), "until": to_iso(now)},
        )
    append_merchant_event(session, merchant_id, "flag_raised" if flagged else "flag_cleared", data, now)
    return 1
