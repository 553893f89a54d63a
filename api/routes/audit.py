"""Audit: point-in-time replay, verification, signed checkpoints, inclusion proofs, export.

Verification, checkpoints, proofs and export are for auditors and admins (the desk's
`audit` action); every audit read is recorded before it is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import CurrentActor, ServiceDep
from api.openapi import problems
from api.pagination import SeqPosition
from api.routes.cases import ISO_INSTANT, parse_instant
from api.routing import OneHopRoute
from api.schemas import CasePublic, EventPublic
from audit.checkpoints import get_checkpoint, inclusion_proof, list_checkpoints
from audit.export import iter_export
from audit.keys import public_key_hex
from audit.reads import record_read
from audit.replay import replay
from audit.verify import verify_database
from cases.service import CaseService, encode_cursor
from policies.base import require_desk
from workflow.model import Actor

router = APIRouter(tags=["auditor"], route_class=OneHopRoute)


class ReplayPublic(BaseModel):
    case: CasePublic
    offers: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    info_requests: list[dict[str, Any]]
    events: list[EventPublic]


class CheckpointsPublic(BaseModel):
    public_key: str | None
    data: list[dict[str, Any]]
    next_cursor: str | None


def _audit(service: CaseService, actor: Actor, what: str, **detail: Any) -> None:
    require_desk(service.authorizer, actor=actor, action="audit", now=service.clock.now())
    record_read(service.db, actor=actor, what=what, now=service.clock.now(), **detail)


@router.get(
    "/v1/cases/{case_id}/replay",
    response_model=ReplayPublic,
    tags=["cases"],
    summary="The case as it stood after event seq, or at an instant",
    responses=problems(401, 403, 404, 422),
)
def replay_case(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    seq: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    at: Annotated[str | None, Query(pattern=ISO_INSTANT, description="ISO 8601 instant")] = None,
) -> ReplayPublic:
    snapshot = service.get(actor=actor, case_id=case_id)
    service.require_visible(actor, snapshot, "view_history")
    if actor.role in ("auditor", "admin"):
        record_read(service.db, actor=actor, what="replay", now=service.clock.now(), case_id=case_id, seq=seq, at=at)
    with service.db.read() as session:
        result = replay(session, service.registry, case_id, seq=seq, at=parse_instant(at, "at"))
    then = result.snapshot
    internal_ok = service.authorizer.decide(
        actor=actor, action="view_internal", case=snapshot, now=service.clock.now()
    ).allowed
    events = [e for e in result.events if internal_ok or not (e.type == "message" and e.data.get("internal"))]
    return ReplayPublic(
        case=CasePublic.of(then),
        offers=[asdict(o) for o in then.offers],
        evidence=[asdict(e) for e in then.evidence],
        timers=[asdict(t) for t in then.timers],
        info_requests=[asdict(r) for r in then.info_requests],
        events=[EventPublic.of(e) for e in events],
    )


@router.get(
    "/v1/audit/verify", summary="Verify every chain, replay and checkpoint", responses=problems(401, 403, 404, 422)
)
def verify(
    actor: CurrentActor,
    service: ServiceDep,
    request: Request,
    case_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(pattern=ISO_INSTANT)] = None,
) -> dict[str, Any]:
    _audit(service, actor, "verify", case_id=case_id, since=since)
    settings = request.app.state.settings
    trusted = list(settings.audit_trusted_keys) or _own_key(request)
    report = verify_database(
        service.db, service.registry, case_id=case_id, since=parse_instant(since, "since"), trusted_keys=trusted
    )
    return report.to_dict()


def _own_key(request: Request) -> list[str] | None:
    key = getattr(request.app.state, "signing_key", None)
    return [public_key_hex(key)] if key is not None else None


@router.get(
    "/v1/audit/checkpoints",
    response_model=CheckpointsPublic,
    summary="Signed checkpoints, oldest first",
    responses=problems(401, 403, 422),
)
def checkpoints(
    actor: CurrentActor,
    service: ServiceDep,
    request: Request,
    after: Annotated[int, Query(ge=0, le=10**9, description="Only checkpoints numbered above this.")] = 0,
    cursor: SeqPosition = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CheckpointsPublic:
    # The cursor, like every list's, is the opaque next_cursor; `after` is a plain number.
    after = max(after, cursor or 0)
    _audit(service, actor, "checkpoints", after=after)
    with service.db.read() as session:
        found = list_checkpoints(session, after=after, limit=limit + 1)
    own = _own_key(request)
    return CheckpointsPublic(
        public_key=own[0] if own else None,
        data=[c.to_dict() for c in found[:limit]],
        next_cursor=encode_cursor(found[limit - 1].number) if len(found) > limit else None,
    )


@router.get(
    "/v1/audit/proofs/{case_id}",
    summary="Inclusion proof of a case's head in a checkpoint",
    responses=problems(401, 403, 404, 422),
)
def proof(
    case_id: str,
    actor: CurrentActor,
    service: ServiceDep,
    checkpoint: Annotated[int | None, Query(ge=1, le=10**9)] = None,
) -> dict[str, Any]:
    _audit(service, actor, "proof", case_id=case_id, checkpoint=checkpoint)
    with service.db.read() as session:
        found = inclusion_proof(session, case_id=case_id, checkpoint=checkpoint)
        signed = get_checkpoint(session, found.checkpoint).to_dict()
    return {**found.to_dict(), "signed_checkpoint": signed}


@router.get(
    "/v1/audit/export",
    summary="The log as JSON Lines (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **problems(401, 403, 404, 422)},
)
def export(
    actor: CurrentActor,
    service: ServiceDep,
    case_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(pattern=ISO_INSTANT)] = None,
) -> StreamingResponse:
    _audit(service, actor, "export", case_id=case_id, since=since)
    lines = iter_export(service.db, now=service.clock.now(), case_id=case_id, since=parse_instant(since, "since"))
    first = next(lines)  # raises NotFound for an unknown case before the response starts

    def stream() -> Iterator[bytes]:
        yield first.encode("utf-8")
        for line in lines:
            yield line.encode("utf-8")

    return StreamingResponse(
        stream(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="disputes-export.jsonl"'},
    )
