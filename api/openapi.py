"""The OpenAPI document, made to say what the server does.

FastAPI infers operations, parameters and success bodies from the routes. What it cannot
infer is added here, once, after generation (:func:`install_openapi`):

* every error is one shared ``Problem`` schema (``components/schemas/Problem``, served as
  ``application/problem+json``), so a generated client has one problem class, not one per
  operation and status;
* what the middleware answers before a route runs: 422 for unknown query parameters
  (every operation), 429 from the rate limiter (every ``/v1`` operation), 413 for an
  oversize body (every operation with a body), ``Idempotency-Key`` on every POST;
* the headers responses carry: ``ETag`` and ``Location`` where the routes set them (the
  tables below), ``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on 401, the current
  ``ETag`` on 412;
* the media types evidence content can have (the configured upload types);
* short, stable operationIds (:data:`OPERATION_IDS`; a test pins the list).

Every GET route also answers HEAD (api/headers.py); the document lists GET only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.problems import PROBLEM_JSON, STATUS_SLUGS, TITLES, TYPE_PREFIX, problem_schema

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_DESCRIPTIONS = {
    400: "The request could not be understood.",
    401: "Missing, malformed, expired or wrongly signed token.",
    403: "A policy refused; `reasons` and `policies` say which and why.",
    404: "No such case, or not one you may see.",
    409: "Not possible in the current state; `current_state` and `possible_triggers` say what is.",
    412: "Stale If-Match; `current_version` is the case's version now.",
    413: "Body or upload too large.",
    415: "Unsupported media type.",
    422: "The request is malformed (`errors` names the fields), or an unknown query parameter was given.",
    428: "If-Match is required to change a case.",
    429: "Rate limit exceeded; see Retry-After.",
    503: "The database is busy or unreachable; retry after Retry-After.",
}

# Short, stable operationIds: generated clients name their functions after them, so a rename
# is an API change (tests/api/test_openapi.py pins the list). Keyed by method and path.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "ops_live",
    ("GET", "/readyz"): "ops_ready",
    ("GET", "/metrics"): "ops_metrics",
    ("POST", "/v1/cases"): "cases_file",
    ("GET", "/v1/cases"): "cases_list",
    ("GET", "/v1/cases/{case_id}"): "cases_get",
    ("GET", "/v1/cases/{case_id}/status"): "cases_status",
    ("POST", "/v1/cases/{case_id}/transitions"): "cases_transition",
    ("GET", "/v1/cases/{case_id}/events"): "cases_events",
    ("GET", "/v1/cases/{case_id}/actions"): "cases_actions",
    ("GET", "/v1/cases/{case_id}/timers"): "cases_timers",
    ("GET", "/v1/cases/{case_id}/replay"): "cases_replay",
    ("POST", "/v1/cases/{case_id}/responses"): "cases_respond",
    ("POST", "/v1/cases/{case_id}/messages"): "cases_post_message",
    ("GET", "/v1/cases/{case_id}/messages"): "cases_list_messages",
    ("POST", "/v1/cases/{case_id}/evidence"): "cases_upload_evidence",
    ("GET", "/v1/cases/{case_id}/evidence"): "cases_list_evidence",
    ("POST", "/v1/cases/{case_id}/evidence/submit"): "cases_submit_evidence",
    ("GET", "/v1/cases/{case_id}/evidence/{evidence_id}/content"): "cases_evidence_content",
    ("POST", "/v1/cases/{case_id}/offers"): "cases_propose_offer",
    ("GET", "/v1/cases/{case_id}/offers"): "cases_list_offers",
    ("POST", "/v1/cases/{case_id}/offers/{offer_id}/accept"): "cases_accept_offer",
    ("POST", "/v1/cases/{case_id}/offers/{offer_id}/reject"): "cases_reject_offer",
    ("POST", "/v1/cases/{case_id}/info-requests"): "cases_request_info",
    ("GET", "/v1/cases/{case_id}/info-requests"): "cases_list_info_requests",
    ("POST", "/v1/cases/{case_id}/info-requests/{request_id}/answer"): "cases_answer_info_request",
    ("POST", "/v1/cases/{case_id}/feedback"): "cases_rate",
    ("GET", "/v1/queue"): "queue_list",
    ("POST", "/v1/cases/{case_id}/category"): "cases_correct_category",
    ("GET", "/v1/cases/{case_id}/rules"): "cases_rules",
    ("GET", "/v1/triage-queue"): "triage_queue",
    ("GET", "/v1/policies"): "policies_active",
    ("GET", "/v1/mediators"): "mediators_list",
    ("POST", "/v1/mediators"): "mediators_add",
    ("PATCH", "/v1/mediators/{mediator_id}"): "mediators_update",
    ("POST", "/v1/privacy/erasures"): "privacy_erase",
    ("GET", "/v1/audit/verify"): "audit_verify",
    ("GET", "/v1/audit/checkpoints"): "audit_checkpoints",
    ("GET", "/v1/audit/proofs/{case_id}"): "audit_proof",
    ("GET", "/v1/audit/export"): "audit_export",
    ("GET", "/v1/reports/merchants"): "reports_merchants",
    ("GET", "/v1/reports/hotspots"): "reports_hotspots",
    ("GET", "/v1/reports/sla"): "reports_sla",
    ("GET", "/v1/reports/satisfaction"): "reports_satisfaction",
    ("GET", "/v1/webhooks"): "webhooks_list",
    ("POST", "/v1/webhooks"): "webhooks_add",
    ("GET", "/v1/webhooks/{endpoint_id}"): "webhooks_get",
    ("PATCH", "/v1/webhooks/{endpoint_id}"): "webhooks_update",
    ("DELETE", "/v1/webhooks/{endpoint_id}"): "webhooks_remove",
    ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"): "webhooks_rotate_secret",
    ("GET", "/v1/webhooks/{endpoint_id}/failed"): "webhooks_failed",
    ("POST", "/v1/webhooks/{endpoint_id}/resend"): "webhooks_resend",
    ("GET", "/v1/notifications"): "notifications_list",
    ("GET", "/v1/notifications/unread-count"): "notifications_unread_count",
    ("POST", "/v1/notifications/read"): "notifications_mark_read",
    ("GET", "/v1/notifications/contact"): "notifications_contact",
    ("PUT", "/v1/notifications/contact"): "notifications_set_contact",
    ("GET", "/v1/reports/reviews"): "reports_reviews",
    ("GET", "/v1/reviews"): "reviews_queue",
    ("POST", "/v1/reviews/sample"): "reviews_sample",
    ("GET", "/v1/reviews/flags"): "reviews_flags",
    ("GET", "/v1/reviews/flags/{case_id}"): "reviews_second_look",
    ("POST", "/v1/reviews/flags/{case_id}/resolution"): "reviews_resolve_flag",
    ("GET", "/v1/reviews/{case_id}"): "reviews_case",
    ("POST", "/v1/reviews/{case_id}/scores"): "reviews_score",
    ("POST", "/v1/reviews/{case_id}/flag"): "reviews_flag",
}

# Success responses' headers, by operationId: the routes set them (response.headers[...]).
_CASE_VERSION = "The case's version after the request, for the next If-Match."
SUCCESS_HEADERS: dict[str, dict[str, str]] = {
    "cases_file": {"ETag": _CASE_VERSION, "Location": "The new case: /v1/cases/{id}."},
    "cases_get": {"ETag": _CASE_VERSION},
    "cases_transition": {"ETag": _CASE_VERSION},
    **{
        operation: {"ETag": _CASE_VERSION}
        for operation in (
            "cases_respond",
            "cases_post_message",
            "cases_upload_evidence",
            "cases_submit_evidence",
            "cases_propose_offer",
            "cases_accept_offer",
            "cases_reject_offer",
            "cases_request_info",
            "cases_answer_info_request",
            "cases_rate",
            "cases_correct_category",
        )
    },
    **{
        operation: {"ETag": _CASE_VERSION}
        for operation in (
            "reviews_second_look",
            "reviews_resolve_flag",
            "reviews_case",
            "reviews_score",
            "reviews_flag",
        )
    },
    "cases_evidence_content": {
        "ETag": "The content's sha256, quoted.",
        "Content-Disposition": "attachment, with the uploaded file name made safe (RFC 6266).",
    },
    "audit_export": {"Content-Disposition": 'attachment; filename="disputes-export.jsonl".'},
    "mediators_add": {"Location": "The new mediator: /v1/mediators/{id} (the id percent-encoded)."},
}
# Headers every problem of a status carries, wherever it is answered.
PROBLEM_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "Bearer, with the error (RFC 6750)."},
    412: {"ETag": "The case's current version."},
    429: {"Retry-After": "Seconds until the next request is accepted."},
    503: {"Retry-After": "Seconds to wait before retrying."},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: the same key with the same request returns the first "
        "answer (with `Idempotent-Replayed: true`) without acting again; with another request, 422. "
        "Kept 24 hours, per caller."
    ),
    # Visible ASCII, spaces only inside: servers strip a header's outer whitespace.
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]*[!-~])?$"},
}
REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same key.",
    "schema": {"type": "string", "enum": ["true"]},
}


def problems(*statuses: int, database: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the given problem statuses, with an example each; 400, and
    unless ``database`` is false 503, are added (a route that reads or writes the database
    can find it busy or gone)."""
    result: dict[int | str, dict[str, Any]] = {}
    for status in (400, *statuses, *((503,) if database else ())):
        slug = STATUS_SLUGS.get(status, "error")
        if status == 409:
            slug = "transition-not-allowed"
        result[status] = {
            "description": _DESCRIPTIONS.get(status, TITLES.get(slug, slug)),
            "content": {
                PROBLEM_JSON: {
                    "schema": PROBLEM_REF,
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


def operation_id(route: APIRoute) -> str:
    """The route's operationId from :data:`OPERATION_IDS`; a route not named there gets
    ``<first path segment>_<function name>`` (and the pinned list's test fails until it is)."""
    method = sorted(route.methods or {"GET"})[0]
    named = OPERATION_IDS.get((method, route.path_format))
    if named is not None:
        return named
    segments = [s for s in route.path_format.split("/") if s and s != "v1" and not s.startswith("{")]
    return f"{segments[0] if segments else 'ops'}_{route.name}"


def _header(description: str, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def _problem_content(response: dict[str, Any]) -> dict[str, Any]:
    """The response's problem content: the shared schema, keeping a route's own example."""
    example = next(
        (c["example"] for c in response.get("content", {}).values() if isinstance(c, dict) and "example" in c), None
    )
    content: dict[str, Any] = {"schema": PROBLEM_REF}
    if example is not None:
        content["example"] = example
    return {PROBLEM_JSON: content}


def _add_problem(responses: dict[str, Any], status: int, slug: str = "", description: str = "") -> None:
    if str(status) not in responses:
        response = problems(status, database=False)[status]
        if slug:
            response["description"] = description
            response["content"][PROBLEM_JSON]["example"].update(
                type=TYPE_PREFIX + slug, title=TITLES[slug], detail=description
            )
        responses[str(status)] = response


def _require_if_match(operation: dict[str, Any]) -> None:
    """The server answers 428 without If-Match: required, whatever the signature says."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == "if-match":
            parameter["required"] = True
            parameter["schema"] = (
                {"type": "string", "pattern": parameter["schema"].get("pattern", "")}
                if "anyOf" in parameter.get("schema", {})
                else parameter["schema"]
            )


def _complete_operation(path: str, method: str, operation: dict[str, Any], upload_types: Iterable[str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    _add_middleware_answers(path, method, operation, responses)
    _share_problem_schema(path, responses)
    _declare_success(method, operation, responses, upload_types)
    operation["responses"] = dict(sorted(responses.items()))


def _add_middleware_answers(path: str, method: str, operation: dict[str, Any], responses: dict[str, Any]) -> None:
    """What is answered before (or around) the route, whatever the route declares."""
    # Unknown or repeated query parameters are refused on every route (api.deps.reject_unknown_query).
    _add_problem(responses, 422)
    if path.startswith("/v1/"):
        _add_problem(responses, 429)  # the rate limiter covers /v1 (api/guard.py)
    if "requestBody" in operation or method == "post":
        _add_problem(responses, 413)  # the body cap applies before the route runs
    if method == "post":
        operation.setdefault("parameters", []).append(copy.deepcopy(IDEMPOTENCY_KEY))
        in_flight = "A request with this Idempotency-Key is still running."
        _add_problem(responses, 409, "idempotency-key-in-flight", in_flight)


def _share_problem_schema(path: str, responses: dict[str, Any]) -> None:
    """Every error as the one Problem, with the headers its status always carries."""
    for status, response in responses.items():
        if not (status.isdigit() and int(status) >= 400):
            continue
        response["content"] = _problem_content(response)
        for name, description in PROBLEM_HEADERS.get(int(status), {}).items():
            if int(status) != 503 or path.startswith("/v1/"):  # /readyz's 503 is a report, not a retry
                response.setdefault("headers", {})[name] = _header(description)


def _declare_success(
    method: str, operation: dict[str, Any], responses: dict[str, Any], upload_types: Iterable[str]
) -> None:
    """The success response's headers, and evidence content's media types."""
    success = next((s for s in responses if s.startswith("2")), None)
    if success is None:
        return
    headers = responses[success].setdefault("headers", {})
    for name, description in SUCCESS_HEADERS.get(operation.get("operationId", ""), {}).items():
        headers[name] = _header(description)
    if method == "post":
        headers["Idempotent-Replayed"] = {**REPLAYED, "required": False}
    if not headers:
        del responses[success]["headers"]
    if operation.get("operationId") == "cases_evidence_content":
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[success]["content"] = {media_type: copy.deepcopy(binary) for media_type in upload_types}


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """FastAPI's own 422 schemas are replaced by Problem everywhere: drop them once unused
    (the first refers to the second)."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps(document):
            del schemas[name]


def build_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, completed as the module docstring says."""
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problem_schema()
    upload_types = app.state.settings.upload_media_types
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            _require_if_match(operation)
            _complete_operation(path, method, operation, upload_types)
    _drop_unused_schemas(document)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_document`, built once on first use."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
