"""Supervision and service-quality reports (auditors and admins: the desk action ``view_reports``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, EngineDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import ISO_INSTANT, parse_instant
from api.schemas import HotspotsPublic, MerchantsReportPublic, SatisfactionPublic, SlaPublic
from api.schemas.reviews import ReviewReportPublic
from policies.base import require_desk
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.review import review_report
from reports.satisfaction import satisfaction_report
from reports.sla import sla_report
from runtime.engine import Engine
from workflow.model import Actor

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=OneHopRoute)
DEFAULT_PERIOD = timedelta(days=30)
SINCE = Annotated[str | None, Query(pattern=ISO_INSTANT, description="Start (ISO 8601); default: 30 days before.")]
UNTIL = Annotated[str | None, Query(pattern=ISO_INSTANT, description="End, exclusive (ISO 8601); default: now.")]


def _period(engine: Engine, actor: Actor, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    require_desk(engine.cases.authorizer, actor=actor, action="view_reports", now=engine.clock.now())
    end = parse_instant(until, "until") or engine.clock.now()
    start = parse_instant(since, "since") or end - DEFAULT_PERIOD
    return start, end


@router.get(
    "/merchants",
    response_model=MerchantsReportPublic,
    summary="Merchant supervision figures and flags",
    responses=problems(401, 403, 422),
)
def merchants(
    actor: CurrentActor,
    engine: EngineDep,
    since: SINCE = None,
    until: UNTIL = None,
    merchant_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> MerchantsReportPublic:
    """Per merchant, over the cases filed in the period: complaints and their share per category,
    merchant-response clocks breached, the share of decisions against the merchant, settlements
    honoured or reopened, the average time to settle, and the merchant's supervision flag."""
    start, end = _period(engine, actor, since, until)
    report = merchants_report(
        engine.db,
        engine.triage.supervision,
        since=start,
        until=end,
        merchant_id=merchant_id,
        categories=engine.cases.categories,
    )
    return MerchantsReportPublic.model_validate(report.to_dict())


@router.get(
    "/hotspots",
    response_model=HotspotsPublic,
    summary="Complaints by category, merchant and week",
    responses=problems(401, 403, 422),
)
def hotspots(
    actor: CurrentActor,
    engine: EngineDep,
    since: SINCE = None,
    until: UNTIL = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HotspotsPublic:
    """Complaints per merchant x category against the previous period of the same length (biggest
    rise first), and per ISO week against the week before."""
    start, end = _period(engine, actor, since, until)
    return HotspotsPublic.model_validate(
        hotspots_report(engine.db, engine.cases.calendars(), since=start, until=end, limit=limit).to_dict()
    )


@router.get(
    "/sla",
    response_model=SlaPublic,
    summary="Clocks met, per clock, mediator and category",
    responses=problems(401, 403, 422),
)
def sla(actor: CurrentActor, engine: EngineDep, since: SINCE = None, until: UNTIL = None) -> SlaPublic:
    """The clocks that ended met or breached in the period: share met, median and 90th percentile
    of the business time they counted."""
    start, end = _period(engine, actor, since, until)
    return SlaPublic.model_validate(sla_report(engine.db, engine.cases.calendars(), since=start, until=end).to_dict())


@router.get(
    "/satisfaction",
    response_model=SatisfactionPublic,
    summary="Ratings by mediator and category",
    responses=problems(401, 403, 422),
)
def satisfaction(
    actor: CurrentActor,
    engine: EngineDep,
    since: SINCE = None,
    until: UNTIL = None,
    comment_limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> SatisfactionPublic:
    """Ratings the parties gave in the period, per mediator, category and party, with the
    comments (newest first)."""
    start, end = _period(engine, actor, since, until)
    # The comments are the parties' words: markers in the log, shown through the one reveal.
    report = engine.cases.reveal(satisfaction_report(engine.db, since=start, until=end, comment_limit=comment_limit))
    return SatisfactionPublic.model_validate(report.to_dict())


@router.get(
    "/reviews",
    response_model=ReviewReportPublic,
    summary="Third-party review scores, agreement and flags",
    responses=problems(401, 403, 422),
)
def reviews(actor: CurrentActor, engine: EngineDep, since: SINCE = None, until: UNTIL = None) -> ReviewReportPublic:
    """The reviews given in the period: average scores per rubric item, mediator and category;
    agreement between the two reviewers of double-sampled cases (exact, within one point, mean
    difference); the flags raised and what happened to them."""
    start, end = _period(engine, actor, since, until)
    report = review_report(engine.db, engine.triage.review, since=start, until=end)
    return ReviewReportPublic.model_validate(report.to_dict())
