"""What the parties and mediators do on a case besides moving it: responses, messages,
evidence, offers, information requests, feedback. Each is one workflow action."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from api.deps import CurrentActor, IfMatch, ServiceDep, SettingsDep, etag
from api.headers import attachment
from api.openapi import problems
from api.problems import ProblemError
from api.routing import OneHopRoute
from api.schemas import (
    CasePublic,
    EvidenceListPublic,
    EvidencePublic,
    FeedbackCreate,
    FeedbackPublic,
    InfoAnswer,
    InfoRequestCreate,
    InfoRequestPublic,
    InfoRequestsPublic,
    MessageCreate,
    MessagePublic,
    MessagesPublic,
    OfferCreate,
    OfferDecision,
    OfferPublic,
    OffersPublic,
    ResponseCreate,
)
from api.settings import Settings
from cases.service import CaseService, decode_cursor, encode_cursor, evidence_visible
from workflow.model import Actor, CaseSnapshot, Evidence, InfoRequest, Offer

router = APIRouter(prefix="/v1/cases/{case_id}", tags=["cases"], route_class=OneHopRoute)
UPLOAD_MEDIA_TYPES = Settings.model_fields["upload_media_types"].default
MUTATION_PROBLEMS = problems(401, 403, 404, 409, 412, 422, 428, 429)


Cursor = Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=200)]
T = TypeVar("T")


def paginate(items: list[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a case's (short, ordered) sub-collection; the cursor is the position."""
    start = decode_cursor(cursor) if cursor else 0
    page = items[start : start + limit]
    return page, encode_cursor(start + limit) if start + limit < len(items) else None


def _act(
    service: CaseService,
    actor: Actor,
    case_id: str,
    name: str,
    version: int,
    response: Response,
    data: dict[str, Any],
    reason: str = "",
) -> CaseSnapshot:
    case = service.execute(
        actor=actor, case_id=case_id, name=name, data=data, reason=reason, expected_version=version, kind="action"
    )
    response.headers["ETag"] = etag(case.version)
    return case


def offer_public(o: Offer) -> OfferPublic:
    return OfferPublic(
        id=o.offer_id,
        amount=o.amount,
        currency=o.currency,
        terms=o.terms,
        proposed_by=o.proposed_by,
        status=o.status,
        decided_by=o.decided_by,
        created_at=o.created_at,
        decided_at=o.decided_at,
    )


def evidence_public(e: Evidence) -> EvidencePublic:
    return EvidencePublic(
        id=e.evidence_id,
        party=e.party,
        added_by=e.added_by,
        filename=e.filename,
        media_type=e.media_type,
        size=e.size,
        sha256=e.sha256,
        description=e.description,
        status=e.status,  # type: ignore[arg-type]
        added_at=e.added_at,
    )


def request_public(r: InfoRequest) -> InfoRequestPublic:
    return InfoRequestPublic(
        id=r.request_id,
        party=r.party,
        question=r.question,
        requested_by=r.requested_by,
        status=r.status,
        answer=r.answer,
        requested_at=r.requested_at,
        answered_at=r.answered_at,
    )


# --- merchant response --------------------------------------------------------------


