"""SLA clocks: a case's timers, and the mediator's queue by urgency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, ServiceDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import QueuePosition
from api.schemas import CasePublic, QueueItemPublic, QueuePublic, TimerPublic, TimersPublic
from cases.sweep import case_timers, queue
from workflow.model import to_iso

router = APIRouter(tags=["clocks"], route_class=OneHopRoute)


@router.get(
    "/v1/cases/{case_id}/timers",
    response_model=TimersPublic,
    summary="The case's SLA clocks",
    responses=problems(401, 404),
)
def timers(case_id: str, actor: CurrentActor, service: ServiceDep) -> TimersPublic:
    return TimersPublic(
        case_id=case_id, data=[TimerPublic.of(v) for v in case_timers(service, actor=actor, case_id=case_id)]
    )


@router.get(
    "/v1/queue",
    response_model=QueuePublic,
    summary="Cases you can act on, most urgent clock first",
    tags=["mediator"],
    responses=problems(401, 422),
)
def mediator_queue(
    actor: CurrentActor,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: QueuePosition = None,
) -> QueuePublic:
    items, after = queue(service, actor=actor, limit=limit, after=cursor)
    next_cursor = None if after is None else f"{to_iso(after[0])}|{after[1]}"
    return QueuePublic(
        data=[
            QueueItemPublic(case=CasePublic.of(i.case), most_urgent=TimerPublic.of(i.timer) if i.timer else None)
            for i in items
        ],
        next_cursor=next_cursor,
    )
