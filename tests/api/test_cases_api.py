"""The first HTTP layer: file, read, move, history, problems."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "counterfeit",
    "subject": "假货",
    "description": "收到的耳机是假货。",
    "claim": {"amount": 89900, "currency": "CNY"},
    "desired_outcome": "refund",
}


def test_file_read_move_and_history(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    mediator = api.token("med-1", "mediator")
    created = api.client.post("/v1/cases", json=FILING, headers=consumer)
    assert created.status_code == 201, created.text
    case = created.json()
    version = case["version"]  # the filing and the clocks it started
    assert case["state"] == "filed" and created.headers["ETag"] == f'"{version}"'
    assert created.headers["Location"] == f"/v1/cases/{case['id']}"
    got = api.client.get(f"/v1/cases/{case['id']}", headers=consumer)
    assert got.status_code == 200 and got.json() == case

    moved = api.client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"trigger": "assign"},
        headers={**mediator, "If-Match": f'"{version}"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["state"] == "assigned" and moved.json()["mediator_id"] == "med-1"
    assert moved.headers["ETag"] == f'"{moved.json()["version"]}"'

    history = api.client.get(f"/v1/cases/{case['id']}/events", headers=mediator).json()
    assert [e["seq"] for e in history["data"]] == list(range(1, moved.json()["version"] + 1))
    assign = history["data"][version]
    assert assign["trigger"] == "assign" and assign["from"] == "filed" and assign["to"] == "assigned"
    assert assign["prev_hash"] == history["data"][version - 1]["hash"] and len(assign["hash"]) == 64

    listed = api.client.get("/v1/cases", headers=mediator).json()
    assert [c["id"] for c in listed["data"]] == [case["id"]] and listed["next_cursor"] is None


def test_problems(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    url = f"/v1/cases/{case['id']}/transitions"

    missing = api.client.post(url, json={"trigger": "assign"}, headers=consumer)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith(":precondition-required")

    stale = api.client.post(url, json={"trigger": "withdraw"}, headers={**consumer, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == case["version"]

    current = {**consumer, "If-Match": f'"{case["version"]}"'}
    wrong_state = api.client.post(url, json={"trigger": "settle"}, headers=current)
    assert wrong_state.status_code == 409
    assert wrong_state.json()["current_state"] == "filed" and "assign" in wrong_state.json()["possible_triggers"]

    unknown_field = api.client.post("/v1/cases", json={**FILING, "state": "settled"}, headers=consumer)
    assert unknown_field.status_code == 422 and unknown_field.json()["errors"][0]["field"] == "state"

    float_money = api.client.post(
        "/v1/cases", json={**FILING, "claim": {"amount": 10.5, "currency": "CNY"}}, headers=consumer
    )
    assert float_money.status_code == 422

    assert api.client.get("/v1/cases/DSP-NOPE", headers=consumer).status_code == 404
    unauthenticated = api.client.get("/v1/cases")
    assert unauthenticated.status_code == 401 and "Bearer" in unauthenticated.headers["WWW-Authenticate"]
    not_json = api.client.post(
        "/v1/cases", content=b"{not json", headers={**consumer, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.headers["content-type"] == "application/problem+json"


def test_health(api: Api) -> None:
    assert api.client.get("/healthz").json() == {
        "status": "ok",
        "database": None,
        "policies": None,
        "outbox_depth": None,
    }
    assert api.client.get("/readyz").json()["status"] == "ready"


def test_metrics_count_requests(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    api.client.get("/v1/cases", headers=consumer)
    api.client.get("/v1/cases")
    text = api.client.get("/metrics").text
    assert 'disputes_http_requests_total{method="GET",status="200"}' in text
    assert 'disputes_http_requests_total{method="GET",status="401"}' in text
    assert "disputes_http_request_seconds_bucket" in text