@router.post(
    "/responses",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["merchant"],
    summary="The merchant's statement on the claim",
    responses=MUTATION_PROBLEMS,
)
def respond(
    case_id: str, body: ResponseCreate, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> CasePublic:
    return CasePublic.of(_act(service, actor, case_id, "respond", version, response, {"statement": body.statement}))


# --- messages -------------------------------------------------------------------------


@router.post(
    "/messages",
    response_model=MessagePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Write to the case (mediators may write internal notes)",
    responses=MUTATION_PROBLEMS,
)
def post_message(
    case_id: str, body: MessageCreate, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> MessagePublic:
    case = _act(service, actor, case_id, "comment", version, response, body.model_dump())
    # The message is the command's first event, right after the version the caller saw.
    seq = version + 1  # execute() acted on exactly the If-Match version
    return MessagePublic(
        id=f"msg{seq}",
        seq=seq,
        party=actor.party,
        author_id=actor.id,
        body=body.body,
        internal=body.internal,
        at=case.updated_at,
    )


@router.get(
    "/messages", response_model=MessagesPublic, summary="Messages you may read", responses=problems(401, 404, 422)
)
def list_messages(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> MessagesPublic:
    page = service.messages(actor=actor, case_id=case_id, after_seq=decode_cursor(cursor) if cursor else 0, limit=limit)
    return MessagesPublic(
        data=[
            MessagePublic(
                id=m.message_id,
                seq=m.seq,
                party=m.party,
                author_id=m.author_id,
                body=m.body,
                internal=m.internal,
                at=m.at.isoformat().replace("+00:00", "Z"),
            )
            for m in page.data
        ],
        next_cursor=page.next_cursor,
    )


# --- evidence -------------------------------------------------------------------------


@router.post(
    "/evidence",
    response_model=EvidencePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Upload evidence as a draft (submit to lock it)",
    responses=problems(401, 403, 404, 409, 412, 413, 415, 422, 428, 429),
    openapi_extra={
        "requestBody": {
            "content": {"multipart/form-data": {"encoding": {"file": {"contentType": ", ".join(UPLOAD_MEDIA_TYPES)}}}}
        }
    },
)
def upload_evidence(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    settings: SettingsDep,
    version: IfMatch,
    response: Response,
    file: Annotated[UploadFile, File(description="The evidence file.")],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> EvidencePublic:
    media_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
    if media_type not in settings.upload_media_types:
        raise ProblemError(
            415,
            "unsupported-media-type",
            f"{media_type} is not accepted; use one of {', '.join(settings.upload_media_types)}",
        )
    content = file.file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise ProblemError(
            413,
            "payload-too-large",
            f"evidence files are limited to {settings.max_upload_bytes} bytes",
            limit=settings.max_upload_bytes,
        )
    # Make sure the caller may see the case before storing anything of theirs.
    service.get(actor=actor, case_id=case_id)
    digest = service.store_blob(content)
    case = _act(
        service,
        actor,
        case_id,
        "add_evidence",
        version,
        response,
        {
            "sha256": digest,
            "size": len(content),
            "media_type": media_type,
            "filename": (file.filename or "evidence")[:255],
            "description": description,
        },
    )
    return evidence_public(case.evidence[-1])


@router.post(
    "/evidence/submit",
    response_model=EvidenceListPublic,
    summary="Submit your drafts: they become visible to all and can no longer change",
    responses=MUTATION_PROBLEMS,
)
def submit_evidence(
    case_id: str, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> EvidenceListPublic:
    case = _act(service, actor, case_id, "submit_evidence", version, response, {})
    return EvidenceListPublic(data=[evidence_public(e) for e in case.evidence if evidence_visible(actor, e)])


@router.get(
    "/evidence", response_model=EvidenceListPublic, summary="Evidence you may see", responses=problems(401, 404, 422)
)
def list_evidence(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: Cursor = None, limit: Limit = 100
) -> EvidenceListPublic:
    case = service.get(actor=actor, case_id=case_id)
    page, next_cursor = paginate([e for e in case.evidence if evidence_visible(actor, e)], cursor, limit)
    return EvidenceListPublic(data=[evidence_public(e) for e in page], next_cursor=next_cursor)


@router.get(
    "/evidence/{evidence_id}/content",
    summary="Download evidence content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(401, 404)},
)
def evidence_content(case_id: str, evidence_id: str, actor: CurrentActor, service: ServiceDep) -> Response:
    item, content = service.evidence_content(actor=actor, case_id=case_id, evidence_id=evidence_id)
    return Response(
        content,
        media_type=item.media_type,
        headers={"Content-Disposition": attachment(item.filename, item.evidence_id), "ETag": f'"{item.sha256}"'},
    )


# --- offers ---------------------------------------------------------------------------


@router.post(
    "/offers",
    response_model=OfferPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a settlement",
    responses=MUTATION_PROBLEMS,
)
def propose_offer(
    case_id: str, body: OfferCreate, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> OfferPublic:
    case = _act(service, actor, case_id, "propose_offer", version, response, body.model_dump())
    return offer_public(case.offers[-1])


@router.get("/offers", response_model=OffersPublic, summary="Offers on the case", responses=problems(401, 404, 422))
def list_offers(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: Cursor = None, limit: Limit = 100
) -> OffersPublic:
    page, next_cursor = paginate(list(service.get(actor=actor, case_id=case_id).offers), cursor, limit)
    return OffersPublic(data=[offer_public(o) for o in page], next_cursor=next_cursor)


def _decide_offer(
    name: str,
    case_id: str,
    offer_id: str,
    body: OfferDecision,
    actor: Actor,
    service: CaseService,
    version: int,
    response: Response,
) -> OfferPublic:
    case = _act(service, actor, case_id, name, version, response, {"offer_id": offer_id, "reason": body.reason})
    offer = case.offer(offer_id)
    assert offer is not None
    return offer_public(offer)


@router.post(
    "/offers/{offer_id}/accept",
    response_model=OfferPublic,
    summary="Accept the other party's offer",
    responses=MUTATION_PROBLEMS,
)
def accept_offer(
    case_id: str,
    offer_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
    body: OfferDecision | None = None,
) -> OfferPublic:
    return _decide_offer("accept_offer", case_id, offer_id, body or OfferDecision(), actor, service, version, response)


@router.post(
    "/offers/{offer_id}/reject",
    response_model=OfferPublic,
    summary="Reject the other party's offer",
    responses=MUTATION_PROBLEMS,
)
def reject_offer(
    case_id: str,
    offer_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
    body: OfferDecision | None = None,
) -> OfferPublic:
    return _decide_offer("reject_offer", case_id, offer_id, body or OfferDecision(), actor, service, version, response)


# --- information requests -------------------------------------------------------------


@router.post(
    "/info-requests",
    response_model=InfoRequestPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["mediator"],
    summary="Ask a party for information (pauses the clocks that say so)",
    responses=MUTATION_PROBLEMS,
)
def request_info(
    case_id: str,
    body: InfoRequestCreate,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
) -> InfoRequestPublic:
    case = _act(service, actor, case_id, "request_info", version, response, body.model_dump())
    return request_public(case.info_requests[-1])


@router.get(
    "/info-requests",
    response_model=InfoRequestsPublic,
    summary="Information requests",
    responses=problems(401, 404, 422),
)
def list_info_requests(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: Cursor = None, limit: Limit = 100
) -> InfoRequestsPublic:
    page, next_cursor = paginate(list(service.get(actor=actor, case_id=case_id).info_requests), cursor, limit)
    return InfoRequestsPublic(data=[request_public(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/info-requests/{request_id}/answer",
    response_model=InfoRequestPublic,
    summary="Answer an information request addressed to you",
    responses=MUTATION_PROBLEMS,
)
def answer_info(
    case_id: str,
    request_id: str,
    body: InfoAnswer,
    actor: CurrentActor,
    service: ServiceDep,
    version: IfMatch,
    response: Response,
) -> InfoRequestPublic:
    case = _act(
        service, actor, case_id, "provide_info", version, response, {"request_id": request_id, "answer": body.answer}
    )
    found = next(r for r in case.info_requests if r.request_id == request_id)
    return request_public(found)


# --- feedback -------------------------------------------------------------------------


@router.post(
    "/feedback",
    response_model=FeedbackPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Rate the handling of a closed case (once per party)",
    responses=MUTATION_PROBLEMS,
)
def feedback(
    case_id: str, body: FeedbackCreate, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> FeedbackPublic:
    case = _act(service, actor, case_id, "rate", version, response, body.model_dump())
    rating = case.ratings[-1]
    return FeedbackPublic(party=rating.party, score=rating.score, comment=rating.comment, at=rating.at)
