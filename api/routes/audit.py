"""Audit: point-in-time replay, verification, signed checkpoints, inclusion proofs, export.

Verification, checkpoints, proofs and export are for auditors and admins (the desk's
`audit` action); every audit read is recorded before it is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import CurrentActor, EngineDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import ISO_INSTANT, SeqPosition, parse_instant
from api.schemas import CasePublic, CheckpointsPublic, EventPublic, ReplayPublic
from audit.checkpoints import checkpoint_page, proof_of
from audit.export import iter_export
from audit.keys import public_key_hex
from audit.reads import record_read
from audit.replay import read_replay
from audit.verify import verify_database
from cases.queries import encode_cursor
from policies.base import require_desk
from runtime.engine import Engine
from workflow.model import Actor

router = APIRouter(tags=["auditor"], route_class=OneHopRoute)


def _audit(engine: Engine, actor: Actor, what: str, **detail: Any) -> None:
    require_desk(engine.cases.authorizer, actor=actor, action="audit", now=engine.clock.now())
    record_read(engine.db, actor=actor, what=what, now=engine.clock.now(), **detail)


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
    engine: EngineDep,
    seq: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    at: Annotated[str | None, Query(pattern=ISO_INSTANT, description="ISO 8601 instant")] = None,
) -> ReplayPublic:
    service = engine.cases
    snapshot = service.get(actor=actor, case_id=case_id)
    service.require_visible(actor, snapshot, "view_history")
    if actor.role in ("auditor", "admin"):
        record_read(engine.db, actor=actor, what="replay", now=engine.clock.now(), case_id=case_id, seq=seq, at=at)
    # The log holds markers and pseudonyms: rendered through the one reveal (values, or [erased]).
    result = service.reveal(read_replay(engine.db, engine.registry, case_id, seq=seq, at=parse_instant(at, "at")))
    then = result.snapshot
    internal_ok = service.authorizer.decide(
        actor=actor, action="view_internal", case=snapshot, now=engine.clock.now()
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
    engine: EngineDep,
    case_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(pattern=ISO_INSTANT)] = None,
) -> dict[str, Any]:
    _audit(engine, actor, "verify", case_id=case_id, since=since)
    trusted = list(engine.settings.audit_trusted_keys) or [public_key_hex(engine.signing_key)]
    report = verify_database(
        engine.db, engine.registry, case_id=case_id, since=parse_instant(since, "since"), trusted_keys=trusted
    )
    return report.to_dict()


@router.get(
    "/v1/audit/checkpoints",
    response_model=CheckpointsPublic,
    summary="Signed checkpoints, oldest first",
    responses=problems(401, 403, 422),
)
def checkpoints(
    actor: CurrentActor,
    engine: EngineDep,
    after: Annotated[int, Query(ge=0, le=10**9, description="Only checkpoints numbered above this.")] = 0,
    cursor: SeqPosition = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CheckpointsPublic:
    # The cursor, like every list's, is the opaque next_cursor; `after` is a plain number.
    after = max(after, cursor or 0)
    _audit(engine, actor, "checkpoints", after=after)
    found = checkpoint_page(engine.db, after=after, limit=limit + 1)
    return CheckpointsPublic(
        public_key=public_key_hex(engine.signing_key),
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
    engine: EngineDep,
    checkpoint: Annotated[int | None, Query(ge=1, le=10**9)] = None,
) -> dict[str, Any]:
    _audit(engine, actor, "proof", case_id=case_id, checkpoint=checkpoint)
    found, signed = proof_of(engine.db, case_id=case_id, checkpoint=checkpoint)
    return {**found.to_dict(), "signed_checkpoint": signed.to_dict()}


@router.get(
    "/v1/audit/export",
    summary="The log as JSON Lines (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **problems(401, 403, 404, 422)},
)
def export(
    actor: CurrentActor,
    engine: EngineDep,
    case_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(pattern=ISO_INSTANT)] = None,
    disclose: Annotated[
        bool,
        Query(description="Add the personal values behind the markers, with their salts (cleared auditors only)."),
    ] = False,
) -> StreamingResponse:
    _audit(engine, actor, "export", case_id=case_id, since=since, disclose=disclose)
    if disclose:
        require_desk(engine.cases.authorizer, actor=actor, action="disclose_personal", now=engine.clock.now())
    lines = iter_export(
        engine.db,
        now=engine.clock.now(),
        case_id=case_id,
        since=parse_instant(since, "since"),
        disclose=engine.cases.privacy if disclose else None,
    )
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
