"""Every POST route of the API stores its answer with its command: a case's whole life sent
twice per step with the same Idempotency-Key, where the second send replays the first answer
byte for byte and changes nothing. The routes walked are checked against the API document,
so a new POST route that does not store its answer fails here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.actors import T0
from tests.support.api import Api

ERASURE = {"subject": "c-1", "basis": "PIPL Art. 47 request"}

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-9",
    "category": "not_received",
    "subject": "没收到货",
    "description": "物流一直没有更新。",
    "claim": {"amount": 9900, "currency": "CNY"},
}


def _twice(api: Api, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
    first = api.client.post(url, headers=headers, **kwargs)
    assert first.status_code in (200, 201), (url, first.text)
    assert "idempotent-replayed" not in first.headers
    second = api.client.post(url, headers=headers, **kwargs)
    assert (second.status_code, second.content) == (first.status_code, first.content), url
    assert second.headers["idempotent-replayed"] == "true", url
    for name in ("etag", "location", "content-type"):
        assert second.headers.get(name) == first.headers.get(name), (url, name)
    return first


def test_every_post_route_replays_its_first_answer_and_acts_once(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    merchant = api.token("mu-1", "merchant", merchant_id="m-1")
    mediator = api.token("med-1", "mediator")
    admin = api.token("adm-1", "admin")
    walked: set[str] = set()
    state: dict[str, Any] = {"version": 0, "case": "", "steps": 0}

    def step(template: str, who: dict[str, str], ids: dict[str, str] | None = None, **kwargs: Any) -> Any:
        url = template.format(case_id=state["case"], **(ids or {}))
        state["steps"] += 1
        headers = {**who, "Idempotency-Key": f"key-{state['steps']}"}
        if state["case"] and template != "/v1/mediators":
            headers["If-Match"] = f'"{state["version"]}"'
        answer = _twice(api, url, headers, **kwargs)
        walked.add(template)
        if "etag" in answer.headers and template != "/v1/mediators":
            state["version"] = int(answer.headers["etag"].strip('"'))
        if state["case"]:
            current = api.client.get(f"/v1/cases/{state['case']}", headers=consumer).json()["version"]
            assert current == state["version"], f"{template} acted twice"
        return answer.json()

    case = step("/v1/cases", consumer, json=FILING)
    state["case"] = case["id"]
    state["version"] = case["version"]
    step("/v1/cases/{case_id}/transitions", mediator, json={"trigger": "assign"})
    step(
        "/v1/cases/{case_id}/category",
        mediator,
        json={"category": "not_as_described", "reason": "the goods arrived broken"},
    )
    step("/v1/cases/{case_id}/responses", merchant, json={"statement": "We shipped it."})
    step("/v1/cases/{case_id}/transitions", mediator, json={"trigger": "start_mediation"})
    step("/v1/cases/{case_id}/messages", consumer, json={"body": "Still nothing."})
    # A retry resends the same bytes (one multipart boundary, not a fresh one per send).
    upload = (
        b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        b"\x89PNG-bytes\r\n--b0--\r\n"
    )
    step(
        "/v1/cases/{case_id}/evidence", {**consumer, "Content-Type": "multipart/form-data; boundary=b0"}, content=upload
    )
    step("/v1/cases/{case_id}/evidence/submit", consumer)
    asked = step("/v1/cases/{case_id}/info-requests", mediator, json={"party": "merchant", "question": "Tracking?"})
    step(
        "/v1/cases/{case_id}/info-requests/{request_id}/answer",
        merchant,
        {"request_id": asked["id"]},
        json={"answer": "SF123"},
    )
    offer = step("/v1/cases/{case_id}/offers", merchant, json={"amount": 5000, "currency": "CNY"})
    step("/v1/cases/{case_id}/offers/{offer_id}/reject", consumer, {"offer_id": offer["id"]}, json={"reason": "low"})
    offer = step("/v1/cases/{case_id}/offers", merchant, json={"amount": 9900, "currency": "CNY"})
    step("/v1/cases/{case_id}/offers/{offer_id}/accept", consumer, {"offer_id": offer["id"]})
    step("/v1/cases/{case_id}/transitions", mediator, json={"trigger": "settle"})
    step("/v1/cases/{case_id}/transitions", mediator, json={"trigger": "close"})
    step("/v1/cases/{case_id}/feedback", consumer, json={"score": 5})
    step(
        "/v1/mediators",
        admin,
        json={"id": "med-9", "display_name": "Li", "categories": ["*"], "languages": ["*"], "capacity": 3},
    )

    # Third-party review of the closed case: dealt, scored, flagged, the flag resolved.
    reviewer, senior = api.token("reviewer-1", "reviewer"), api.token("sen-1", "senior_mediator")
    # Dealing a sample runs one command per drawn case, so it is not replayed byte for byte: a
    # second send deals nothing more (the draw is deterministic and nothing is dealt twice).
    dealing = {"json": {"since": (T0 - timedelta(days=1)).isoformat()}, "headers": {**admin, "Idempotency-Key": "k-s"}}
    first = api.client.post("/v1/reviews/sample", **dealing)  # type: ignore[arg-type]
    again = api.client.post("/v1/reviews/sample", **dealing)  # type: ignore[arg-type]
    assert first.json()["assigned"] == [state["case"]] and again.json()["assigned"] == []
    state["version"] += 1  # review_assigned
    walked.add("/v1/reviews/sample")
    rubric = api.client.get(f"/v1/reviews/{state['case']}", headers=reviewer).json()["rubric"]
    scores = {item["id"]: 4 for item in rubric["items"]}
    step("/v1/reviews/{case_id}/scores", reviewer, json={"scores": scores, "comment": "clear and fair"})
    step("/v1/reviews/{case_id}/flag", reviewer, json={"reason": "the ruling cites no rule"})
    step("/v1/reviews/flags/{case_id}/resolution", senior, json={"decision": "dismissed", "note": "it does"})
    # Scored once, flagged once, resolved once, though each was sent twice.
    assert len(api.client.get(f"/v1/reviews/{state['case']}", headers=reviewer).json()["reviews"]) == 1
    flags = api.client.get("/v1/reviews/flags", headers=senior).json()["data"]
    assert [(f["case_id"], f["resolution"]["decision"]) for f in flags] == [(state["case"], "dismissed")]

    endpoint = step("/v1/webhooks", admin, json={"url": "http://127.0.0.1:9/hook"})
    step("/v1/webhooks/{endpoint_id}/rotate-secret", admin, {"endpoint_id": endpoint["id"]})
    step("/v1/webhooks/{endpoint_id}/resend", admin, {"endpoint_id": endpoint["id"]}, json={})
    step("/v1/notifications/read", consumer, json={})
    hooks = api.client.get("/v1/webhooks", headers=admin).json()["data"]
    assert [h["id"] for h in hooks] == [endpoint["id"]]  # registered once, though sent twice

    history = api.client.get(f"/v1/cases/{state['case']}/events?limit=200", headers=mediator).json()["data"]
    assert len(history) == state["version"]
    mediators = api.client.get("/v1/mediators", headers=admin).json()["data"]
    assert [m["id"] for m in mediators].count("med-9") == 1  # registered once, though sent twice
    # Last: erasing the consumer. Like dealing a sample it runs one command per case and is not
    # replayed: a second send finds nothing left to erase (404), so the case is erased once.
    headers = {**admin, "Idempotency-Key": "k-e"}
    erased = api.client.post("/v1/privacy/erasures", json=ERASURE, headers=headers)
    assert erased.status_code == 200 and erased.json()["erased"] == [state["case"]], erased.text
    assert api.client.post("/v1/privacy/erasures", json=ERASURE, headers=headers).status_code == 404
    events = api.client.get(f"/v1/cases/{state['case']}/events?limit=200", headers=mediator).json()["data"]
    assert [e["type"] for e in events].count("personal_data_erased") == 1
    walked.add("/v1/privacy/erasures")
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    documented = {path for path, item in paths.items() if "post" in item}
    assert walked == documented
