"""Oversight pages: the dashboards (auditors, admins) with their CSV downloads, the third-party
reviewer's panel, and the flags senior mediators take a second look at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from audit.replay import read_replay, stored_chain
from cases.mediators import change_mediator, registered_mediators
from cases.review import flag_case, flagged_cases, resolve_flag, review_case, review_queue, second_look, submit_review
from console.dashboards import CHARTS, DEFAULT_PERIOD, MERCHANTS_SHOWN, charts, reports
from console.routes.case import form_values
from console.web import PageContext, form_actor, page_context, render, see_other, sign_in_redirect
from policies.base import require_desk
from runtime.bootstrap import reload_configuration
from workflow.errors import ConflictError, InvalidCommandError, NotFoundError
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, to_iso

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]
FormValues = Annotated[dict[str, str], Depends(form_values)]


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
    """The dates chosen, as the desk's midnights; by default the 30 days up to the end of today
    (whole days, so that the reports' read model answers them: reports/readmodel.py)."""
    zone = ctx.fmt.desk_zone
    today = ctx.engine.clock.now().astimezone(zone).date()
    end = _day(ctx, until, "until") or datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    start = _day(ctx, since, "since") or datetime.combine(
        end.astimezone(zone).date() - DEFAULT_PERIOD, time(), tzinfo=zone
    )
    return start, end


@router.get("/dashboards")
def dashboards(ctx: Context, since: str = "", until: str = "") -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    start, end = _period(ctx, since, until)
    found = charts(reports(ctx.engine, ctx.actor, start, end, merchants=MERCHANTS_SHOWN), merchants=MERCHANTS_SHOWN)
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


# --- third-party review ------------------------------------------------------------------------


@router.get("/reviews")
def reviews(ctx: Context, notice: str | None = None) -> Response:
    """A reviewer's panel: the cases the desk's sampling dealt to them, still to review first."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if ctx.actor.role != "reviewer":
        return render(ctx, "error.html", status_code=403, kind="refused", reasons=("for third-party reviewers",))
    return render(ctx, "reviews.html", notice=notice, items=review_queue(ctx.engine.cases, ctx.actor))


def _review_page(
    ctx: PageContext,
    case_id: str,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    assert ctx.actor is not None
    shown = review_case(ctx.engine.cases, ctx.engine.triage.review, ctx.actor, case_id)
    mine = next((r for r in shown["reviews"] if r["reviewer_id"] == ctx.actor.id), None)
    return render(
        ctx,
        "review.html",
        status_code=status_code,
        notice=notice,
        problem=problem,
        shown=shown,
        mine=mine,
        typed=typed or {},
    )


@router.get("/reviews/{case_id}")
def review(ctx: Context, case_id: str, notice: str | None = None) -> Response:
    """A dealt case, redacted, with the desk's rubric to score it and the flag."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    return _review_page(ctx, case_id, notice=notice)


@router.post("/reviews/{case_id}/{what}")
def review_post(ctx: Context, case_id: str, what: str, values: FormValues) -> Response:
    """Scores (``scores``) or a flag (``flag``) from the review page, at the version it was read at."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    if what not in ("scores", "flag"):
        raise NotFoundError("review action", what)
    version = values.get("version", "")
    if not version.isdigit():
        return _review_page(ctx, case_id, status_code=422, problem="the form has no version", typed=values)
    rules = ctx.engine.triage.review
    try:
        if what == "scores":
            scores = {}
            for item in rules.rubric.item_ids:
                raw = values.get(f"score_{item}", "")
                scores[item] = int(raw) if raw.isdigit() else raw
            submit_review(
                ctx.engine.cases,
                rules,
                actor,
                case_id,
                scores=scores,
                comment=values.get("comment", ""),
                expected_version=int(version),
            )
        else:
            flag_case(ctx.engine.cases, actor, case_id, reason=values.get("reason", ""), expected_version=int(version))
    except ConflictError:
        return _review_page(ctx, case_id, status_code=412, notice="stale", typed=values)
    except InvalidCommandError as exc:
        return _review_page(ctx, case_id, status_code=422, problem=str(exc), typed=values)
    if ctx.htmx:
        return _review_page(ctx, case_id, notice="done")
    return see_other(f"/console/reviews/{case_id}", "done")


@router.get("/flags")
def flags(ctx: Context, notice: str | None = None) -> Response:
    """Cases reviewers flagged (senior mediators, auditors, admins), open ones first, with what
    became of each; a senior mediator resolves a flag here."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    found = flagged_cases(ctx.engine.cases, ctx.actor)
    found.sort(key=lambda f: (f.resolution is not None, f.flagged_at))
    versions = {}
    if ctx.actor.role == "senior_mediator":
        for entry in found:
            if entry.resolution is None:
                versions[entry.case_id] = second_look(ctx.engine.cases, ctx.actor, entry.case_id)["case"].version
    return render(ctx, "flags.html", notice=notice, flags=found, versions=versions)


@router.post("/flags/{case_id}/resolution")
def flag_resolution(ctx: Context, case_id: str, values: FormValues) -> Response:
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    version = values.get("version", "")
    try:
        resolve_flag(
            ctx.engine.cases,
            actor,
            case_id,
            decision=values.get("decision"),
            note=values.get("note", ""),
            expected_version=int(version) if version.isdigit() else None,
        )
    except ConflictError:
        return see_other("/console/flags", "stale")
    except InvalidCommandError as exc:
        found = flagged_cases(ctx.engine.cases, actor)
        return render(ctx, "flags.html", status_code=422, problem=str(exc), flags=found, versions={})
    return see_other("/console/flags", "done")


# --- the desk's administration ----------------------------------------------------------------


def _admin_page(
    ctx: PageContext, *, status_code: int = 200, notice: str | None = None, problems: list[str] | None = None
) -> Response:
    assert ctx.actor is not None
    engine = ctx.engine
    require_desk(engine.cases.authorizer, actor=ctx.actor, action="view_config", now=engine.clock.now())
    mediators = registered_mediators(engine.db, weight=engine.cases.weight)
    workflows = [(w.name, w.version) for w in engine.registry.active_definitions]
    return render(
        ctx,
        "admin.html",
        status_code=status_code,
        notice=notice,
        mediators=mediators,
        workflows=workflows,
        policy_version=engine.cases.authorizer.version,
        calendars=sorted(engine.cases.calendars()),
        review=engine.triage.review,
        problems=problems,
        can_manage=ctx.actor.role == "admin",
    )


@router.get("/admin")
def admin(ctx: Context, notice: str | None = None) -> Response:
    """Admins (auditors read): mediators with skills, capacity, duty calendar and load; the desk in
    force (workflow and policy versions, calendars, the review rules); reload with validation."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    return _admin_page(ctx, notice=notice)


@router.post("/admin/reload")
def admin_reload(ctx: Context, values: FormValues) -> Response:
    """Reload the desk from its directory: every part validated first; on any problem the desk in
    force keeps serving and the problems are shown with file and line."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    require_desk(ctx.engine.cases.authorizer, actor=actor, action="manage_config", now=ctx.engine.clock.now())
    problems = reload_configuration(ctx.engine)
    if problems:
        return _admin_page(ctx, status_code=422, problems=problems)
    return see_other("/console/admin", "done")


@router.post("/admin/mediators/{mediator_id}")
def admin_mediator(ctx: Context, mediator_id: str, values: FormValues) -> Response:
    """Change a mediator's capacity and whether they are active."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    engine = ctx.engine
    now = engine.clock.now()
    require_desk(engine.cases.authorizer, actor=actor, action="manage_mediators", now=now)
    capacity = values.get("capacity", "")
    fields: dict[str, object] = {"active": values.get("active") == "on"}
    if capacity.isdigit():
        fields["capacity"] = int(capacity)
    try:
        change_mediator(
            engine.db,
            mediator_id=mediator_id,
            fields=fields,
            calendars=engine.cases.calendars(),
            now=now,
            weight=engine.cases.weight,
        )
    except InvalidCommandError as exc:
        return _admin_page(ctx, status_code=422, problems=[str(exc)])
    return see_other("/console/admin", "done")
