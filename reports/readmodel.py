"""The reports' read model: the figures the oversight dashboards draw, kept per day (in the
desk's zone) so that a dashboard reads a few rows per category, day and merchant shown instead
of folding every case's events (issue #20: p95 <= 100 ms over 100,000 cases, bench B11).

How it stays equal to the log. Every write of a case's events also inserts a *dirty mark* for
the case, in the same transaction (cases/commands.py). A refresh, under a lock on the one
``report_state`` row, takes the marks it sees, folds those cases again from their whole logs
(``reports.facts.case_facts``, the fold every report uses), and applies the difference between
what each case now adds to the figures and what it added at its last fold (``report_cases``).
Why marks rather than folding in the writer's transaction: the writer's statements go out in
one pipelined round trip (cases/commands.py), which a read of the case's previous contribution
would break, and hot counter rows (today's category) would serialise concurrent writers until
commit. Why marks rather than a high-water mark on the events' numbering: on PostgreSQL ids are
drawn before commit, so a transaction can commit a lower id after a reader moved past it;
a mark is seen once it is committed and is removed by its own key, so none is skipped, and
re-folding a case twice changes nothing (the difference is then zero).

A dashboard request refreshes first (no write at all when nothing is marked), then reads.
Periods whose boundaries are midnights in the read model's zone are answered from it; any other
period (or a desk whose zone changed since the last ``disputes report rebuild``) falls back to
the reports computed from the log, so an answer is never approximate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from intake.supervision import MerchantFigures, SupervisionRules, flag_reasons
from reports.facts import AGAINST_MERCHANT, NO_MEDIATOR, CaseFacts, active_flags, case_facts, histories
from reports.hotspots import category_week_rows
from reports.merchants import MerchantRow
from reports.satisfaction import RatingRow
from reports.sla import SlaRow
from sla.calendar import ALWAYS_OPEN, Calendar
from sla.timers import elapsed
from store.db import Database
from store.tables import (
    CASES,
    REPORT_CASES,
    REPORT_DIRTY,
    REPORT_FILINGS,
    REPORT_MERCHANT_CLOCKS,
    REPORT_MERCHANTS,
    REPORT_RATINGS,
    REPORT_SLA,
    REPORT_STATE,
)
from workflow.categories import DEFAULT_CATEGORIES, Categories

log = logging.getLogger(__name__)

BATCH = 500
MERCHANT_COUNTERS = (
    "complaints",
    "decided",
    "decided_against",
    "settled_by_agreement",
    "settlements",
    "reopened",
    "settle_seconds_total",
    "settle_count",
)


def desk_zone(calendars: Mapping[str, Calendar]) -> str:
    """The zone the reports count days and weeks in (as reports.hotspots does)."""
    calendar = calendars.get("default")
    return calendar.timezone if calendar is not None and not calendar.always_open else "UTC"


def _day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).date().isoformat()


def _midnight(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


@dataclass
class Deltas:
    """Changes to the counter tables, summed over the cases of a refresh."""

    filings: Counter[tuple[str, ...]] = field(default_factory=Counter)
    merchants: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    clocks: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    ratings: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    sla: Counter[tuple[Any, ...]] = field(default_factory=Counter)

    def add(self, contribution: Mapping[str, Any], sign: int) -> None:
        self.filings[tuple(contribution["filing"])] += sign
        merchant = contribution["merchant"]
        key, values = tuple(merchant[:3]), merchant[3:]
        totals = self.merchants.setdefault(key, [0] * len(MERCHANT_COUNTERS))
        for i, value in enumerate(values):
            totals[i] += sign * value
        day, merchant_id = merchant[0], merchant[1]
        for clock, (runs, breaches) in contribution["clocks"].items():
            pair = self.clocks.setdefault((day, merchant_id, clock), [0, 0])
            pair[0] += sign * runs
            pair[1] += sign * breaches
        for rating in contribution["ratings"]:
            self.ratings[tuple(rating)] += sign
        for run in contribution["sla"]:
            self.sla[tuple(run)] += sign


def contribution(
    facts: CaseFacts,
    created_at: datetime,
    merchant_id: str,
    category: str,
    zone: ZoneInfo,
    calendars: Mapping[str, Calendar],
) -> dict[str, Any]:
    """What one case adds to the counters: its filing (by the case's category now, as hotspots
    counts), its merchant figures (by the filed category, as the merchants report counts), its
    ended clocks (with the business seconds reports.sla counts, on ``calendars``) and its ratings."""
    day = _day(created_at, zone)
    settle = (
        int((facts.first_settled_at - facts.filed_at).total_seconds()) if facts.first_settled_at is not None else None
    )
    clocks: dict[str, list[int]] = {}
    for run in facts.clocks:
        if run.status in ("met", "breached"):
            pair = clocks.setdefault(run.name, [0, 0])
            pair[0] += 1
            pair[1] += run.status == "breached"
    return {
        "filing": [day, merchant_id, category],
        "merchant": [
            day,
            facts.merchant_id,
            facts.category,
            1,
            int(facts.last_decision is not None),
            int(facts.last_decision in AGAINST_MERCHANT),
            int(facts.last_outcome == "settled_by_offer"),
            int(facts.settlement_closed),
            int(facts.settlement_closed and facts.reopened),
            settle or 0,
            int(settle is not None),
        ],
        "clocks": clocks,
        "ratings": [
            [_day(r.at, zone), r.mediator_id or NO_MEDIATOR, facts.category, r.party, r.score] for r in facts.ratings
        ],
        "sla": [
            [
                _day(run.ended_at, zone),
                run.name,
                run.mediator_id or NO_MEDIATOR,
                facts.category,
                run.status,
                elapsed(calendars.get(run.calendar, ALWAYS_OPEN), run.started_at, run.ended_at, run.paused_seconds),
            ]
            for run in facts.clocks
            if run.status in ("met", "breached") and run.ended_at is not None
        ],
    }


def _insert_adding(session: Session, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` or add their counters to the rows already there (one statement, many rows)."""
    if not rows:
        return
    is_pg = session.get_bind().dialect.name == "postgresql"
    stmt = (pg_insert if is_pg else sqlite_insert)(table)
    counters = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + stmt.excluded[c] for c in counters}
    )
    session.execute(stmt, rows)


