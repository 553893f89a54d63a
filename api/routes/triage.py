"""Triage and the rulebook: mediators correct a case's category and see the uncertain cases first;
anyone who may see a case sees the rulebook entries that apply to it and those it cites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.answers import answering, case_headers
from api.deps import CurrentActor, IfMatch, ServiceDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.schemas import CasePublic
from api.schemas.triage import (
    CaseRulesPublic,
    CategoryCorrection,
    RuleEntryPublic,
    TriageQueuePublic,
    UncertainPublic,
)

router = APIRouter(tags=["triage"], route_class=OneHopRoute)


@router.post(
    "/v1/cases/{case_id}/category",
    response_model=CasePublic,
    summary="Correct a case's category (mediators); the correction teaches the triage",
    responses=problems(401, 403, 404, 409, 412, 422, 428),
)
def correct_category(
    case_id: str,
    body: CategoryCorrection,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
) -> CasePublic:
    with answering(status.HTTP_200_OK, CasePublic.of, case_headers):
        case = service.recategorise(
            actor=actor, case_id=case_id, category=body.category, reason=body.reason, expected_version=version
        )
    response.headers.update(case_headers(case))
    return CasePublic.of(case)


@router.get(
    "/v1/cases/{case_id}/rules",
    response_model=CaseRulesPublic,
    summary="The rulebook entries that apply to a case, and those its decisions cite",
    responses=problems(401, 404),
)
def case_rules(case_id: str, actor: CurrentActor, service: ServiceDep) -> CaseRulesPublic:
    applicable, cited = service.case_rules(actor=actor, case_id=case_id)
    return CaseRulesPublic(
        case_id=case_id,
        applicable=[RuleEntryPublic.of(e) for e in applicable],
        cited=[RuleEntryPublic.of(e) for e in cited],
    )


@router.get(
    "/v1/triage-queue",
    response_model=TriageQueuePublic,
    summary="Open cases the classifier was unsure of, the smallest margin first (mediators)",
    responses=problems(401, 403, 422),
)
def triage_queue(
    actor: CurrentActor, service: ServiceDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> TriageQueuePublic:
    return TriageQueuePublic(data=[UncertainPublic.of(u) for u in service.triage_queue(actor=actor, limit=limit)])
