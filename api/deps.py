"""Dependencies that resolve (or fail) once: the engine, its case service, the caller, the If-Match version.

They are ``async def`` although none of them awaits: FastAPI runs a plain ``def``
dependency in the thread pool, and five such hops per request (each a hand-off to a
worker thread and back under the GIL) cost more than the command's own database work
(bench B2). None of them blocks: the token is verified in memory (usually already by
the guard middleware), the rest read request state."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import VERIFIED_ACTOR, UnauthenticatedError, actor_from_token
from api.problems import ProblemError
from cases.service import CaseService
from runtime.engine import Engine
from runtime.settings import Settings
from workflow.model import Actor

_bearer = HTTPBearer(auto_error=False, description="JWT with claims sub, role, merchant_id (merchants), exp.")
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,12})"?\s*$')


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_service(request: Request) -> CaseService:
    engine: Engine = request.app.state.engine
    return engine.cases


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
ServiceDep = Annotated[CaseService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def current_actor(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise UnauthenticatedError("a bearer token is required")
    if credentials.scheme.lower() != "bearer":
        raise UnauthenticatedError("use the Bearer scheme")
    verified = getattr(request.state, VERIFIED_ACTOR, None)
    if verified is not None and verified[0] == request.headers.get("authorization"):
        actor: Actor = verified[1]
        return actor
    return actor_from_token(credentials.credentials, settings)


CurrentActor = Annotated[Actor, Depends(current_actor)]


IF_MATCH_PATTERN = r'^\s*(W/)?"?[0-9]{1,12}"?\s*$'


async def required_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The case version you last saw, as its ETag (e.g. "3"). Required: without it, 428.',
            json_schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
) -> int:
    if if_match is None:
        raise ProblemError(428, "precondition-required", "send If-Match with the case's ETag to change it")
    match = _ETAG.match(if_match)
    if not match:
        raise ProblemError(428, "precondition-required", f'If-Match {if_match!r} is not a case ETag such as "3"')
    return int(match.group(1))


IfMatch = Annotated[int, Depends(required_version)]


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """Unknown or repeated query parameters are refused like unknown body fields (a typo in
    a filter must not silently return everything)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _query_names(dependant)
    repeated = sorted({key for key in request.query_params if len(request.query_params.getlist(key)) > 1})
    if repeated:
        # Every parameter of this API is a single value; silently taking the last would hide mistakes.
        raise ProblemError(
            422,
            "validation",
            f"query parameter(s) given more than once: {', '.join(repeated)}",
            errors=[{"field": name, "message": "given more than once"} for name in repeated],
        )
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ProblemError(
            422,
            "validation",
            f"unknown query parameter(s): {', '.join(unknown)}",
            errors=[{"field": name, "message": "unknown query parameter"} for name in unknown],
        )


def etag(version: int) -> str:
    return f'"{version}"'
