"""The SLA report: the clocks that ended (met or breached) in the period: share met and the median
and 90th percentile (nearest rank) of their business time, per clock, per mediator and per category."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from reports.facts import (
    NO_MEDIATOR,
    ClockRun,
    as_hours,
    as_iso,
    as_number,
    case_facts,
    check_period,
    histories,
    with_events_between,
)
from sla.calendar import ALWAYS_OPEN, Calendar
from sla.timers import elapsed
from store.db import Database


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
            "since": as_iso(self.since),
            "until": as_iso(self.until),
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
                        as_number(r.met_percent),
                        as_hours(r.median_seconds),
                        as_hours(r.p90_seconds),
                    ]
                )
        return columns, rows


def sla_report(db: Database, calendars: Mapping[str, Calendar], *, since: datetime, until: datetime) -> SlaReport:
    """Clocks that ended met or breached in the period; times are business seconds the clock
    counted (pauses excluded) on the calendar it ran on."""
    check_period(since, until)
    with db.read() as session:
        ids = with_events_between(session, ("timer_met", "timer_breached"), since, until)
        facts = [case_facts(events) for events in histories(session, ids)]
    runs: list[tuple[str, ClockRun, int]] = []
    for case in facts:
        for run in case.clocks:
            if run.status in ("met", "breached") and run.ended_at is not None and since <= run.ended_at < until:
                calendar = calendars.get(run.calendar, ALWAYS_OPEN)
                runs.append((case.category, run, elapsed(calendar, run.started_at, run.ended_at, run.paused_seconds)))
    return SlaReport(since, until, *sla_rows(runs))


def sla_rows(runs: Sequence[tuple[str, ClockRun, int]]) -> tuple[list[SlaRow], list[SlaRow], list[SlaRow]]:
    """Rows per clock, per mediator and per category of ``runs`` (category, run, business seconds);
    the reports' read model groups its stored runs the same way."""

    def grouped(key: Any) -> list[SlaRow]:
        groups: dict[str, list[tuple[ClockRun, int]]] = defaultdict(list)
        for category, run, seconds in runs:
            groups[key(category, run)].append((run, seconds))
        return [_sla_row(name, items) for name, items in sorted(groups.items())]

    return (
        grouped(lambda c, r: r.name),
        grouped(lambda c, r: r.mediator_id or NO_MEDIATOR),
        grouped(lambda c, r: c),
    )
