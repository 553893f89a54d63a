"""What the parties and mediators do on a case besides moving it: responses, messages,
evidence, offers, information requests, feedback. Each is one workflow action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from api.answers import answering, case_headers
from api.deps import CurrentActor, IfMatch, ServiceDep, SettingsDep
from api.headers import attachment
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import SeqPosition
from api.problems import ProblemError
from api.schemas import (
    TEXT_PATTERN,
    TEXT_RULES,
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
from cases.queries import encode_cursor, evidence_visible
from cases.service import CaseService
from runtime.settings import Settings
from workflow.model import Actor, CaseSnapshot

router = APIRouter(prefix="/v1/cases/{case_id}", tags=["cases"], route_class=OneHopRoute)
UPLOAD_MEDIA_TYPES = Settings.model_fields["upload_media_types"].default
MUTATION_PROBLEMS = problems(401, 403, 404, 409, 412, 422, 428, 429)


Limit = Annotated[int, Query(ge=1, le=200)]
T = TypeVar("T")
M = TypeVar("M")
CREATED = status.HTTP_201_CREATED


def paginate(items: list[T], start: int | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a case's (short, ordered) sub-collection; the cursor is the index it starts at."""
    start = start or 0
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
    view: Callable[[CaseSnapshot], M],
    status_code: int = status.HTTP_200_OK,
) -> M:
    """Perform the action and answer with ``view`` of the case it leaves (rendered in the
    command's transaction too when the request carries an Idempotency-Key: api/answers.py)."""
    with answering(status_code, view, case_headers):
        case = service.execute(
            actor=actor, case_id=case_id, name=name, data=data, expected_version=version, kind="action"
        )
    response.headers.update(case_headers(case))
    return view(case)


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
    return _act(
        service, actor, case_id, "respond", version, response, {"statement": body.statement}, CasePublic.of, CREATED
    )


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
    # The message is the command's first event, right after the version the caller saw.
    seq = version + 1  # execute() acted on exactly the If-Match version

    def view(case: CaseSnapshot) -> MessagePublic:
        return MessagePublic(
            id=f"msg{seq}",
            seq=seq,
            party=actor.party,
            author_id=actor.id,
            body=body.body,
            internal=body.internal,
            at=case.updated_at,
        )

    return _act(service, actor, case_id, "comment", version, response, body.model_dump(), view, CREATED)


@router.get(
    "/messages", response_model=MessagesPublic, summary="Messages you may read", responses=problems(401, 404, 422)
)
def list_messages(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    cursor: SeqPosition = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> MessagesPublic:
    page = service.messages(actor=actor, case_id=case_id, after_seq=cursor or 0, limit=limit)
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
    description: Annotated[str, Form(max_length=2000, pattern=TEXT_PATTERN, description=TEXT_RULES)] = "",
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
    if not content:
        raise ProblemError(
            422,
            "validation",
            "the evidence file is empty",
            errors=[{"field": "file", "message": "the evidence file is empty"}],
        )
    # Decided like any command (404, 412, 409, 403, 422 before anything is written); the
    # content is stored with the evidence event, in its transaction, never before; with an
    # Idempotency-Key the answer is rendered and stored in that transaction too.
    with answering(CREATED, _newest_evidence, case_headers):
        case = service.add_evidence(
            actor=actor,
            case_id=case_id,
            content=content,
            media_type=media_type,
            filename=(file.filename or "evidence")[:255],
            description=description,
            expected_version=version,
        )
    response.headers.update(case_headers(case))
    return _newest_evidence(case)


def _newest_evidence(case: CaseSnapshot) -> EvidencePublic:
    return EvidencePublic.of(case.evidence[-1])


@router.post(
    "/evidence/submit",
    response_model=EvidenceListPublic,
    summary="Submit your drafts: they become visible to all and can no longer change",
    responses=MUTATION_PROBLEMS,
)
def submit_evidence(
    case_id: str, actor: CurrentActor, service: ServiceDep, version: IfMatch, response: Response
) -> EvidenceListPublic:
    def view(case: CaseSnapshot) -> EvidenceListPublic:
        return EvidenceListPublic(data=[EvidencePublic.of(e) for e in case.evidence if evidence_visible(actor, e)])

    return _act(service, actor, case_id, "submit_evidence", version, response, {}, view)


@router.get(
    "/evidence", response_model=EvidenceListPublic, summary="Evidence you may see", responses=problems(401, 404, 422)
)
def list_evidence(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: SeqPosition = None, limit: Limit = 100
) -> EvidenceListPublic:
    case = service.get(actor=actor, case_id=case_id)
    page, next_cursor = paginate([e for e in case.evidence if evidence_visible(actor, e)], cursor, limit)
    return EvidenceListPublic(data=[EvidencePublic.of(e) for e in page], next_cursor=next_cursor)


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
    return _act(service, actor, case_id, "propose_offer", version, response, body.model_dump(), _newest_offer, CREATED)


def _newest_offer(case: CaseSnapshot) -> OfferPublic:
    return OfferPublic.of(case.offers[-1])


@router.get("/offers", response_model=OffersPublic, summary="Offers on the case", responses=problems(401, 404, 422))
def list_offers(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: SeqPosition = None, limit: Limit = 100
) -> OffersPublic:
    page, next_cursor = paginate(list(service.get(actor=actor, case_id=case_id).offers), cursor, limit)
    return OffersPublic(data=[OfferPublic.of(o) for o in page], next_cursor=next_cursor)


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
    def view(case: CaseSnapshot) -> OfferPublic:
        offer = case.offer(offer_id)
        assert offer is not None
        return OfferPublic.of(offer)

    return _act(service, actor, case_id, name, version, response, {"offer_id": offer_id, "reason": body.reason}, view)


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
    return _act(service, actor, case_id, "request_info", version, response, body.model_dump(), _newest_request, CREATED)


def _newest_request(case: CaseSnapshot) -> InfoRequestPublic:
    return InfoRequestPublic.of(case.info_requests[-1])


@router.get(
    "/info-requests",
    response_model=InfoRequestsPublic,
    summary="Information requests",
    responses=problems(401, 404, 422),
)
def list_info_requests(
    case_id: str, actor: CurrentActor, service: ServiceDep, cursor: SeqPosition = None, limit: Limit = 100
) -> InfoRequestsPublic:
    page, next_cursor = paginate(list(service.get(actor=actor, case_id=case_id).info_requests), cursor, limit)
    return InfoRequestsPublic(data=[InfoRequestPublic.of(r) for r in page], next_cursor=next_cursor)


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
    def view(case: CaseSnapshot) -> InfoRequestPublic:
        return InfoRequestPublic.of(next(r for r in case.info_requests if r.request_id == request_id))

    data = {"request_id": request_id, "answer": body.answer}
    return _act(service, actor, case_id, "provide_info", version, response, data, view)


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
    return _act(service, actor, case_id, "rate", version, response, body.model_dump(), _newest_rating, CREATED)


def _newest_rating(case: CaseSnapshot) -> FeedbackPublic:
    rating = case.ratings[-1]
    return FeedbackPublic(party=rating.party, score=rating.score, comment=rating.comment, at=rating.at)
