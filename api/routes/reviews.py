"""Third-party review (cases/review.py): reviewers' queues, the redacted case, scores and flags;
the period's sample (admins); the flags and the senior mediator's second look."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response

from api.answers import answering, case_headers
from api.deps import CurrentActor, EngineDep, IfMatch
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import parse_instant
from api.schemas.cases import CasePublic
from api.schemas.reviews import (
    FlagResolutionCreate,
    FlagsPublic,
    ReviewCasePublic,
    ReviewFlagCreate,
    ReviewQueuePublic,
    ReviewScoresCreate,
    SampleCreate,
    SamplePublic,
    SecondLookPublic,
)
from cases.review import (
    flag_case,
    flagged_cases,
    resolve_flag,
    review_case,
    review_queue,
    sample_period,
    second_look,
    submit_review,
    week_start,
)
from runtime.engine import Engine
from workflow.model import Actor, CaseSnapshot

router = APIRouter(prefix="/v1/reviews", tags=["reviews"], route_class=OneHopRoute)
CaseId = Annotated[str, Path(min_length=1, max_length=40)]
MUTATION = problems(401, 403, 404, 409, 412, 422, 428, 429)


def desk_zone(engine: Engine) -> ZoneInfo:
    """The desk's time zone (its default calendar's), in which sampling weeks start."""
    calendar = engine.cases.calendars().get("default")
    return ZoneInfo(calendar.timezone if calendar is not None and not calendar.always_open else "UTC")


@router.get("", response_model=ReviewQueuePublic, summary="The cases dealt to me for review", responses=problems(401))
def queue(
    actor: CurrentActor,
    engine: EngineDep,
    pending: Annotated[bool, Query(description="Only the cases still to review.")] = False,
) -> ReviewQueuePublic:
    """For a reviewer: the cases the desk's sampling dealt to them, those still to review first.
    Empty for every other role."""
    items = review_queue(engine.cases, actor, pending_only=pending)
    return ReviewQueuePublic.model_validate({"data": [i.to_dict() for i in items]})


@router.post(
    "/sample", response_model=SamplePublic, summary="Draw and deal a period's sample", responses=problems(401, 403, 422)
)
def sample(actor: CurrentActor, engine: EngineDep, body: SampleCreate) -> SamplePublic:
    """Admins: draw the sample of the cases closed in the period (the desk's sampling rule, a
    deterministic draw) and deal each drawn case to its reviewers. Again for the same period:
    the same draw, nothing dealt twice."""
    zone = desk_zone(engine)
    since = parse_instant(body.since, "since") or week_start(engine.clock.now(), zone)
    outcome = sample_period(engine.cases, engine.triage.review, actor, since=since, zone=zone)
    return SamplePublic.model_validate(outcome.to_dict())


@router.get("/flags", response_model=FlagsPublic, summary="Cases reviewers flagged", responses=problems(401, 403))
def flags(
    actor: CurrentActor,
    engine: EngineDep,
    open_only: Annotated[bool, Query(alias="open", description="Only flags not yet resolved.")] = False,
) -> FlagsPublic:
    """Senior mediators, auditors and admins: every flag a reviewer raised, newest first, with what
    happened to it (its resolution, the triggers fired on the case since)."""
    found = flagged_cases(engine.cases, actor, open_only=open_only)
    return FlagsPublic.model_validate({"data": [f.to_dict() for f in found]})


@router.get(
    "/flags/{case_id}",
    response_model=SecondLookPublic,
    summary="A flagged case, for a second look",
    responses=problems(401, 404),
)
def flagged_case(actor: CurrentActor, engine: EngineDep, case_id: CaseId, response: Response) -> SecondLookPublic:
    """A senior mediator's second look at a flagged case: the case, its reviews and its flags."""
    found = second_look(engine.cases, actor, case_id)
    response.headers.update(case_headers(found["case"]))
    return SecondLookPublic.model_validate({**found, "case": CasePublic.of(found["case"]).model_dump()})


@router.post(
    "/flags/{case_id}/resolution",
    response_model=CasePublic,
    summary="Resolve a reviewer's flag",
    responses=MUTATION,
)
def resolution(
    actor: CurrentActor,
    engine: EngineDep,
    case_id: CaseId,
    version: IfMatch,
    body: FlagResolutionCreate,
    response: Response,
) -> CasePublic:
    """The senior mediator's answer to a flag (upheld or dismissed, with a note); clears it."""
    with answering(200, CasePublic.of, case_headers):
        case = resolve_flag(
            engine.cases, actor, case_id, decision=body.decision, note=body.note, expected_version=version
        )
    response.headers.update(case_headers(case))
    return CasePublic.of(case)


@router.get(
    "/{case_id}", response_model=ReviewCasePublic, summary="A case dealt to me, redacted", responses=problems(401, 404)
)
def case(actor: CurrentActor, engine: EngineDep, case_id: CaseId, response: Response) -> ReviewCasePublic:
    """The case as a reviewer reads it: the consumer's id and the order reference masked, every
    text through the desk's redaction (phone numbers, e-mails, ID numbers, names), internal notes
    left out; with the desk's rubric. 404 for a case not dealt to the caller."""
    shown = review_case(engine.cases, engine.triage.review, actor, case_id)
    response.headers["etag"] = f'"{shown["version"]}"'
    return ReviewCasePublic.model_validate(shown)


@router.post("/{case_id}/scores", response_model=ReviewCasePublic, summary="Score a case", responses=MUTATION)
def scores(
    actor: CurrentActor,
    engine: EngineDep,
    case_id: CaseId,
    version: IfMatch,
    body: ReviewScoresCreate,
    response: Response,
) -> ReviewCasePublic:
    """Record the reviewer's scores (every rubric item, on the rubric's scale) and comment, as a
    ``review_submitted`` event on the case's log. Once per reviewer and case."""
    with answering(200, *_as_reviewed(engine, actor)):
        submit_review(
            engine.cases,
            engine.triage.review,
            actor,
            case_id,
            scores=body.scores,
            comment=body.comment,
            expected_version=version,
        )
    return _reviewed(engine, actor, case_id, response)


@router.post(
    "/{case_id}/flag", response_model=ReviewCasePublic, summary="Flag a case for a second look", responses=MUTATION
)
def flag(
    actor: CurrentActor,
    engine: EngineDep,
    case_id: CaseId,
    version: IfMatch,
    body: ReviewFlagCreate,
    response: Response,
) -> ReviewCasePublic:
    """Ask for a senior mediator's second look, with the reason (a ``review_flagged`` event)."""
    with answering(200, *_as_reviewed(engine, actor)):
        flag_case(engine.cases, actor, case_id, reason=body.reason, expected_version=version)
    return _reviewed(engine, actor, case_id, response)


def _as_reviewed(
    engine: Engine, actor: Actor
) -> tuple[Callable[[CaseSnapshot], ReviewCasePublic], Callable[[CaseSnapshot], dict[str, str]]]:
    """How a reviewer's command answers with an Idempotency-Key: the case as the reviewer now
    reads it, rendered in the command's transaction (cases/review.py), and its version."""

    def view(case: CaseSnapshot) -> ReviewCasePublic:
        return ReviewCasePublic.model_validate(review_case(engine.cases, engine.triage.review, actor, case.id))

    return view, case_headers


def _reviewed(engine: Engine, actor: Actor, case_id: str, response: Response) -> ReviewCasePublic:
    """The answer without an Idempotency-Key: the same view, read after the command."""
    shown = review_case(engine.cases, engine.triage.review, actor, case_id)
    response.headers["etag"] = f'"{shown["version"]}"'
    return ReviewCasePublic.model_validate(shown)
