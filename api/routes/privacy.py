"""Personal data: admins erase a consumer's data (docs/privacy.md)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, EngineDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.schemas.privacy import ErasureCreate, ErasurePublic
from policies.base import require_desk

router = APIRouter(prefix="/v1/privacy", tags=["configuration"], route_class=OneHopRoute)


@router.post(
    "/erasures",
    response_model=ErasurePublic,
    summary="Erase a consumer's personal data (admins)",
    description=(
        "Closed cases are erased now: their values and case keys destroyed, `personal_data_erased` appended, "
        "every hash and checkpoint unchanged. Open cases and cases under legal hold are deferred "
        "(`erasure_deferred`) and erased when they close and are released. 404: the user has no data here."
    ),
    responses=problems(401, 403, 404, 422),
)
def erase(body: ErasureCreate, actor: CurrentActor, engine: EngineDep) -> ErasurePublic:
    require_desk(engine.cases.authorizer, actor=actor, action="erase_personal", now=engine.clock.now())
    # Not an idempotent replay: erasing again finds nothing left (404) or defers what still waits.
    outcome = engine.cases.erase_subject(user_id=body.subject, basis=body.basis, approved_by=actor.id)
    return ErasurePublic.of(outcome)