def _write(session: Session, deltas: Deltas) -> None:
    _insert_adding(
        session,
        REPORT_FILINGS,
        ("day", "merchant_id", "category"),
        [{"day": d, "merchant_id": m, "category": c, "complaints": n} for (d, m, c), n in deltas.filings.items() if n],
    )
    _insert_adding(
        session,
        REPORT_MERCHANTS,
        ("day", "merchant_id", "category"),
        [
            {"day": d, "merchant_id": m, "category": c, **dict(zip(MERCHANT_COUNTERS, values, strict=True))}
            for (d, m, c), values in deltas.merchants.items()
            if any(values)
        ],
    )
    _insert_adding(
        session,
        REPORT_MERCHANT_CLOCKS,
        ("day", "merchant_id", "clock"),
        [
            {"day": d, "merchant_id": m, "clock": c, "runs": runs, "breaches": breaches}
            for (d, m, c), (runs, breaches) in deltas.clocks.items()
            if runs or breaches
        ],
    )
    _insert_adding(
        session,
        REPORT_RATINGS,
        ("day", "mediator_id", "category", "party", "score"),
        [
            {"day": d, "mediator_id": m, "category": c, "party": p, "score": s, "ratings": n}
            for (d, m, c, p, s), n in deltas.ratings.items()
            if n
        ],
    )
    _insert_adding(
        session,
        REPORT_SLA,
        ("day", "clock", "mediator_id", "category", "status", "seconds"),
        [
            {"day": d, "clock": c, "mediator_id": m, "category": g, "status": t, "seconds": sec, "runs": n}
            for (d, c, m, g, t, sec), n in deltas.sla.items()
            if n
        ],
    )


