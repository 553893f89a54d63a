"""RFC 9457 problem+json for every non-2xx response.

The API's edge of the error model: every error class maps to a problem type through one table
(:data:`PROBLEM_TYPES`) looked up along the MRO; the command line maps the same classes in
cli/errors.py."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cases.idempotency import AnsweredError, KeyInFlightError, KeyReusedError
from cases.mediators import MediatorExistsError
from store.errors import AuditIntegrityError, DatabaseUnavailableError, StorageError
from workflow.errors import (
    ConfigError,
    ConflictError,
    DisputeError,
    InvalidCommandError,
    MediatorUnavailableError,
    NotFoundError,
    PolicyDeniedError,
    ReplayError,
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
    """The API's own errors, which are not domain errors (401, 428, 413, 429...): raised from
    routes, dependencies and the middleware with their status and slug."""

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


@dataclass(frozen=True)
class ProblemType:
    """How one class of error is answered: its status, its stable slug (None: the error's own
    ``type_slug``), the extension members and headers it adds, and a fixed detail where the
    error's own text is not for clients (a driver's message, say)."""

    status: int
    slug: str | None = None
    extensions: Callable[[Any], dict[str, Any]] = field(default=lambda exc: {})
    headers: Callable[[Any], dict[str, str]] = field(default=lambda exc: {})
    detail: str | None = None


RETRY_SOON = {"Retry-After": "1"}

# Error class -> problem type, looked up along the error's MRO (the most specific row wins, as
# Starlette finds exception handlers). Adding an error class means one row here, or none when
# its parent's answer fits. The command line's counterpart is cli/errors.py.
PROBLEM_TYPES: dict[type[BaseException], ProblemType] = {
    NotFoundError: ProblemType(404, "not-found"),
    ConflictError: ProblemType(
        412,
        "stale-version",
        extensions=lambda exc: {"current_version": exc.current_version},
        headers=lambda exc: {"ETag": f'"{exc.current_version}"'},
    ),
    TransitionNotAllowedError: ProblemType(
        409,
        "transition-not-allowed",
        extensions=lambda exc: {"current_state": exc.state, "possible_triggers": list(exc.possible)},
    ),
    PolicyDeniedError: ProblemType(
        403,
        "policy-denied",
        extensions=lambda exc: {
            "action": exc.action,
            "reasons": list(exc.reasons),
            "policies": list(exc.policy_ids),
        },
    ),
    # Registered, but inactive or full: the request is sound, the mediator's state refuses it.
    MediatorUnavailableError: ProblemType(
        409,
        "mediator-unavailable",
        extensions=lambda exc: {
            "mediator_id": exc.mediator_id,
            "reason": exc.reason,
            "open_load": exc.open_load,
            "capacity": exc.capacity,
        },
    ),
    MediatorExistsError: ProblemType(409, "already-exists"),
    UnknownCommandError: ProblemType(422, "validation", extensions=lambda exc: {"known": list(exc.known)}),
    InvalidCommandError: ProblemType(
        422,
        "validation",
        extensions=lambda exc: {"errors": [{"field": exc.field, "message": str(exc)}] if exc.field else []},
    ),
    KeyReusedError: ProblemType(422, "idempotency-key-reuse"),
    KeyInFlightError: ProblemType(409, "idempotency-key-in-flight", headers=lambda exc: RETRY_SOON),
    # Stored events that do not fold: the log is damaged (audit verify names where).
    ReplayError: ProblemType(500, "audit-integrity"),
    DisputeError: ProblemType(400),
    DatabaseUnavailableError: ProblemType(
        503,
        "unavailable",
        headers=lambda exc: RETRY_SOON,
        detail="the database is busy or unreachable; retry shortly",
    ),
    AuditIntegrityError: ProblemType(500, "audit-integrity"),
    StorageError: ProblemType(503, "unavailable", headers=lambda exc: RETRY_SOON),
    # A configuration the engine failed to load at request time: the server's problem, not the caller's.
    ConfigError: ProblemType(500, "internal", detail="the desk's configuration cannot be used; it has been logged"),
}


def problem_type(exc: BaseException) -> ProblemType | None:
    """The problem type of ``exc``'s class (its nearest mapped ancestor), or None when unmapped."""
    for cls in type(exc).__mro__:
        if cls in PROBLEM_TYPES:
            return PROBLEM_TYPES[cls]
    return None


def error_problem(exc: Exception, path: str) -> JSONResponse:
    """The problem response of any error the API answers on purpose: a :class:`ProblemError`
    (it carries its own status and slug) or a class of :data:`PROBLEM_TYPES`; anything else is
    a 500."""
    if isinstance(exc, ProblemError):
        return problem(exc.status, exc.slug, exc.detail, instance=path, headers=exc.headers, **exc.extensions)
    kind = problem_type(exc)
    if kind is None:
        return problem(500, "internal", "an internal error occurred; it has been logged", instance=path)
    slug = kind.slug or str(getattr(exc, "type_slug", "error"))
    detail = kind.detail or str(exc)
    return problem(kind.status, slug, detail, instance=path, headers=kind.headers(exc) or None, **kind.extensions(exc))


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
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        kind = problem_type(exc)
        if kind is not None and kind.status == 500:  # damage or a broken desk: someone must look
            log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return error_problem(exc, request.url.path)

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
    app.add_exception_handler(ProblemError, on_error)
    for mapped in PROBLEM_TYPES:
        if issubclass(mapped, Exception):
            app.add_exception_handler(mapped, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
