"""Cases: file, list, read, move, history, allowed actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.answers import answering, case_headers
from api.deps import CurrentActor, IfMatch, ServiceDep, etag
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import ISO_INSTANT, Position, SeqPosition, parse_instant
from api.schemas import (
    ActionPublic,
    ActionsPublic,
    CaseCreate,
    CasePublic,
    CasesPublic,
    CaseStatusPublic,
    EventPublic,
    EventsPublic,
    Identifier,
    TransitionRequest,
    identifier_query,
)
from cases.queries import CaseFilters
from workflow.model import CaseSnapshot, NewCase

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=OneHopRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CasePublic,
    summary="File a complaint (consumers)",
    tags=["consumer"],
    responses=problems(401, 403, 422, 429),
)
def file_case(body: CaseCreate, actor: CurrentActor, service: ServiceDep, response: Response) -> CasePublic:
    with answering(status.HTTP_201_CREATED, CasePublic.of, filed_headers):
        case = service.file(
            actor=actor,
            new_case=NewCase(
                consumer_id=actor.id,
                merchant_id=body.merchant_id,
                category=body.category or "",  # empty: the desk's intake classifies it
                subject=body.subject,
                description=body.description,
                order_ref=body.order_ref,
                claim_amount=body.claim.amount,
                currency=body.claim.currency,
                desired_outcome=body.desired_outcome,
                vulnerable_consumer=body.vulnerable_consumer,
                facts=dict(body.facts),
            ),
            workflow=body.workflow,
        )
    response.headers.update(filed_headers(case))
    return CasePublic.of(case)


def filed_headers(case: CaseSnapshot) -> dict[str, str]:
    return {**case_headers(case), "location": f"/v1/cases/{case.id}"}


@router.get("", response_model=CasesPublic, summary="List the cases you may see", responses=problems(401, 422))
def list_cases(
    actor: CurrentActor,
    service: ServiceDep,
    state: Annotated[str | None, Query(max_length=60)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    merchant_id: Annotated[Identifier | None, identifier_query("Only this merchant's cases.")] = None,
    mediator_id: Annotated[Identifier | None, identifier_query("Only the cases of this mediator.")] = None,
    breaching: bool | None = None,
    created_from: Annotated[str | None, Query(pattern=ISO_INSTANT, description="ISO 8601 instant.")] = None,
    created_to: Annotated[str | None, Query(pattern=ISO_INSTANT, description="ISO 8601 instant.")] = None,
    cursor: Position = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasesPublic:
    page = service.list_cases(
        actor=actor,
        filters=CaseFilters(
            state=state,
            category=category,
            merchant_id=merchant_id,
            mediator_id=mediator_id,
            breaching=breaching,
            created_from=parse_instant(created_from, "created_from"),
            created_to=parse_instant(created_to, "created_to"),
        ),
        before=cursor,
        limit=limit,
    )
    return CasesPublic(data=[CasePublic.of(c) for c in page.data], next_cursor=page.next_cursor)


@router.get(
    "/{case_id}/status",
    response_model=CaseStatusPublic,
    summary="The case's state as your party reads it",
    responses=problems(401, 404),
)
def get_case_status(case_id: str, actor: CurrentActor, service: ServiceDep) -> CaseStatusPublic:
    return CaseStatusPublic.of(service.status_for(actor=actor, case_id=case_id))


@router.get("/{case_id}", response_model=CasePublic, summary="Read one case", responses=problems(401, 404))
def get_case(case_id: str, actor: CurrentActor, service: ServiceDep, response: Response) -> CasePublic:
    case = service.get(actor=actor, case_id=case_id)
    response.headers["ETag"] = etag(case.version)
    return CasePublic.of(case)


@router.post(
    "/{case_id}/transitions",
    response_model=CasePublic,
    summary="Fire a workflow trigger",
    responses=problems(401, 403, 404, 409, 412, 422, 428),
)
def transition(
    case_id: str,
    body: TransitionRequest,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
) -> CasePublic:
    with answering(status.HTTP_200_OK, CasePublic.of, case_headers):
        case = service.execute(
            actor=actor,
            case_id=case_id,
            name=body.trigger,
            data=body.data,
            reason=body.reason,
            expected_version=version,
            kind="trigger",
        )
    response.headers.update(case_headers(case))
    return CasePublic.of(case)


@router.get(
    "/{case_id}/events",
    response_model=EventsPublic,
    summary="The case's history",
    responses=problems(401, 403, 404, 422),
)
def events(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    cursor: SeqPosition = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> EventsPublic:
    page = service.events(actor=actor, case_id=case_id, after_seq=cursor or 0, limit=limit)
    return EventsPublic(data=[EventPublic.of(e) for e in page.data], next_cursor=page.next_cursor)


@router.get(
    "/{case_id}/actions",
    response_model=ActionsPublic,
    summary="What you may do on this case now, with reasons",
    responses=problems(401, 404),
)
def actions(case_id: str, actor: CurrentActor, service: ServiceDep) -> ActionsPublic:
    case = service.get(actor=actor, case_id=case_id)
    infos = service.allowed_actions(actor=actor, case_id=case_id)
    return ActionsPublic(
        case_id=case.id,
        state=case.state,
        version=case.version,
        data=[
            ActionPublic(name=i.name, kind=i.kind, allowed=i.allowed, reasons=list(i.reasons))  # type: ignore[arg-type]
            for i in infos
        ],
    )