def _fold(
    session: Session,
    case_ids: Sequence[str],
    zone: ZoneInfo,
    calendars: Mapping[str, Calendar],
    deltas: Deltas,
    *,
    known: bool,
) -> None:
    """Fold ``case_ids`` again: their changes go into ``deltas``, their contributions are
    replaced (``known``: they may have earlier ones)."""
    rows = {
        r.id: r
        for r in session.execute(
            select(CASES.c.id, CASES.c.created_at, CASES.c.merchant_id, CASES.c.category).where(
                CASES.c.id.in_(list(case_ids))
            )
        )
    }
    before: dict[str, Any] = {}
    if known:
        before = {
            r.case_id: json.loads(r.contribution)
            for r in session.execute(
                select(REPORT_CASES.c.case_id, REPORT_CASES.c.contribution).where(
                    REPORT_CASES.c.case_id.in_(list(case_ids))
                )
            )
        }
        session.execute(delete(REPORT_CASES).where(REPORT_CASES.c.case_id.in_(list(case_ids))))
    stored = []
    for events in histories(session, sorted(rows)):
        facts = case_facts(events)
        row = rows[facts.case_id]
        now = contribution(facts, row.created_at, row.merchant_id, row.category, zone, calendars)
        old = before.get(facts.case_id)
        if old is not None:
            deltas.add(old, -1)
        deltas.add(now, 1)
        stored.append({"case_id": facts.case_id, "contribution": json.dumps(now, separators=(",", ":"))})
    if stored:
        session.execute(insert(REPORT_CASES), stored)


def fingerprint(calendars: Mapping[str, Calendar]) -> str:
    """What the stored business seconds depend on: the calendars' definitions."""
    described = [
        [
            c.name,
            c.timezone,
            repr(c.hours),
            c.country,
            c.subdivision,
            c.official_workdays,
            sorted(d.isoformat() for d in c.extra_days_off),
            sorted(d.isoformat() for d in c.extra_working_days),
            repr(c.extra_working_hours),
            c.always_open,
            c.day_length,
        ]
        for _, c in sorted(calendars.items())
    ]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def _lock_state(session: Session, zone: str, calendars: str, now: datetime) -> tuple[str, str]:
    """The read model's zone and calendars, with its state row locked for this transaction
    (created when missing: every case written since the tables exist carries a mark, see the
    migration)."""
    is_pg = session.get_bind().dialect.name == "postgresql"
    values = {"id": 1, "zone": zone, "calendars": calendars, "rebuilt_at": now}
    stmt = (pg_insert if is_pg else sqlite_insert)(REPORT_STATE).values(values).on_conflict_do_nothing()
    session.execute(stmt)
    row = session.execute(
        select(REPORT_STATE.c.zone, REPORT_STATE.c.calendars).where(REPORT_STATE.c.id == 1).with_for_update()
    ).one()
    return row.zone, row.calendars


def refresh(db: Database, calendars: Mapping[str, Calendar], now: datetime) -> bool:
    """Fold the marked cases into the read model. False when the model's days are in another
    zone, or its business times on other calendars, than the desk's now (``disputes report
    rebuild``)."""
    wanted = (desk_zone(calendars), fingerprint(calendars))
    with db.read() as session:
        state = session.execute(
            select(REPORT_STATE.c.zone, REPORT_STATE.c.calendars).where(REPORT_STATE.c.id == 1)
        ).one_or_none()
        marked = session.execute(select(REPORT_DIRTY.c.pk).limit(1)).first() is not None
    if state is not None and tuple(state) != wanted:
        return False
    if state is not None and not marked:
        return True  # nothing to fold: no write transaction (SQLite would take the write lock)
    with db.write() as session:
        if _lock_state(session, *wanted, now) != wanted:
            return False
        place = ZoneInfo(wanted[0])
        while True:
            marks = session.execute(
                select(REPORT_DIRTY.c.pk, REPORT_DIRTY.c.case_id).order_by(REPORT_DIRTY.c.pk).limit(BATCH * 4)
            ).all()
            if not marks:
                return True
            deltas = Deltas()
            ids = sorted({m.case_id for m in marks})
            for start in range(0, len(ids), BATCH):
                _fold(session, ids[start : start + BATCH], place, calendars, deltas, known=True)
            _write(session, deltas)
            session.execute(delete(REPORT_DIRTY).where(REPORT_DIRTY.c.pk.in_([m.pk for m in marks])))


