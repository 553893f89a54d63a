"""OpenAPI helpers: the problem responses each route can return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import STATUS_SLUGS, TITLES, TYPE_PREFIX, problem_schema

_DESCRIPTIONS = {
    400: "The body could not be parsed.",
    401: "Missing, malformed, expired or wrongly signed token.",
    403: "A policy refused; `reasons` and `policies` say which and why.",
    404: "No such case, or not one you may see.",
    409: "Not possible in the current state; `current_state` and `possible_triggers` say what is.",
    412: "Stale If-Match; `current_version` is the case's version now.",
    413: "Body or upload too large.",
    415: "Unsupported media type.",
    422: "The request is malformed; `errors` names the fields.",
    428: "If-Match is required to change a case.",
    429: "Rate limit exceeded; see Retry-After.",
    503: "The database is busy or unreachable; retry after Retry-After.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the given problem statuses, with an example each."""
    result: dict[int | str, dict[str, Any]] = {}
    for status in (400, *statuses, 503):
        slug = STATUS_SLUGS.get(status, "error")
        if status == 409:
            slug = "transition-not-allowed"
        result[status] = {
            "description": _DESCRIPTIONS.get(status, TITLES.get(slug, slug)),
            "content": {
                "application/problem+json": {
                    "schema": problem_schema(),
                    "example": {
                        "type": TYPE_PREFIX + slug,
                        "title": TITLES.get(slug, slug),
                        "status": status,
                        "detail": _DESCRIPTIONS.get(status, ""),
                    },
                }
            },
        }
    return result


def install_openapi(app: FastAPI) -> None:
    """Generate the document once, then state what FastAPI cannot infer: If-Match is
    required on every mutation of a case (the server answers 428 without it)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        for item in document.get("paths", {}).values():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "header" and parameter.get("name", "").lower() == "if-match":
                        parameter["required"] = True
                        parameter["schema"] = (
                            {"type": "string", "pattern": parameter["schema"].get("pattern", "")}
                            if "anyOf" in parameter.get("schema", {})
                            else parameter["schema"]
                        )
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
