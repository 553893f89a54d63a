"""The hotspots report: complaints per merchant x category x ISO week (in the desk's time zone),
with the change against the week before and, per merchant x category, against the previous
period of the same length."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from reports.facts import as_iso, as_number, check_period
from sla.calendar import Calendar
from store.db import Database
from store.tables import CASES


def iso_week(moment: datetime, zone: ZoneInfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def category_week_rows(
    by_category: Mapping[tuple[str, str], int], category_weeks: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The report's ``categories``: each (category, ISO week) of the period with its complaints and
    the change against the week before (``by_category`` also counts the weeks before the period);
    the same rows whether counted from the log or read from the read model."""
    rows = []
    for category, week in sorted(category_weeks, key=lambda cw: (cw[1], cw[0])):
        count, before_count = by_category.get((category, week), 0), by_category.get((category, _previous_week(week)), 0)
        rows.append(
            {
                "category": category,
                "week": week,
                "complaints": count,
                "previous_week": before_count,
                "change": count - before_count,
                "change_percent": round(100.0 * (count - before_count) / before_count, 2) if before_count else None,
            }
        )
    return rows


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
    # Complaints per category and week over all merchants (the dashboards' hotspot chart):
    # category, week, complaints, previous_week, change, change_percent.
    categories: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": as_iso(self.since),
            "until": as_iso(self.until),
            "timezone": self.timezone,
            "previous_period": {"since": as_iso(self.since - (self.until - self.since)), "until": as_iso(self.since)},
            "data": self.totals,
            "weeks": self.weeks,
            "categories": self.categories,
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
                as_number(t["change_percent"]),
            ]
            for t in self.totals
        ]


def hotspots_report(
    db: Database,
    calendars: Mapping[str, Calendar],
    *,
    since: datetime,
    until: datetime,
    timezone: str | None = None,
    limit: int = 100,
) -> HotspotsReport:
    check_period(since, until)
    zone_name = timezone or _desk_timezone(calendars)
    zone = ZoneInfo(zone_name)
    before = since - (until - since)
    with db.read() as session:
        rows = session.execute(
            select(CASES.c.merchant_id, CASES.c.category, CASES.c.created_at).where(
                CASES.c.created_at >= before - timedelta(days=7), CASES.c.created_at < until
            )
        ).all()
    weekly: Counter[tuple[str, str, str]] = Counter()
    current: Counter[tuple[str, str]] = Counter()
    previous: Counter[tuple[str, str]] = Counter()
    weeks_in_period: set[tuple[str, str, str]] = set()
    by_category: Counter[tuple[str, str]] = Counter()
    category_weeks: set[tuple[str, str]] = set()
    for merchant, category, created in rows:
        week = iso_week(created, zone)
        key = (merchant, category, week)
        weekly[key] += 1
        by_category[(category, week)] += 1
        if created >= since:
            current[(merchant, category)] += 1
            weeks_in_period.add(key)
            category_weeks.add((category, week))
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
    categories = category_week_rows(by_category, category_weeks)
    return HotspotsReport(since, until, zone_name, weeks[: limit * 10], totals[:limit], categories)


def _desk_timezone(calendars: Mapping[str, Calendar]) -> str:
    calendar = calendars.get("default")
    return calendar.timezone if calendar is not None and not calendar.always_open else "UTC"