def rebuild(db: Database, calendars: Mapping[str, Calendar], now: datetime) -> int:
    """Fill the read model from the log (after a migration, a bulk load, a change of the desk's
    zone or calendars). Returns the number of cases folded. Writers may go on meanwhile: the
    marks they commit after the rebuild read their case are folded by the next refresh."""
    zone, prints = desk_zone(calendars), fingerprint(calendars)
    with db.write() as session:
        _lock_state(session, zone, prints, now)
        session.execute(
            REPORT_STATE.update().where(REPORT_STATE.c.id == 1).values(zone=zone, calendars=prints, rebuilt_at=now)
        )
        last = session.execute(select(func.max(REPORT_DIRTY.c.pk))).scalar()
        for table in (
            REPORT_CASES,
            REPORT_FILINGS,
            REPORT_MERCHANTS,
            REPORT_MERCHANT_CLOCKS,
            REPORT_RATINGS,
            REPORT_SLA,
        ):
            session.execute(delete(table))
        if last is not None:
            session.execute(delete(REPORT_DIRTY).where(REPORT_DIRTY.c.pk <= last))
        ids = list(session.execute(select(CASES.c.id).order_by(CASES.c.pk)).scalars())
        place = ZoneInfo(zone)
        deltas = Deltas()
        for start in range(0, len(ids), BATCH):
            _fold(session, ids[start : start + BATCH], place, calendars, deltas, known=False)
        _write(session, deltas)
    return len(ids)


# Reading: the report answers (their ``to_dict()`` parts the dashboards draw) from the counters.


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    zone: ZoneInfo

    @property
    def days(self) -> tuple[str, str]:
        return _day(self.since, self.zone), _day(self.until, self.zone)


def aligned(zone: str, *moments: datetime) -> bool:
    place = ZoneInfo(zone)
    return all(_midnight(m, place) for m in moments)


def hotspot_categories(session: Session, period: Period) -> list[dict[str, Any]]:
    """``hotspots_report(...).categories``: complaints per category and ISO week."""
    since, until = period.since, period.until
    lo = _day(since - (until - since) - timedelta(days=7), period.zone)
    first, end = period.days
    rows = session.execute(
        select(REPORT_FILINGS.c.day, REPORT_FILINGS.c.category, func.sum(REPORT_FILINGS.c.complaints))
        .where(REPORT_FILINGS.c.day >= lo, REPORT_FILINGS.c.day < end)
        .group_by(REPORT_FILINGS.c.day, REPORT_FILINGS.c.category)
    ).all()
    by_category: Counter[tuple[str, str]] = Counter()
    category_weeks: set[tuple[str, str]] = set()
    for day, category, count in rows:
        if not count:
            continue
        year, number, _ = date.fromisoformat(day).isocalendar()
        week = f"{year}-W{number:02d}"
        by_category[(category, week)] += int(count)
        if day >= first:
            category_weeks.add((category, week))
    return category_week_rows(by_category, category_weeks)


