"""RFC 9457 problem+json for every non-2xx response, one handler per error family."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import UnauthenticatedError
from cases.idempotency import AnsweredError, KeyInFlightError, KeyReusedError
from store.db import DatabaseUnavailableError
from workflow.errors import (
    ConflictError,
    DisputeError,
    InvalidCommandError,
    MediatorUnavailableError,
    NotFoundError,
    PolicyDeniedError,
    TransitionNotAllowedError,
    UnknownCommandError,
)

log = logging.getLogger("disputes.api")
PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:dispute-engine:problem:"

# Stable problem type per kind; the slug is the contract clients switch on.
STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "policy-denied",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "stale-version",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    428: "precondition-required",
    429: "rate-limited",
    500: "internal",
    503: "unavailable",
}
TITLES = {
    "not-found": "Not found",
    "policy-denied": "Refused by policy",
    "transition-not-allowed": "Not possible in the current state",
    "stale-version": "The case has changed since you read it",
    "precondition-required": "If-Match header required",
    "validation": "Invalid request",
    "idempotency-key-reuse": "Idempotency key reused with a different request",
    "already-exists": "Already exists",
    "mediator-unavailable": "The mediator cannot take the case",
    "idempotency-key-in-flight": "A request with this idempotency key is still being processed",
    "payload-too-large": "Payload too large",
    "unauthenticated": "Authentication required",
    "rate-limited": "Too many requests",
    "unavailable": "Service temporarily unavailable",
    "internal": "Internal error",
}


class BodyTooLargeError(Exception):
    """A streamed request body passed its cap (raised from the body reader, answered with 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


class ProblemError(Exception):
    """Raise from routes for problems that are not domain errors (428, 413, 429...)."""

    def __init__(
        self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": TITLES.get(slug, slug.replace("-", " ").capitalize()),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_schema() -> dict[str, Any]:
    """The one schema of every problem (``components/schemas/Problem``): RFC 9457's members
    and the extensions some kinds add (each optional; others may come)."""
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "title": "Problem",
        "description": "RFC 9457 problem details. `type` is stable per kind of problem: switch on it.",
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": "urn:dispute-engine:problem:<kind>"},
            "title": {"type": "string"},
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "The request path."},
            "errors": {
                "description": "422: the fields at fault.",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
            "current_version": {"type": "integer", "description": "412: the case's version now."},
            "current_state": {"type": "string", "description": "409: the case's state now."},
            "possible_triggers": {**strings, "description": "409: what the state allows."},
            "action": {"type": "string", "description": "403: the refused action."},
            "reasons": {**strings, "description": "403: the deciding policies' reasons."},
            "policies": {**strings, "description": "403: the deciding policies' ids."},
            "known": {**strings, "description": "422: the names that would have been understood."},
            "limit": {"type": "integer", "description": "413: the size limit in bytes."},
        },
        "additionalProperties": True,
    }


def domain_problem(exc: DisputeError, path: str) -> JSONResponse:
    """Translate a domain error to its problem response."""
    if isinstance(exc, NotFoundError):
        return problem(404, "not-found", str(exc), instance=path)
    if isinstance(exc, ConflictError):
        return problem(
            412,
            "stale-version",
            str(exc),
            instance=path,
            current_version=exc.current_version,
            headers={"ETag": f'"{exc.current_version}"'},
        )
    if isinstance(exc, TransitionNotAllowedError):
        return problem(
            409,
            "transition-not-allowed",
            str(exc),
            instance=path,
            current_state=exc.state,
            possible_triggers=list(exc.possible),
        )
    if isinstance(exc, PolicyDeniedError):
        return problem(
            403,
            "policy-denied",
            str(exc),
            instance=path,
            action=exc.action,
            reasons=list(exc.reasons),
            policies=list(exc.policy_ids),
        )
    if isinstance(exc, MediatorUnavailableError):
        # Registered, but inactive or full: the request is sound, the mediator's state refuses it.
        return problem(
            409,
            "mediator-unavailable",
            str(exc),
            instance=path,
            mediator_id=exc.mediator_id,
            reason=exc.reason,
            open_load=exc.open_load,
            capacity=exc.capacity,
        )
    if isinstance(exc, UnknownCommandError):
        return problem(422, "validation", str(exc), instance=path, known=list(exc.known))
    if isinstance(exc, InvalidCommandError):
        errors = [{"field": exc.field, "message": str(exc)}] if exc.field else []
        return problem(422, "validation", str(exc), instance=path, errors=errors)
    if isinstance(exc, UnauthenticatedError):
        return problem(
            401,
            "unauthenticated",
            str(exc),
            instance=path,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if isinstance(exc, KeyReusedError):
        return problem(422, exc.type_slug, str(exc), instance=path)
    if isinstance(exc, KeyInFlightError):
        return problem(409, exc.type_slug, str(exc), instance=path, headers={"Retry-After": "1"})
    if isinstance(exc, DatabaseUnavailableError):
        return problem(
            503,
            "unavailable",
            "the database is busy or unreachable; retry shortly",
            instance=path,
            headers={"Retry-After": "1"},
        )
    return problem(400, exc.type_slug, str(exc), instance=path)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the API document declares for ``path``, and HEAD beside GET (for 405's
    Allow header)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")
            declared = {m.upper() for m in item}
            if "GET" in declared:
                declared.add("HEAD")  # api.headers.HeadAsGet answers it
            table.append((pattern, sorted(declared)))
        app.state.allow_table = table
    for pattern, methods in table:
        if pattern.match(path):
            return methods
    return []


def _field_location(loc: Any) -> tuple[Any, ...]:
    parts = tuple(loc)
    return parts[1:] if parts[:1] == ("body",) else parts


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DisputeError)
        return domain_problem(exc, request.url.path)

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem(
            exc.status, exc.slug, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extensions
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                # The location without its leading "body" (a field may be named body itself).
                "field": ".".join(str(p) for p in _field_location(err.get("loc", ()))),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return problem(
            422, "validation", "the request does not match the schema", instance=request.url.path, errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = STATUS_SLUGS.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; list them all.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.url.path))}
        return problem(exc.status_code, slug, str(exc.detail), instance=request.url.path, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "an internal error occurred; it has been logged", instance=request.url.path)

    async def on_too_large(request: Request, exc: Exception) -> JSONResponse:
        return problem(413, "payload-too-large", str(exc), instance=request.url.path)

    async def on_answered(request: Request, exc: Exception) -> Response:
        # A duplicate of an idempotent request that another one answered while this one waited.
        assert isinstance(exc, AnsweredError)
        stored = exc.response
        headers = {**json.loads(stored.headers), "idempotent-replayed": "true"}
        return Response(stored.body, status_code=stored.status, headers=headers)

    app.add_exception_handler(AnsweredError, on_answered)
    app.add_exception_handler(BodyTooLargeError, on_too_large)
    app.add_exception_handler(DisputeError, on_domain)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
