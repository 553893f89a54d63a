"""The oversight dashboards' figures: the ``/v1/reports/*`` answers, turned into the rows each
chart draws, its accessible table shows and its CSV holds (one list of rows for all three, so the
picture, the table and the download cannot disagree).

The reports are computed by the same functions the API calls, with the same arguments, and read
from their ``to_dict()`` answers: a chart's figures are the API's figures (tests/console compare
them). Who may see them is the desk action ``view_reports`` (auditors, admins).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from policies.base import require_desk
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.readmodel import dashboard_answers
from reports.satisfaction import satisfaction_report
from reports.sla import sla_report
from runtime.engine import Engine
from workflow.model import Actor

DEFAULT_PERIOD = timedelta(days=30)
# The merchants the dashboard page ranks (its CSV download has them all): a page that read and
# drew every merchant would grow with the marketplace (bench B11).
MERCHANTS_SHOWN = 25
CHARTS = ("hotspots", "merchants", "sla_clocks", "sla_mediators", "satisfaction_mediators", "satisfaction_categories")


@dataclass(frozen=True)
class Chart:
    """One chart: ``columns`` name the row fields (the first is the row's label), ``value`` the
    field the bars draw, ``rows`` the figures as the report gave them."""

    name: str
    columns: tuple[str, ...]
    value: str
    rows: list[dict[str, Any]]
    maximum: float

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in self.columns])
        return buffer.getvalue()


def reports(
    engine: Engine, actor: Actor, since: datetime, until: datetime, *, merchants: int | None = None
) -> dict[str, dict[str, Any]]:
    """The report answers the dashboards draw, as ``GET /v1/reports/<name>`` gives them: from the
    reports' read model when it answers the period exactly (boundaries at the desk's midnights;
    ``merchants``: only the most complained-about are read), else computed from the log."""
    now = engine.clock.now()
    require_desk(engine.cases.authorizer, actor=actor, action="view_reports", now=now)
    calendars = engine.cases.calendars()
    answers = dashboard_answers(
        engine.db,
        calendars,
        engine.triage.supervision,
        since=since,
        until=until,
        now=now,
        merchants=merchants,
        categories=engine.cases.categories,
    )
    if answers is not None:
        return answers
    return {
        "hotspots": hotspots_report(engine.db, calendars, since=since, until=until).to_dict(),
        "merchants": merchants_report(
            engine.db, engine.triage.supervision, since=since, until=until, categories=engine.cases.categories
        ).to_dict(),
        "sla": sla_report(engine.db, calendars, since=since, until=until).to_dict(),
        "satisfaction": satisfaction_report(engine.db, since=since, until=until).to_dict(),
    }


def _max(rows: list[dict[str, Any]], key: str, floor: float = 1.0) -> float:
    return max([floor, *(float(r[key]) for r in rows if r.get(key) is not None)])


def charts(answers: dict[str, dict[str, Any]], *, merchants: int | None = None) -> dict[str, Chart]:
    """Every dashboard chart from the report answers (``merchants``: the most complained-about only)."""
    hotspot_rows = [
        {
            "week": c["week"],
            "category": c["category"],
            "complaints": c["complaints"],
            "previous_week": c["previous_week"],
            "change": c["change"],
            "change_percent": c["change_percent"],
        }
        for c in answers["hotspots"]["categories"]
    ]
    merchant_rows = sorted(
        (
            {
                "merchant_id": m["merchant_id"],
                "complaints": m["complaints"],
                "response_breach_percent": m["response_breach_percent"],
                "decided_against_percent": m["decided_against_percent"],
                "honoured_percent": m["honoured_percent"],
                "flagged": m["flagged"],
            }
            for m in answers["merchants"]["data"]
        ),
        key=lambda r: (-r["complaints"], r["merchant_id"]),
    )[:merchants]
    sla_columns = ("key", "runs", "met", "breached", "met_percent", "median_seconds", "p90_seconds")
    rating_columns = ("key", "ratings", "average")
    found = {
        "hotspots": Chart(
            "hotspots",
            ("week", "category", "complaints", "previous_week", "change", "change_percent"),
            "complaints",
            hotspot_rows,
            _max(hotspot_rows, "complaints"),
        ),
        "merchants": Chart(
            "merchants",
            (
                "merchant_id",
                "complaints",
                "response_breach_percent",
                "decided_against_percent",
                "honoured_percent",
                "flagged",
            ),
            "complaints",
            merchant_rows,
            _max(merchant_rows, "complaints"),
        ),
        "sla_clocks": Chart(
            "sla_clocks", sla_columns, "met_percent", [_pick(r, sla_columns) for r in answers["sla"]["by_clock"]], 100.0
        ),
        "sla_mediators": Chart(
            "sla_mediators",
            sla_columns,
            "met_percent",
            [_pick(r, sla_columns) for r in answers["sla"]["by_mediator"]],
            100.0,
        ),
        "satisfaction_mediators": Chart(
            "satisfaction_mediators",
            rating_columns,
            "average",
            [_pick(r, rating_columns) for r in answers["satisfaction"]["by_mediator"]],
            5.0,
        ),
        "satisfaction_categories": Chart(
            "satisfaction_categories",
            rating_columns,
            "average",
            [_pick(r, rating_columns) for r in answers["satisfaction"]["by_category"]],
            5.0,
        ),
    }
    return found


def _pick(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: row.get(c) for c in columns}


def period(engine: Engine, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The dashboards' period: ``until`` (default now) and ``since`` (default 30 days before)."""
    end = datetime.fromisoformat(until) if until else engine.clock.now()
    start = datetime.fromisoformat(since) if since else end - DEFAULT_PERIOD
    return start, end
