"""Oversight pages: the dashboards (auditors, admins) with their CSV downloads, the third-party
reviewer's panel, and the flags senior mediators take a second look at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from audit.replay import read_replay, stored_chain
from console.dashboards import CHARTS, DEFAULT_PERIOD, charts, reports
from console.web import PageContext, page_context, render, sign_in_redirect
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, to_iso

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


def _history_case(ctx: PageContext, case_id: str) -> CaseSnapshot:
    """The case, for a caller the policies let read its history (otherwise NotFound / refused)."""
    assert ctx.actor is not None
    case = ctx.engine.cases.get(actor=ctx.actor, case_id=case_id)
    ctx.engine.cases.require_visible(ctx.actor, case, "view_history")
    return case


@router.get("/cases/{case_id}/history")
def history(ctx: Context, case_id: str, seq: int | None = None) -> Response:
    """The case's log with each event's hash and link, the case as it stood at any seq (replay),
    and the in-browser verification badge (static/verify.js)."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    case = _history_case(ctx, case_id)
    events = list(_all_events(ctx, case_id))
    chosen = max(1, min(seq or case.version, case.version))
    replayed = read_replay(ctx.engine.db, ctx.engine.registry, case_id, seq=chosen).snapshot
    block = "replayed" if ctx.htmx and seq is not None else None
    return render(ctx, "history.html", case=case, events=events, replayed=replayed, chosen=chosen, block=block)


@router.get("/cases/{case_id}/chain.json")
def chain(ctx: Context, case_id: str) -> Response:
    """The stored bodies and hashes the page verifies (the exact bytes that were hashed)."""
    if ctx.actor is None:
        return JSONResponse({"detail": "not signed in"}, status_code=401)
    _history_case(ctx, case_id)
    return JSONResponse({"case_id": case_id, "events": stored_chain(ctx.engine.db, case_id)})


def _all_events(ctx: PageContext, case_id: str) -> list[RecordedEvent]:
    assert ctx.actor is not None
    found: list[RecordedEvent] = []
    after = 0
    while True:
        page = ctx.engine.cases.events(actor=ctx.actor, case_id=case_id, after_seq=after, limit=200)
        found.extend(page.data)
        if page.next_cursor is None or not page.data:
            return found
        after = page.data[-1].seq
