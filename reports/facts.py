"""What every report reads: a case's facts folded from its events (the log is the truth), the
cases a period selects, merchant figures and supervision flag records."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from intake.supervision import MerchantFigures
from sla.calendar import ALWAYS_OPEN
from store.tables import CASES, EVENTS, MERCHANT_FLAGS
from workflow.categories import DEFAULT_CATEGORIES, Categories
from workflow.chain import event_from_body
from workflow.errors import InvalidCommandError
from workflow.events import RecordedEvent
from workflow.model import from_iso

DECISIONS = frozenset({"for_consumer", "for_merchant", "partial"})


AGAINST_MERCHANT = frozenset({"for_consumer", "partial"})


MAX_PERIOD = timedelta(days=366 * 2)


NO_MEDIATOR = "(none)"


def check_period(since: datetime, until: datetime) -> None:
    if until <= since:
        raise InvalidCommandError("until must be after since", field="until")
    if until - since > MAX_PERIOD:
        raise InvalidCommandError("a report covers at most two years", field="since")


@dataclass
class ClockRun:
    name: str
    started_at: datetime
    calendar: str
    paused_seconds: int = 0
    status: str = "running"  # running, paused, met, breached, cancelled
    ended_at: datetime | None = None
    mediator_id: str | None = None  # the case's mediator when the clock ended


@dataclass(frozen=True)
class RatingFact:
    party: str
    score: int
    comment: str
    at: datetime
    mediator_id: str | None


@dataclass
class CaseFacts:
    case_id: str
    merchant_id: str
    category: str
    filed_at: datetime
    mediator_id: str | None = None
    first_settled_at: datetime | None = None
    last_decision: str | None = None
    last_outcome: str | None = None
    settlement_closed: bool = False  # left settled for closed: the settlement was carried out
    reopened: bool = False
    clocks: list[ClockRun] = field(default_factory=list)
    ratings: list[RatingFact] = field(default_factory=list)


def case_facts(events: Sequence[RecordedEvent], *, settled_state: str = "settled") -> CaseFacts:
    """Fold one case's events (in order, starting with ``filed``) into the facts reports use."""
    filed = events[0]
    facts = CaseFacts(filed.case_id, filed.data["merchant_id"], filed.data["category"], from_iso(filed.at))
    running: dict[str, ClockRun] = {}
    for event in events[1:]:
        data, at = event.data, from_iso(event.at)
        if event.type == "transitioned":
            if "mediator_id" in data:
                facts.mediator_id = data["mediator_id"]
            if data["to"] == settled_state and facts.first_settled_at is None:
                facts.first_settled_at = at
            if data.get("outcome") in DECISIONS:
                facts.last_decision = data["outcome"]
            if "outcome" in data:
                facts.last_outcome = data["outcome"]
            if data["from"] == settled_state and data["to"] != settled_state:
                facts.settlement_closed = True
            if "reopen_count" in data:
                # Reopened: the outcome no longer stands (as in the fold), the case is open again.
                facts.reopened = True
                facts.last_outcome = facts.last_decision = None
        elif event.type == "timer_started":
            run = ClockRun(data["timer"], at, data.get("calendar", ALWAYS_OPEN.name))
            running[run.name] = run
            facts.clocks.append(run)
        elif event.type == "timer_resumed" and data["timer"] in running:
            running[data["timer"]].paused_seconds += int(data.get("paused_seconds", 0))
        elif event.type in ("timer_met", "timer_breached", "timer_cancelled") and data["timer"] in running:
            run = running.pop(data["timer"])
            run.status = event.type.removeprefix("timer_")
            run.ended_at = at
            run.mediator_id = facts.mediator_id
        elif event.type == "rated":
            facts.ratings.append(
                RatingFact(data["party"], data["score"], data.get("comment", ""), at, facts.mediator_id)
            )
    return facts


