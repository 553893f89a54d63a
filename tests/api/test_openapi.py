"""The OpenAPI document says what the server does: one Problem schema, the statuses and
headers the middleware and routes really send, short and stable operationIds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from api.openapi import PROBLEM_REF, SUCCESS_HEADERS
from tests.support.actors import T0
from tests.support.api import FILING, Api

# Renaming one of these renames a function in every generated client: do it on purpose.
PINNED_OPERATION_IDS = {
    "GET /healthz": "ops_live",
    "GET /readyz": "ops_ready",
    "GET /metrics": "ops_metrics",
    "POST /v1/cases": "cases_file",
    "GET /v1/cases": "cases_list",
    "GET /v1/cases/{case_id}": "cases_get",
    "GET /v1/cases/{case_id}/status": "cases_status",
    "POST /v1/cases/{case_id}/transitions": "cases_transition",
    "GET /v1/cases/{case_id}/events": "cases_events",
    "GET /v1/cases/{case_id}/actions": "cases_actions",
    "GET /v1/cases/{case_id}/timers": "cases_timers",
    "GET /v1/cases/{case_id}/replay": "cases_replay",
    "POST /v1/cases/{case_id}/responses": "cases_respond",
    "POST /v1/cases/{case_id}/messages": "cases_post_message",
    "GET /v1/cases/{case_id}/messages": "cases_list_messages",
    "POST /v1/cases/{case_id}/evidence": "cases_upload_evidence",
    "GET /v1/cases/{case_id}/evidence": "cases_list_evidence",
    "POST /v1/cases/{case_id}/evidence/submit": "cases_submit_evidence",
    "GET /v1/cases/{case_id}/evidence/{evidence_id}/content": "cases_evidence_content",
    "POST /v1/cases/{case_id}/offers": "cases_propose_offer",
    "GET /v1/cases/{case_id}/offers": "cases_list_offers",
    "POST /v1/cases/{case_id}/offers/{offer_id}/accept": "cases_accept_offer",
    "POST /v1/cases/{case_id}/offers/{offer_id}/reject": "cases_reject_offer",
    "POST /v1/cases/{case_id}/info-requests": "cases_request_info",
    "GET /v1/cases/{case_id}/info-requests": "cases_list_info_requests",
    "POST /v1/cases/{case_id}/info-requests/{request_id}/answer": "cases_answer_info_request",
    "POST /v1/cases/{case_id}/feedback": "cases_rate",
    "GET /v1/queue": "queue_list",
    "POST /v1/cases/{case_id}/category": "cases_correct_category",
    "GET /v1/cases/{case_id}/rules": "cases_rules",
    "GET /v1/triage-queue": "triage_queue",
    "GET /v1/policies": "policies_active",
    "GET /v1/mediators": "mediators_list",
    "POST /v1/mediators": "mediators_add",
    "PATCH /v1/mediators/{mediator_id}": "mediators_update",
    "POST /v1/privacy/erasures": "privacy_erase",
    "GET /v1/audit/verify": "audit_verify",
    "GET /v1/audit/checkpoints": "audit_checkpoints",
    "GET /v1/audit/proofs/{case_id}": "audit_proof",
    "GET /v1/audit/export": "audit_export",
    "GET /v1/reports/merchants": "reports_merchants",
    "GET /v1/reports/hotspots": "reports_hotspots",
    "GET /v1/reports/sla": "reports_sla",
    "GET /v1/reports/satisfaction": "reports_satisfaction",
    "GET /v1/webhooks": "webhooks_list",
    "POST /v1/webhooks": "webhooks_add",
    "GET /v1/webhooks/{endpoint_id}": "webhooks_get",
    "PATCH /v1/webhooks/{endpoint_id}": "webhooks_update",
    "DELETE /v1/webhooks/{endpoint_id}": "webhooks_remove",
    "POST /v1/webhooks/{endpoint_id}/rotate-secret": "webhooks_rotate_secret",
    "GET /v1/webhooks/{endpoint_id}/failed": "webhooks_failed",
    "POST /v1/webhooks/{endpoint_id}/resend": "webhooks_resend",
    "GET /v1/notifications": "notifications_list",
    "GET /v1/notifications/unread-count": "notifications_unread_count",
    "POST /v1/notifications/read": "notifications_mark_read",
    "GET /v1/notifications/contact": "notifications_contact",
    "PUT /v1/notifications/contact": "notifications_set_contact",
    "GET /v1/reports/reviews": "reports_reviews",
    "GET /v1/reviews": "reviews_queue",
    "POST /v1/reviews/sample": "reviews_sample",
    "GET /v1/reviews/flags": "reviews_flags",
    "GET /v1/reviews/flags/{case_id}": "reviews_second_look",
    "POST /v1/reviews/flags/{case_id}/resolution": "reviews_resolve_flag",
    "GET /v1/reviews/{case_id}": "reviews_case",
    "POST /v1/reviews/{case_id}/scores": "reviews_score",
    "POST /v1/reviews/{case_id}/flag": "reviews_flag",
}
OPENAPI_FILING: dict[str, Any] = {**FILING, "claim": {"amount": 10000, "currency": "CNY"}}
# Headers whose presence the document declares per response.
DECLARED_HEADERS = ("etag", "location", "content-disposition", "retry-after", "www-authenticate")


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    answer = api.client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def test_operation_ids_are_short_stable_and_pinned(document: dict[str, Any]) -> None:
    ids = {label: operation["operationId"] for label, operation in _operations(document).items()}
    assert ids == PINNED_OPERATION_IDS
    # Request bodies' schemas are named after them too, not after the URL.
    assert "Body_cases_upload_evidence" in document["components"]["schemas"]


def test_every_error_is_the_one_shared_problem_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    errors = 0
    for label, operation in _operations(document).items():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert list(response["content"]) == ["application/problem+json"], (label, status)
                assert response["content"]["application/problem+json"]["schema"] == PROBLEM_REF, (label, status)
    assert errors > 250


def test_middleware_answers_are_documented(document: dict[str, Any]) -> None:
    for label, operation in _operations(document).items():
        method, path = label.split(" ", 1)
        responses = operation["responses"]
        assert "422" in responses, label  # unknown query parameters, on every route
        if path.startswith("/v1/"):
            assert responses["429"]["headers"]["Retry-After"]["required"] is True, label
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True, label
            if label != "GET /v1/policies":  # the only /v1 route that never touches the database
                assert responses["503"]["headers"]["Retry-After"]["required"] is True, label
        if method == "POST":
            assert "413" in responses and "409" in responses, label
            keys = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
            assert keys and keys[0]["in"] == "header" and keys[0]["required"] is False, label
        if "412" in responses:
            assert responses["412"]["headers"]["ETag"]["required"] is True, label
    assert "429" not in _operations(document)["GET /healthz"]["responses"]


def test_only_v1_is_rate_limited(api_factory: Callable[..., Api]) -> None:
    """What the document says of 429: every /v1 route may answer it, the probes never do."""
    api = api_factory({"rate_limit_per_minute": 2})
    assert [api.client.get("/healthz").status_code for _ in range(5)] == [200] * 5
    assert [api.client.get("/openapi.json").status_code for _ in range(5)] == [200] * 5
    consumer = api.token("c-1", "consumer")
    assert [api.client.get("/v1/cases", headers=consumer).status_code for _ in range(3)] == [200, 200, 429]


def test_evidence_content_documents_the_media_types_it_can_return(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"upload_media_types": ("text/plain", "image/png")})
    operation = _operations(api.client.get("/openapi.json").json())[
        "GET /v1/cases/{case_id}/evidence/{evidence_id}/content"
    ]
    ok = operation["responses"]["200"]
    assert set(ok["content"]) == {"text/plain", "image/png"}
    assert all(c["schema"] == {"type": "string", "format": "binary"} for c in ok["content"].values())
    assert set(ok["headers"]) == {"ETag", "Content-Disposition"}


def _operation_of(document: dict[str, Any], method: str, url: str) -> tuple[str, dict[str, Any]]:
    path = url.split("?")[0]
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return f"{method} {template}", item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


def test_the_headers_responses_carry_are_the_documented_ones(api: Api, document: dict[str, Any]) -> None:
    """A walk through a case's life: every header of DECLARED_HEADERS a response carries is
    declared for its operation and status, and every required one declared is sent."""
    consumer, merchant = api.token("c-1", "consumer"), api.token("mu-1", "merchant", "m-1")
    mediator, auditor = api.token("med-1", "mediator"), api.token("aud-1", "auditor")
    admin = api.token("adm-1", "admin")
    seen: set[str] = set()
    version = {"now": 0}  # the case's version, from the last ETag of a change

    def call(method: str, url: str, headers: dict[str, str], *, change: bool = False, **kwargs: Any) -> Any:
        if change:
            headers = {**headers, "If-Match": f'"{version["now"]}"'}
        answer = api.client.request(method, url, headers=headers, **kwargs)
        label, operation = _operation_of(document, method, url)
        declared = operation["responses"][str(answer.status_code)].get("headers", {})
        sent = {name for name in DECLARED_HEADERS if name in answer.headers}
        assert sent <= {name.lower() for name in declared}, (label, answer.status_code, sent)
        required = {name.lower() for name, spec in declared.items() if spec.get("required")}
        assert required <= sent, (label, answer.status_code, required - sent)
        seen.add(f"{operation['operationId']} {answer.status_code}")
        if (change or label == "POST /v1/cases") and answer.status_code < 300:
            version["now"] = int(answer.headers["ETag"].strip('"'))
        return answer

    base = "/v1/cases/" + call("POST", "/v1/cases", consumer, json=OPENAPI_FILING).json()["id"]
    call("POST", f"{base}/transitions", mediator, change=True, json={"trigger": "assign"})
    fix = {"category": "counterfeit", "reason": "the brand says it never made this batch"}
    call("POST", f"{base}/category", mediator, change=True, json=fix)
    stale = call("POST", f"{base}/transitions", {**mediator, "If-Match": '"1"'}, json={"trigger": "escalate"})
    assert stale.status_code == 412 and stale.headers["ETag"] == f'"{version["now"]}"'
    call("GET", base, {})  # 401
    call("POST", f"{base}/responses", merchant, change=True, json={"statement": "We will refund."})
    call("POST", f"{base}/transitions", mediator, change=True, json={"trigger": "start_mediation"})
    receipt = {"file": ("a.txt", b"receipt", "text/plain")}
    evidence = call("POST", f"{base}/evidence", consumer, change=True, files=receipt)
    call("POST", f"{base}/evidence/submit", consumer, change=True)
    call("GET", f"{base}/evidence/{evidence.json()['id']}/content", consumer)
    for decision in ("reject", "accept"):
        offer = call("POST", f"{base}/offers", merchant, change=True, json={"amount": 5000, "currency": "CNY"}).json()
        call("POST", f"{base}/offers/{offer['id']}/{decision}", consumer, change=True)
    question = {"party": "merchant", "question": "Proof?"}
    asked = call("POST", f"{base}/info-requests", mediator, change=True, json=question)
    call("POST", f"{base}/info-requests/{asked.json()['id']}/answer", merchant, change=True, json={"answer": "Sent."})
    call("POST", f"{base}/messages", consumer, change=True, json={"body": "Thanks"})
    call("POST", f"{base}/transitions", mediator, json={"trigger": "settle"})  # 428
    call("POST", f"{base}/transitions", mediator, change=True, json={"trigger": "settle"})
    call("POST", f"{base}/transitions", mediator, change=True, json={"trigger": "close"})
    call("POST", f"{base}/feedback", consumer, change=True, json={"score": 5, "comment": "Quick."})
    for url in (
        base,
        f"{base}/events",
        f"{base}/actions",
        f"{base}/timers",
        f"{base}/messages",
        f"{base}/evidence",
        f"{base}/offers",
        f"{base}/info-requests",
        "/v1/cases",
        "/v1/queue",
        f"{base}/rules",
        "/v1/triage-queue",
    ):
        call("GET", url, mediator)
    call("GET", f"{base}/replay", auditor)
    call("GET", "/v1/audit/export", auditor)
    call(
        "POST",
        "/v1/mediators",
        admin,
        json={"id": "med-9", "display_name": "Nine", "categories": ["*"], "languages": ["zh"], "capacity": 5},
    )
    call("PATCH", "/v1/mediators/med-9", admin, json={"capacity": 3})
    # Third-party review of the closed case: dealt, read, scored, flagged, looked at again, resolved.
    case_id = base.rsplit("/", 1)[1]
    call("POST", "/v1/reviews/sample", admin, json={"since": (T0 - timedelta(days=1)).isoformat()})
    reviewer, senior = api.token("reviewer-1", "reviewer"), api.token("sen-1", "senior_mediator")
    version["now"] = int(call("GET", f"/v1/reviews/{case_id}", reviewer).headers["ETag"].strip('"'))
    scores = {"lawful_basis": 4, "fairness": 4, "timeliness": 4, "clarity": 4}
    call("POST", f"/v1/reviews/{case_id}/scores", reviewer, change=True, json={"scores": scores})
    call("POST", f"/v1/reviews/{case_id}/flag", reviewer, change=True, json={"reason": "Look again."})
    call("GET", f"/v1/reviews/flags/{case_id}", senior)
    resolution = {"decision": "dismissed", "note": "Sound."}
    call("POST", f"/v1/reviews/flags/{case_id}/resolution", senior, change=True, json=resolution)
    failed = {s for s in seen if not s.endswith(("200", "201"))}
    assert failed == {"cases_get 401", "cases_transition 412", "cases_transition 428"}, sorted(seen)
    # Every operation that sends one of the headers was reached.
    assert set(SUCCESS_HEADERS) <= {s.split()[0] for s in seen - failed}, sorted(seen)
