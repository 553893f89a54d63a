"""Merchant supervision and service-quality reports, computed from the case log.

Every figure comes from the events (the log is the truth), folded per case into
:class:`CaseFacts`; the case table only selects which cases a report looks at:

* merchants: the cases filed in the period, per merchant, with their outcomes as they
  stand now (complaints, share per category, response-clock breaches, decisions against
  the merchant, settlements honoured or reopened, average time to settle) and the
  merchant's supervision flag;
* hotspots: complaints per merchant x category x ISO week (in the desk's time zone),
  with the change against the week before and, per merchant x category, against the
  previous period of the same length;
* sla: the clocks that ended (met or breached) in the period: share met and the median
  and 90th percentile (nearest rank) of their business time, per clock, per mediator
  and per category;
* satisfaction: the ratings given in the period, per mediator and per category, with
  the comments.

:func:`evaluate_merchants` applies the supervision thresholds to the last period and
raises or clears ``merchant_flags`` records; a flag raised or cleared is recorded once, as
``flag_raised`` / ``flag_cleared`` on the merchant's own log (cases/merchants.py), which
the policies read through the merchant's standing. No case is written: however many open
cases the merchant has, their versions stay where they are.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text, update
from sqlmodel import Session

from cases.intake import DeskIntake, service_calendars
from cases.merchants import append_merchant_event, flagged_merchants, standing_of
from cases.service import CaseService
from intake.supervision import FlagReason, MerchantFigures, SupervisionRules, flag_reasons
from sla.calendar import ALWAYS_OPEN, Calendar
from sla.timers import elapsed
from store.tables import CASES, EVENTS, MERCHANT_FLAGS
from workflow.chain import event_from_body
from workflow.errors import ConflictError, InvalidCommandError
from workflow.events import RecordedEvent
from workflow.merchant import MERCHANT_FLAGGED
from workflow.model import CATEGORIES, from_iso, to_iso

log = logging.getLogger("disputes.reports")
DECISIONS = frozenset({"for_consumer", "for_merchant", "partial"})
AGAINST_MERCHANT = frozenset({"for_consumer", "partial"})
MAX_PERIOD = timedelta(days=366 * 2)
NO_MEDIATOR = "(none)"


def check_period(since: datetime, until: datetime) -> None:
    if until <= since:
        raise InvalidCommandError("until must be after since", field="until")
    if until - since > MAX_PERIOD:
        raise InvalidCommandError("a report covers at most two years", field="since")


# --- facts of one case, folded from its events ---------------------------------------------------


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


def _with_events_between(session: Session, types: Iterable[str], since: datetime, until: datetime) -> list[str]:
    stmt = (
        select(EVENTS.c.case_id)
        .where(EVENTS.c.type.in_(list(types)), EVENTS.c.at >= since, EVENTS.c.at < until)
        .group_by(EVENTS.c.case_id)
        .order_by(EVENTS.c.case_id)
    )
    return list(session.execute(stmt).scalars().all())


# --- merchants --------------------------------------------------------------------------------


def merchant_figures(cases: Iterable[CaseFacts], *, response_clock: str) -> dict[str, MerchantFigures]:
    """Per merchant: the figures of :class:`intake.supervision.MerchantFigures` over ``cases``."""
    grouped: dict[str, list[CaseFacts]] = defaultdict(list)
    for facts in cases:
        grouped[facts.merchant_id].append(facts)
    result = {}
    for merchant_id, items in sorted(grouped.items()):
        categories = Counter(f.category for f in items)
        responses = [c for f in items for c in f.clocks if c.name == response_clock and c.status in ("met", "breached")]
        settle = [int((f.first_settled_at - f.filed_at).total_seconds()) for f in items if f.first_settled_at]
        result[merchant_id] = MerchantFigures(
            merchant_id=merchant_id,
            complaints=len(items),
            by_category=tuple(
                sorted(
                    categories.items(),
                    key=lambda kv: CATEGORIES.index(kv[0]) if kv[0] in CATEGORIES else len(CATEGORIES),
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
            "raised_at": _iso(self.raised_at),
            "evaluated_at": _iso(self.evaluated_at),
            "period": {"since": _iso(self.period_start), "until": _iso(self.period_end)},
            "reasons": self.reasons,
            "rules_version": self.rules_version,
            "cleared_at": _iso(self.cleared_at) if self.cleared_at else None,
        }


def active_flags(session: Session) -> dict[str, FlagRecord]:
    rows = session.execute(
        select(MERCHANT_FLAGS).where(MERCHANT_FLAGS.c.cleared_at.is_(None)).order_by(MERCHANT_FLAGS.c.id)
    ).all()
    return {r.merchant_id: FlagRecord.of(r) for r in rows}


@dataclass(frozen=True)
class MerchantRow:
    figures: MerchantFigures
    thresholds_reached: tuple[FlagReason, ...]  # by this period's figures
    flag: FlagRecord | None  # the merchant's standing supervision flag

    def to_dict(self) -> dict[str, Any]:
        f = self.figures
        return {
            "merchant_id": f.merchant_id,
            "complaints": f.complaints,
            "by_category": [
                {"category": c, "complaints": n, "percent": f.category_percent(c)} for c, n in f.by_category
            ],
            "response_clocks": f.response_clocks,
            "response_breaches": f.response_breaches,
            "response_breach_percent": f.response_breach_percent,
            "decided": f.decided,
            "decided_against": f.decided_against,
            "decided_against_percent": f.decided_against_percent,
            "settled_by_agreement": f.settled_by_agreement,
            "settlements": f.settlements,
            "reopened": f.reopened,
            "reopen_percent": f.reopen_percent,
            "honoured_percent": f.honoured_percent,
            "average_settle_seconds": f.average_settle_seconds,
            "thresholds_reached": [r.to_dict() for r in self.thresholds_reached],
            "flagged": self.flag is not None,
            "flag": self.flag.to_dict() if self.flag else None,
        }


@dataclass(frozen=True)
class MerchantsReport:
    since: datetime
    until: datetime
    rows: list[MerchantRow]

    def to_dict(self) -> dict[str, Any]:
        return {"since": _iso(self.since), "until": _iso(self.until), "data": [r.to_dict() for r in self.rows]}

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = [
            "merchant",
            "complaints",
            "top category",
            "response breaches",
            "breach %",
            "decided against %",
            "settlements",
            "reopen %",
            "avg settle h",
            "flagged",
        ]
        rows = []
        for row in self.rows:
            f = row.figures
            top = max(f.by_category, key=lambda kv: kv[1])[0] if f.by_category else "-"
            rows.append(
                [
                    f.merchant_id,
                    f.complaints,
                    top,
                    f"{f.response_breaches}/{f.response_clocks}",
                    _num(f.response_breach_percent),
                    _num(f.decided_against_percent),
                    f.settlements,
                    _num(f.reopen_percent),
                    _num(round(f.average_settle_seconds / 3600, 1) if f.average_settle_seconds is not None else None),
                    "yes" if row.flag else "",
                ]
            )
        return columns, rows


def merchants_report(
    service: CaseService, rules: SupervisionRules, *, since: datetime, until: datetime, merchant_id: str | None = None
) -> MerchantsReport:
    check_period(since, until)
    with service.db.read() as session:
        ids = filed_between(session, since, until, merchant_id)
        facts = [case_facts(events) for events in histories(session, ids)]
        flags = active_flags(session)
    figures = merchant_figures(facts, response_clock=rules.response_clock)
    rows = [MerchantRow(f, flag_reasons(f, rules), flags.get(m)) for m, f in figures.items()]
    # Flagged merchants without complaints in this period are still shown: supervisors look for them.
    for flagged_id, record in sorted(flags.items()):
        if flagged_id not in figures and merchant_id in (None, flagged_id):
            rows.append(MerchantRow(MerchantFigures(flagged_id), (), record))
    rows.sort(key=lambda r: (r.flag is None, -r.figures.complaints, r.figures.merchant_id))
    return MerchantsReport(since, until, rows)


# --- hotspots ---------------------------------------------------------------------------------


def iso_week(moment: datetime, zone: ZoneInfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def _previous_week(week: str) -> str:
    year, number = int(week[:4]), int(week[6:])
    monday = date.fromisocalendar(year, number, 1) - timedelta(days=7)
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"


@dataclass(frozen=True)
class HotspotsReport:
    since: datetime
    until: datetime
    timezone: str
    weeks: list[dict[str, Any]]  # merchant, category, week, complaints, previous_week, change
    totals: list[dict[str, Any]]  # merchant, category, complaints, previous_period, change, change_percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "timezone": self.timezone,
            "previous_period": {"since": _iso(self.since - (self.until - self.since)), "until": _iso(self.since)},
            "data": self.totals,
            "weeks": self.weeks,
        }

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["merchant", "category", "complaints", "previous period", "change", "change %"]
        return columns, [
            [
                t["merchant_id"],
                t["category"],
                t["complaints"],
                t["previous_period"],
                t["change"],
                _num(t["change_percent"]),
            ]
            for t in self.totals
        ]


def hotspots_report(
    service: CaseService, *, since: datetime, until: datetime, timezone: str | None = None, limit: int = 100
) -> HotspotsReport:
    check_period(since, until)
    zone_name = timezone or _desk_timezone(service_calendars(service))
    zone = ZoneInfo(zone_name)
    before = since - (until - since)
    with service.db.read() as session:
        rows = session.execute(
            select(CASES.c.merchant_id, CASES.c.category, CASES.c.created_at).where(
                CASES.c.created_at >= before - timedelta(days=7), CASES.c.created_at < until
            )
        ).all()
    weekly: Counter[tuple[str, str, str]] = Counter()
    current: Counter[tuple[str, str]] = Counter()
    previous: Counter[tuple[str, str]] = Counter()
    weeks_in_period: set[tuple[str, str, str]] = set()
    for merchant, category, created in rows:
        key = (merchant, category, iso_week(created, zone))
        weekly[key] += 1
        if created >= since:
            current[(merchant, category)] += 1
            weeks_in_period.add(key)
        elif created >= before:
            previous[(merchant, category)] += 1
    weeks = [
        {
            "merchant_id": m,
            "category": c,
            "week": w,
            "complaints": weekly[(m, c, w)],
            "previous_week": weekly[(m, c, _previous_week(w))],
            "change": weekly[(m, c, w)] - weekly[(m, c, _previous_week(w))],
        }
        for m, c, w in sorted(weeks_in_period)
    ]
    totals: list[dict[str, Any]] = []
    for pair in set(current) | set(previous):
        now_count, then_count = current[pair], previous[pair]
        totals.append(
            {
                "merchant_id": pair[0],
                "category": pair[1],
                "complaints": now_count,
                "previous_period": then_count,
                "change": now_count - then_count,
                "change_percent": round(100.0 * (now_count - then_count) / then_count, 2) if then_count else None,
            }
        )
    totals.sort(key=lambda t: (-t["change"], -t["complaints"], t["merchant_id"], t["category"]))
    return HotspotsReport(since, until, zone_name, weeks[: limit * 10], totals[:limit])


def _desk_timezone(calendars: Mapping[str, Calendar]) -> str:
    calendar = calendars.get("default")
    return calendar.timezone if calendar is not None and not calendar.always_open else "UTC"


# --- SLA --------------------------------------------------------------------------------------


def percentile(values: Sequence[int], share: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: Sequence[int]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass(frozen=True)
class SlaRow:
    key: str
    runs: int
    met: int
    breached: int
    met_percent: float | None
    median_seconds: float | None
    p90_seconds: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sla_row(key: str, runs: Sequence[tuple[ClockRun, int]]) -> SlaRow:
    met = sum(1 for run, _ in runs if run.status == "met")
    durations = [seconds for _, seconds in runs]
    return SlaRow(
        key,
        len(runs),
        met,
        len(runs) - met,
        round(100.0 * met / len(runs), 2) if runs else None,
        median(durations),
        percentile(durations, 0.9),
    )


@dataclass(frozen=True)
class SlaReport:
    since: datetime
    until: datetime
    by_clock: list[SlaRow]
    by_mediator: list[SlaRow]
    by_category: list[SlaRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "by_clock": [r.to_dict() for r in self.by_clock],
            "by_mediator": [r.to_dict() for r in self.by_mediator],
            "by_category": [r.to_dict() for r in self.by_category],
        }

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["group", "key", "runs", "met", "breached", "met %", "median h", "p90 h"]
        rows = []
        for group, items in (("clock", self.by_clock), ("mediator", self.by_mediator), ("category", self.by_category)):
            for r in items:
                rows.append(
                    [
                        group,
                        r.key,
                        r.runs,
                        r.met,
                        r.breached,
                        _num(r.met_percent),
                        _hours(r.median_seconds),
                        _hours(r.p90_seconds),
                    ]
                )
        return columns, rows


def sla_report(service: CaseService, *, since: datetime, until: datetime) -> SlaReport:
    """Clocks that ended met or breached in the period; times are business seconds the clock
    counted (pauses excluded) on the calendar it ran on."""
    check_period(since, until)
    calendars = service_calendars(service)
    with service.db.read() as session:
        ids = _with_events_between(session, ("timer_met", "timer_breached"), since, until)
        facts = [case_facts(events) for events in histories(session, ids)]
    runs: list[tuple[CaseFacts, ClockRun, int]] = []
    for case in facts:
        for run in case.clocks:
            if run.status in ("met", "breached") and run.ended_at is not None and since <= run.ended_at < until:
                calendar = calendars.get(run.calendar, ALWAYS_OPEN)
                runs.append((case, run, elapsed(calendar, run.started_at, run.ended_at, run.paused_seconds)))

    def grouped(key: Any) -> list[SlaRow]:
        groups: dict[str, list[tuple[ClockRun, int]]] = defaultdict(list)
        for case, run, seconds in runs:
            groups[key(case, run)].append((run, seconds))
        return [_sla_row(name, items) for name, items in sorted(groups.items())]

    return SlaReport(
        since,
        until,
        grouped(lambda c, r: r.name),
        grouped(lambda c, r: r.mediator_id or NO_MEDIATOR),
        grouped(lambda c, r: c.category),
    )


# --- satisfaction -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingRow:
    key: str
    ratings: int
    average: float | None
    distribution: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rating_row(key: str, scores: Sequence[int]) -> RatingRow:
    counts = Counter(scores)
    return RatingRow(
        key,
        len(scores),
        round(sum(scores) / len(scores), 2) if scores else None,
        {str(n): counts.get(n, 0) for n in range(1, 6)},
    )


@dataclass(frozen=True)
class SatisfactionReport:
    since: datetime
    until: datetime
    by_mediator: list[RatingRow]
    by_category: list[RatingRow]
    by_party: list[RatingRow]
    comments: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "by_mediator": [r.to_dict() for r in self.by_mediator],
            "by_category": [r.to_dict() for r in self.by_category],
            "by_party": [r.to_dict() for r in self.by_party],
            "comments": self.comments,
        }

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["group", "key", "ratings", "average", "1", "2", "3", "4", "5"]
        rows = []
        for group, items in (("mediator", self.by_mediator), ("category", self.by_category), ("party", self.by_party)):
            for r in items:
                rows.append([group, r.key, r.ratings, _num(r.average), *(r.distribution[str(n)] for n in range(1, 6))])
        return columns, rows


def satisfaction_report(
    service: CaseService, *, since: datetime, until: datetime, comment_limit: int = 100
) -> SatisfactionReport:
    """Ratings given in the period: by the case's mediator, its category, the rating party."""
    check_period(since, until)
    with service.db.read() as session:
        ids = _with_events_between(session, ("rated",), since, until)
        facts = [case_facts(events) for events in histories(session, ids)]
    given = [(case, r) for case in facts for r in case.ratings if since <= r.at < until]
    by: dict[str, dict[str, list[int]]] = {
        "mediator": defaultdict(list),
        "category": defaultdict(list),
        "party": defaultdict(list),
    }
    for case, rating in given:
        by["mediator"][rating.mediator_id or NO_MEDIATOR].append(rating.score)
        by["category"][case.category].append(rating.score)
        by["party"][rating.party].append(rating.score)
    comments = [
        {
            "case_id": case.case_id,
            "party": r.party,
            "score": r.score,
            "comment": r.comment,
            "at": _iso(r.at),
            "mediator_id": r.mediator_id,
            "category": case.category,
            "merchant_id": case.merchant_id,
        }
        for case, r in sorted(given, key=lambda item: item[1].at, reverse=True)
        if r.comment.strip()
    ]
    rows = {name: [_rating_row(key, scores) for key, scores in sorted(groups.items())] for name, groups in by.items()}
    return SatisfactionReport(since, until, rows["mediator"], rows["category"], rows["party"], comments[:comment_limit])


# --- supervision: raising and clearing merchant flags -----------------------------------------------


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
            "since": _iso(self.since),
            "until": _iso(self.until),
            "raised": self.raised,
            "cleared": self.cleared,
            "kept": self.kept,
            "merchant_events": self.merchant_events,
        }


def evaluate_merchants(service: CaseService, intake: DeskIntake, now: datetime) -> SupervisionOutcome:
    """Apply the supervision thresholds to the period ending now: flag merchants that reach one,
    clear the flags of those that no longer do, each on the merchant's own log."""
    rules = intake.supervision
    since = now - rules.period
    outcome = SupervisionOutcome(since, now)
    with service.db.read() as session:
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
                outcome.merchant_events += service.db.run_write(
                    partial(
                        _apply_flag,
                        service=service,
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
    service: CaseService,
    merchant_id: str,
    reasons: Sequence[FlagReason],
    figures: MerchantFigures | None,
    rules: SupervisionRules,
    since: datetime,
    now: datetime,
) -> int:
    """Bring the merchant's flag record and log in line with ``reasons`` (empty: not flagged);
    return the number of events appended to its log (0 or 1)."""
    if service.db.dialect == "postgresql":
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


# --- formatting -------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _num(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}"


def _hours(seconds: float | int | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f}"