def merchant_rows(
    session: Session,
    period: Period,
    rules: SupervisionRules,
    limit: int | None = None,
    categories: Categories = DEFAULT_CATEGORIES,
) -> list[dict[str, Any]]:
    """``merchants_report(...).data`` rows: the ``limit`` merchants with most complaints (all
    when None) and every flagged merchant, in the report's order."""
    first, end = period.days
    in_period = (REPORT_MERCHANTS.c.day >= first, REPORT_MERCHANTS.c.day < end)
    total = func.sum(REPORT_MERCHANTS.c.complaints)
    top = (
        select(REPORT_MERCHANTS.c.merchant_id)
        .where(*in_period)
        .group_by(REPORT_MERCHANTS.c.merchant_id)
        .having(total > 0)
        .order_by(total.desc(), REPORT_MERCHANTS.c.merchant_id)
    )
    if limit is not None:
        top = top.limit(limit)
    chosen = list(session.execute(top).scalars())
    sums = [func.sum(REPORT_MERCHANTS.c[c]) for c in MERCHANT_COUNTERS]
    figures: dict[str, dict[str, Any]] = {m: {"categories": {}, "sums": [0] * len(sums)} for m in chosen}
    clocks: dict[str, tuple[int, int]] = {}
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        for merchant_id, category, *values in session.execute(
            select(REPORT_MERCHANTS.c.merchant_id, REPORT_MERCHANTS.c.category, *sums)
            .where(*in_period, REPORT_MERCHANTS.c.merchant_id.in_(batch))
            .group_by(REPORT_MERCHANTS.c.merchant_id, REPORT_MERCHANTS.c.category)
        ):
            entry = figures[merchant_id]
            if values[0]:
                entry["categories"][category] = int(values[0])
            entry["sums"] = [a + int(b or 0) for a, b in zip(entry["sums"], values, strict=True)]
        for merchant_id, runs, breaches in session.execute(
            select(
                REPORT_MERCHANT_CLOCKS.c.merchant_id,
                func.sum(REPORT_MERCHANT_CLOCKS.c.runs),
                func.sum(REPORT_MERCHANT_CLOCKS.c.breaches),
            )
            .where(
                REPORT_MERCHANT_CLOCKS.c.day >= first,
                REPORT_MERCHANT_CLOCKS.c.day < end,
                REPORT_MERCHANT_CLOCKS.c.clock == rules.response_clock,
                REPORT_MERCHANT_CLOCKS.c.merchant_id.in_(batch),
            )
            .group_by(REPORT_MERCHANT_CLOCKS.c.merchant_id)
        ):
            clocks[merchant_id] = (int(runs or 0), int(breaches or 0))
    flags = active_flags(session)
    rows = []
    for merchant_id in chosen:
        entry = figures[merchant_id]
        s = dict(zip(MERCHANT_COUNTERS, entry["sums"], strict=True))
        runs, breaches = clocks.get(merchant_id, (0, 0))
        f = MerchantFigures(
            merchant_id=merchant_id,
            complaints=s["complaints"],
            by_category=tuple(
                sorted(
                    entry["categories"].items(),
                    key=lambda kv: (categories.order(kv[0]), kv[0]),
                )
            ),
            response_clocks=runs,
            response_breaches=breaches,
            decided=s["decided"],
            decided_against=s["decided_against"],
            settled_by_agreement=s["settled_by_agreement"],
            settlements=s["settlements"],
            reopened=s["reopened"],
            settle_seconds_total=s["settle_seconds_total"],
            settle_count=s["settle_count"],
        )
        rows.append(MerchantRow(f, flag_reasons(f, rules), flags.get(merchant_id)))
    for flagged_id, record in sorted(flags.items()):
        if flagged_id not in figures:
            rows.append(MerchantRow(MerchantFigures(flagged_id), (), record))
    rows.sort(key=lambda r: (r.flag is None, -r.figures.complaints, r.figures.merchant_id))
    return [r.to_dict() for r in rows]


