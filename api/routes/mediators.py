"""Mediators the router assigns cases to: admins manage them, auditors may read them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Response, status

from api.answers import answering
from api.deps import CurrentActor, EngineDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.problems import TYPE_PREFIX, ProblemError
from api.schemas import MediatorCreate, MediatorPublic, MediatorsPublic, MediatorUpdate
from cases.mediators import Mediator, change_mediator, register_mediator, registered_mediators
from policies.base import require_desk

router = APIRouter(prefix="/v1/mediators", tags=["configuration"], route_class=OneHopRoute)


@router.get(
    "",
    response_model=MediatorsPublic,
    summary="Every mediator with their open load (auditors, admins)",
    responses=problems(401, 403),
)
def mediators(actor: CurrentActor, engine: EngineDep) -> MediatorsPublic:
    require_desk(engine.cases.authorizer, actor=actor, action="view_config", now=engine.clock.now())
    found = registered_mediators(engine.db, weight=engine.cases.weight)
    return MediatorsPublic(data=[MediatorPublic.of(m) for m in found])


_EXISTS: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "A mediator with this id already exists; change it with PATCH.",
        "content": {
            "application/problem+json": {
                "example": {
                    "type": TYPE_PREFIX + "already-exists",
                    "title": "Already exists",
                    "status": 409,
                    "detail": "mediator 'med-li' already exists; change it with PATCH /v1/mediators/med-li",
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MediatorPublic,
    summary="Register a mediator (admins)",
    responses={**problems(401, 403, 422), **_EXISTS},
)
def add(body: MediatorCreate, actor: CurrentActor, engine: EngineDep, response: Response) -> MediatorPublic:
    now = engine.clock.now()
    require_desk(engine.cases.authorizer, actor=actor, action="manage_mediators", now=now)
    fields: dict[str, Any] = body.model_dump(exclude={"id"})
    # With an Idempotency-Key, the key and this answer commit with the registration. A second
    # registration of the id is MediatorExistsError: 409 already-exists (api/problems.py).
    with answering(status.HTTP_201_CREATED, MediatorPublic.of, _location):
        created = register_mediator(
            engine.db,
            mediator_id=body.id,
            fields=fields,
            calendars=engine.cases.calendars(),
            categories=engine.cases.categories.ids,
            now=now,
            weight=engine.cases.weight,
        )
    response.headers.update(_location(created))
    return MediatorPublic.of(created)


def _location(created: Mediator) -> dict[str, str]:
    # Ids are user ids, any text: the header carries them percent-encoded (headers are Latin-1).
    return {"location": f"/v1/mediators/{quote(created.id, safe='')}"}


@router.patch(
    "/{mediator_id}",
    response_model=MediatorPublic,
    summary="Change a mediator (admins)",
    responses=problems(401, 403, 404, 422),
)
def change(mediator_id: str, body: MediatorUpdate, actor: CurrentActor, engine: EngineDep) -> MediatorPublic:
    now = engine.clock.now()
    require_desk(engine.cases.authorizer, actor=actor, action="manage_mediators", now=now)
    fields = body.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in fields.items() if value is None)
    if nulls:
        raise ProblemError(
            422,
            "validation",
            f"{', '.join(nulls)} cannot be null; leave a field out to keep it",
            errors=[{"field": name, "message": "cannot be null"} for name in nulls],
        )
    updated = change_mediator(
        engine.db,
        mediator_id=mediator_id,
        fields=fields,
        calendars=engine.cases.calendars(),
        categories=engine.cases.categories.ids,
        now=now,
        weight=engine.cases.weight,
    )
    return MediatorPublic.of(updated)
