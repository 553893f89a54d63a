"""The policy set in force: its version and its policies with reasons."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, ServiceDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.schemas import PoliciesPublic, PolicyPublic
from policies.base import require_desk

router = APIRouter(tags=["configuration"], route_class=OneHopRoute)


@router.get(
    "/v1/policies",
    response_model=PoliciesPublic,
    summary="The active policy set (auditors, admins)",
    responses=problems(401, 403, database=False),  # the policy set is in memory
)
def active_policies(actor: CurrentActor, service: ServiceDep) -> PoliciesPublic:
    authorizer = service.authorizer
    require_desk(authorizer, actor=actor, action="view_config", now=service.clock.now())
    infos = getattr(authorizer, "policies", ())
    return PoliciesPublic(
        version=authorizer.version,
        data=[PolicyPublic.of(p) for p in infos],
    )