def _sla_row(key: str, durations: Counter[int], met: int) -> dict[str, Any]:
    """``reports.sla._sla_row`` from counts of each duration: the same median (the mean of the
    two middle values when their number is even) and nearest-rank 90th percentile."""
    ordered = sorted(durations.items())
    runs = sum(durations.values())

    def at_rank(rank: int) -> int:  # 1-based
        seen = 0
        for value, n in ordered:
            seen += n
            if seen >= rank:
                return value
        raise AssertionError("rank beyond the runs")

    if runs % 2:
        middle: float = float(at_rank(runs // 2 + 1))
    else:
        middle = (at_rank(runs // 2) + at_rank(runs // 2 + 1)) / 2
    return SlaRow(
        key,
        runs,
        met,
        runs - met,
        round(100.0 * met / runs, 2),
        middle,
        at_rank(max(1, math.ceil(0.9 * runs))),
    ).to_dict()


def sla_answer(session: Session, period: Period) -> dict[str, Any]:
    """``sla_report(...).to_dict()``'s groups, from the counts per business time."""
    first, end = period.days
    t = REPORT_SLA.c
    groups: dict[str, dict[str, tuple[Counter[int], list[int]]]] = {
        "by_clock": {},
        "by_mediator": {},
        "by_category": {},
    }
    for clock, mediator, category, status, seconds, n in session.execute(
        select(t.clock, t.mediator_id, t.category, t.status, t.seconds, func.sum(t.runs))
        .where(t.day >= first, t.day < end)
        .group_by(t.clock, t.mediator_id, t.category, t.status, t.seconds)
    ):
        if not n:
            continue
        for group, key in (("by_clock", clock), ("by_mediator", mediator), ("by_category", category)):
            durations, met = groups[group].setdefault(key, (Counter(), [0]))
            durations[int(seconds)] += int(n)
            if status == "met":
                met[0] += int(n)
    return {
        group: [_sla_row(key, durations, met[0]) for key, (durations, met) in sorted(found.items())]
        for group, found in groups.items()
    }


def rating_rows(session: Session, period: Period, column: str) -> list[dict[str, Any]]:
    """``satisfaction_report(...).by_<column>`` rows (column: mediator_id, category or party)."""
    first, end = period.days
    key = REPORT_RATINGS.c[column]
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for name, score, n in session.execute(
        select(key, REPORT_RATINGS.c.score, func.sum(REPORT_RATINGS.c.ratings))
        .where(REPORT_RATINGS.c.day >= first, REPORT_RATINGS.c.day < end)
        .group_by(key, REPORT_RATINGS.c.score)
    ):
        if n:
            counts[name][int(score)] += int(n)
    rows = []
    for name in sorted(counts):
        scores = counts[name]
        given = sum(scores.values())
        if not given:
            continue
        total = sum(score * n for score, n in scores.items())
        rows.append(
            RatingRow(name, given, round(total / given, 2), {str(n): scores.get(n, 0) for n in range(1, 6)}).to_dict()
        )
    return rows


def dashboard_answers(
    db: Database,
    calendars: Mapping[str, Calendar],
    rules: SupervisionRules,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    merchants: int | None = None,
    categories: Categories = DEFAULT_CATEGORIES,
) -> dict[str, dict[str, Any]] | None:
    """The parts of the ``/v1/reports/*`` answers the dashboards draw, from the read model; None
    when the model cannot answer this period exactly (then compute the reports from the log)."""
    zone = desk_zone(calendars)
    if not aligned(zone, since, until, since - (until - since) - timedelta(days=7)):
        return None
    if not refresh(db, calendars, now):
        log.warning("the reports' read model was built for another zone or calendars: run `disputes report rebuild`")
        return None
    period = Period(since, until, ZoneInfo(zone))
    with db.read() as session:
        return {
            "hotspots": {"categories": hotspot_categories(session, period)},
            "merchants": {"data": merchant_rows(session, period, rules, merchants, categories)},
            "sla": sla_answer(session, period),
            "satisfaction": {
                "by_mediator": rating_rows(session, period, "mediator_id"),
                "by_category": rating_rows(session, period, "category"),
            },
        }


def counters(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every counter row that is not zero, table by table (tests compare a refreshed model with a rebuilt one)."""
    found = {}
    with db.read() as session:
        for table, value in ((REPORT_FILINGS, "complaints"), (REPORT_RATINGS, "ratings"), (REPORT_SLA, "runs")):
            found[table.name] = sorted(tuple(r) for r in session.execute(select(table).where(table.c[value] != 0)))
        for table in (REPORT_MERCHANTS, REPORT_MERCHANT_CLOCKS):
            found[table.name] = sorted(tuple(r) for r in session.execute(select(table)) if any(v for v in tuple(r)[3:]))
        found[REPORT_CASES.name] = sorted(tuple(r) for r in session.execute(select(REPORT_CASES)))
    return found
