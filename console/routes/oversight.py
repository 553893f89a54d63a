"""Oversight pages: the dashboards (auditors, admins) with their CSV downloads, the third-party
reviewer's panel, and the flags senior mediators take a second look at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from console.dashboards import CHARTS, DEFAULT_PERIOD, charts, reports
from console.web import PageContext, page_context, render, sign_in_redirect
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.model import to_iso

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]


def _day(ctx: PageContext, text: str, field: str) -> datetime | None:
    """A date of the period form (YYYY-MM-DD), as midnight in the desk's zone."""
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidCommandError(f"{field} must be a date such as 2026-03-02", field=field) from None
    return datetime.combine(day, time(), tzinfo=ctx.fmt.desk_zone)


def _period(ctx: PageContext, since: str, until: str) -> tuple[datetime, datetime]:
    end = _day(ctx, until, "until") or ctx.engine.clock.now()
    start = _day(ctx, since, "since") or end - DEFAULT_PERIOD
    return start, end


@router.get("/dashboards")
def dashboards(ctx: Context, since: str = "", until: str = "") -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    start, end = _period(ctx, since, until)
    found = charts(reports(ctx.engine, ctx.actor, start, end))
    return render(
        ctx,
        "dashboards.html",
        found=found,
        chosen={"since": since, "until": until},
        since_iso=to_iso(start),
        until_iso=to_iso(end),
    )


@router.get("/dashboards/{name}.csv")
def dashboard_csv(ctx: Context, name: str, since: str = "", until: str = "") -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if name not in CHARTS:
        raise NotFoundError("chart", name)
    start, end = _period(ctx, since, until)
    chart = charts(reports(ctx.engine, ctx.actor, start, end))[name]
    stamp = f"{start.date().isoformat()}_{(end - timedelta(seconds=1)).date().isoformat()}"
    return Response(
        chart.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}_{stamp}.csv"'},
    )
