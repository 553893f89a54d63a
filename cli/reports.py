"""`disputes report ...` and `disputes supervise`: merchant supervision and service-quality reports."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from cases.review import sample_period, week_start
from cli.common import err, identifier, open_engine, out, parse_instant
from cli.plural import quantity
from cli.terminal import plain, shown
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.readmodel import desk_zone, rebuild
from reports.review import review_report
from reports.satisfaction import satisfaction_report
from reports.sla import sla_report
from reports.supervision import evaluate_merchants
from runtime.engine import Engine
from workflow.model import Actor

report_app = typer.Typer(
    help="Merchant supervision and service-quality reports (tables, or CSV).", no_args_is_help=True
)
SinceOption = Annotated[str | None, typer.Option(help="Start (ISO 8601); default: 30 days before --until.")]
UntilOption = Annotated[str | None, typer.Option(help="End, exclusive (ISO 8601); default: now.")]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")]


def _period(engine: Engine, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    end = parse_instant(until) if until else engine.clock.now()
    return (parse_instant(since) if since else end - timedelta(days=30)), end


def _emit(title: str, columns: list[str], rows: list[list[object]], csv_path: Path | None) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(plain(cell) for cell in row))
    out.print(table)
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        err.print(f"wrote {quantity(len(rows), 'row')} to {csv_path}")


def _report(
    ctx: typer.Context,
    kind: str,
    since: str | None,
    until: str | None,
    csv_path: Path | None,
    merchant_id: str | None = None,
) -> None:
    with open_engine(ctx) as engine:
        start, end = _period(engine, since, until)
        report: Any
        if kind == "merchants":
            rules = engine.triage.supervision
            report = merchants_report(
                engine.db, rules, since=start, until=end, merchant_id=merchant_id, categories=engine.cases.categories
            )
        elif kind == "hotspots":
            report = hotspots_report(engine.db, engine.cases.calendars(), since=start, until=end)
        elif kind == "sla":
            report = sla_report(engine.db, engine.cases.calendars(), since=start, until=end)
        elif kind == "reviews":
            report = review_report(engine.db, engine.triage.review, since=start, until=end)
        else:
            report = engine.cases.reveal(satisfaction_report(engine.db, since=start, until=end))
    columns, rows = report.table()
    _emit(f"{kind} {start.isoformat()} .. {end.isoformat()}", columns, rows, csv_path)
    if kind == "satisfaction":
        for comment in report.comments[:20]:
            out.print(
                f"  {shown(comment['score'])}/5 {shown(comment['party'])} on {shown(comment['case_id'])} "
                f"({shown(comment['mediator_id'] or '-')}, {shown(comment['category'])}): "
                f"{shown(comment['comment'])}"
            )
    if kind == "reviews":
        for flag in report.flags[:20]:
            resolution = flag.resolution["decision"] if flag.resolution else "open"
            out.print(
                f"  flagged {shown(flag.case_id)} by {shown(flag.flagged_by)} at {shown(flag.flagged_at)}: "
                f"{shown(flag.reason)} -> {shown(resolution)}; since: {shown(', '.join(flag.since) or '-')}"
            )


@report_app.command("merchants")
def report_merchants(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    csv_path: CsvOption = None,
    merchant: Annotated[str | None, typer.Option(help="Only this merchant.", callback=identifier)] = None,
) -> None:
    """Per merchant: complaints, response-clock breaches, decisions against it, settlements reopened,
    time to settle, and whether it is flagged for supervision."""
    _report(ctx, "merchants", since, until, csv_path, merchant_id=merchant)


@report_app.command("hotspots")
def report_hotspots(
    ctx: typer.Context, since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None
) -> None:
    """Complaints per merchant and category against the previous period, biggest rise first."""
    _report(ctx, "hotspots", since, until, csv_path)


@report_app.command("sla")
def report_sla(
    ctx: typer.Context, since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None
) -> None:
    """Clocks met per clock, mediator and category, with median and 90th-percentile business hours."""
    _report(ctx, "sla", since, until, csv_path)


@report_app.command("satisfaction")
def report_satisfaction(
    ctx: typer.Context, since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None
) -> None:
    """Ratings by mediator, category and party, and the latest comments."""
    _report(ctx, "satisfaction", since, until, csv_path)


@report_app.command("reviews")
def report_reviews(
    ctx: typer.Context, since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None
) -> None:
    """Third-party review: average scores per rubric item, mediator and category; agreement between
    the two reviewers of double-sampled cases; the flags raised and what became of them."""
    _report(ctx, "reviews", since, until, csv_path)


@report_app.command("rebuild")
def report_rebuild(ctx: typer.Context) -> None:
    """Fill the dashboards' read model from the case log (after an upgrade, a bulk load or a
    change of the desk's time zone); writers may go on meanwhile."""
    with open_engine(ctx) as engine:
        calendars = engine.cases.calendars()
        zone = desk_zone(calendars)
        folded = rebuild(engine.db, calendars, engine.clock.now())
    out.print(f"read model rebuilt: {quantity(folded, 'case')} folded, days in {zone}")


def supervise(ctx: typer.Context) -> None:
    """Apply the supervision thresholds now: flag merchants that reach one, clear the others
    (the server does this every DISPUTES_SUPERVISION_INTERVAL_SECONDS)."""
    with open_engine(ctx) as engine:
        outcome = evaluate_merchants(engine.db, engine.triage.supervision, engine.clock.now())
    out.print(
        f"flagged: {shown(', '.join(outcome.raised) or '-')}; "
        f"still flagged: {shown(', '.join(outcome.kept) or '-')}; "
        f"cleared: {shown(', '.join(outcome.cleared) or '-')}; "
        f"{quantity(outcome.merchant_events, 'merchant log event')} written"
    )


# The desk's operator, who runs the command line: an admin of the desk (the policies decide).
OPERATOR = Actor("operator", "admin")


def sample_reviews(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Start of the period (ISO 8601); default: this week's Monday, desk time.")
    ] = None,
) -> None:
    """Draw the desk's third-party review sample of the cases closed in the period and deal each drawn
    case to its reviewers (intake/review.yaml). Again for the same period: the same draw, nothing
    dealt twice."""
    with open_engine(ctx) as engine:
        calendar = engine.cases.calendars().get("default")
        zone = ZoneInfo(calendar.timezone if calendar is not None and not calendar.always_open else "UTC")
        start = parse_instant(since) if since else week_start(engine.clock.now(), zone)
        outcome = sample_period(engine.cases, engine.triage.review, OPERATOR, since=start, zone=zone)
    rows: list[list[object]] = [
        [d.case_id, " / ".join(d.stratum), ", ".join(d.reviewers), "new" if d.case_id in outcome.assigned else "before"]
        for d in outcome.drawn
    ]
    _emit(f"review sample {outcome.period}", ["case", "stratum", "reviewers", "dealt"], rows, None)
    err.print(
        f"{quantity(outcome.candidates, 'case')} closed in the period, {quantity(len(outcome.drawn), 'case')} drawn, "
        f"{quantity(len(outcome.assigned), 'case')} newly dealt"
    )