def histories(session: Session, case_ids: Sequence[str], batch: int = 200) -> Iterator[list[RecordedEvent]]:
    """Each case's events in order, reading ``batch`` cases per query."""
    for start in range(0, len(case_ids), batch):
        chunk = list(case_ids[start : start + batch])
        rows = session.execute(
            select(EVENTS.c.case_id, EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
            .where(EVENTS.c.case_id.in_(chunk))
            .order_by(EVENTS.c.case_id, EVENTS.c.seq)
        ).all()
        current: list[RecordedEvent] = []
        for row in rows:
            event = event_from_body(row.body, prev_hash=row.prev_hash, hash_=row.hash)
            if current and current[0].case_id != event.case_id:
                yield current
                current = []
            current.append(event)
        if current:
            yield current


def filed_between(session: Session, since: datetime, until: datetime, merchant_id: str | None = None) -> list[str]:
    stmt = select(CASES.c.id).where(CASES.c.created_at >= since, CASES.c.created_at < until)
    if merchant_id is not None:
        stmt = stmt.where(CASES.c.merchant_id == merchant_id)
    return list(session.execute(stmt.order_by(CASES.c.pk)).scalars().all())


def with_events_between(session: Session, types: Iterable[str], since: datetime, until: datetime) -> list[str]:
    stmt = (
        select(EVENTS.c.case_id)
        .where(EVENTS.c.type.in_(list(types)), EVENTS.c.at >= since, EVENTS.c.at < until)
        .group_by(EVENTS.c.case_id)
        .order_by(EVENTS.c.case_id)
    )
    return list(session.execute(stmt).scalars().all())


def merchant_figures(
    cases: Iterable[CaseFacts], *, response_clock: str, categories: Categories = DEFAULT_CATEGORIES
) -> dict[str, MerchantFigures]:
    """Per merchant: the figures of :class:`intake.supervision.MerchantFigures` over ``cases``; the
    complaints per category in the order of ``categories`` (the desk's), any other category after."""
    grouped: dict[str, list[CaseFacts]] = defaultdict(list)
    for facts in cases:
        grouped[facts.merchant_id].append(facts)
    result = {}
    for merchant_id, items in sorted(grouped.items()):
        counts = Counter(f.category for f in items)
        responses = [c for f in items for c in f.clocks if c.name == response_clock and c.status in ("met", "breached")]
        settle = [int((f.first_settled_at - f.filed_at).total_seconds()) for f in items if f.first_settled_at]
        result[merchant_id] = MerchantFigures(
            merchant_id=merchant_id,
            complaints=len(items),
            by_category=tuple(
                sorted(
                    counts.items(),
                    key=lambda kv: (categories.order(kv[0]), kv[0]),
                )
            ),
            response_clocks=len(responses),
            response_breaches=sum(1 for c in responses if c.status == "breached"),
            decided=sum(1 for f in items if f.last_decision is not None),
            decided_against=sum(1 for f in items if f.last_decision in AGAINST_MERCHANT),
            settled_by_agreement=sum(1 for f in items if f.last_outcome == "settled_by_offer"),
            settlements=sum(1 for f in items if f.settlement_closed),
            reopened=sum(1 for f in items if f.settlement_closed and f.reopened),
            settle_seconds_total=sum(settle),
            settle_count=len(settle),
        )
    return result


@dataclass(frozen=True)
class FlagRecord:
    id: int
    merchant_id: str
    raised_at: datetime
    evaluated_at: datetime
    period_start: datetime
    period_end: datetime
    reasons: list[dict[str, Any]]
    rules_version: str
    cleared_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> FlagRecord:
        return cls(
            row.id,
            row.merchant_id,
            row.raised_at,
            row.evaluated_at,
            row.period_start,
            row.period_end,
            json.loads(row.reasons),
            row.rules_version,
            row.cleared_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "raised_at": as_iso(self.raised_at),
            "evaluated_at": as_iso(self.evaluated_at),
            "period": {"since": as_iso(self.period_start), "until": as_iso(self.period_end)},
            "reasons": self.reasons,
            "rules_version": self.rules_version,
            "cleared_at": as_iso(self.cleared_at) if self.cleared_at else None,
        }


def active_flags(session: Session) -> dict[str, FlagRecord]:
    rows = session.execute(
        select(MERCHANT_FLAGS).where(MERCHANT_FLAGS.c.cleared_at.is_(None)).order_by(MERCHANT_FLAGS.c.id)
    ).all()
    return {r.merchant_id: FlagRecord.of(r) for r in rows}


def as_iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def as_number(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}"


def as_hours(seconds: float | int | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f}"
