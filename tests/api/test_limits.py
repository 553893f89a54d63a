"""Bad input gets a clear problem and loses nothing: sizes, media types, rates, mass assignment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import FILING, Api

PRIVILEGED = [
    "state",
    "version",
    "mediator_id",
    "id",
    "created_at",
    "updated_at",
    "outcome",
    "awarded",
    "consumer_id",
    "workflow_version",
    "policy_version",
    "closed_at",
    "reopen_count",
    "flags",
    "priority",
]


def test_oversize_body_is_413_and_nothing_is_filed(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"max_body_bytes": 2048})
    consumer = api.token("c-1", "consumer")
    big = api.client.post("/v1/cases", json={**FILING, "description": "x" * 5000}, headers=consumer)
    assert big.status_code == 413 and big.json()["type"].endswith(":payload-too-large")
    assert api.client.get("/v1/cases", headers=consumer).json()["data"] == []


def test_upload_limits(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"max_upload_bytes": 1024})
    consumer = api.token("c-1", "consumer")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    headers = {**consumer, "If-Match": f'"{case["version"]}"'}
    url = f"/v1/cases/{case['id']}/evidence"
    too_big = api.client.post(url, headers=headers, files={"file": ("a.png", b"x" * 2000, "image/png")})
    assert too_big.status_code == 413
    wrong_type = api.client.post(url, headers=headers, files={"file": ("a.exe", b"MZ", "application/x-msdownload")})
    assert wrong_type.status_code == 415 and wrong_type.headers["content-type"] == "application/problem+json"
    fine = api.client.post(url, headers=headers, files={"file": ("a.png", b"x" * 1000, "image/png")})
    assert fine.status_code == 201
    evidence = api.client.get(url, headers=consumer).json()["data"]
    assert [e["size"] for e in evidence] == [1000]


def test_rate_limit_answers_429_with_retry_after(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"rate_limit_per_minute": 5})
    consumer = api.token("c-1", "consumer")
    codes = [api.client.get("/v1/cases", headers=consumer).status_code for _ in range(6)]
    assert codes[:5] == [200] * 5 and codes[5] == 429
    limited = api.client.get("/v1/cases", headers=consumer)
    assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["type"].endswith(":rate-limited")
    # Another identity has its own budget.
    assert api.client.get("/v1/cases", headers=api.token("c-2", "consumer")).status_code == 200


def test_text_and_data_limits(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    assert api.client.post("/v1/cases", json={**FILING, "subject": "s" * 201}, headers=consumer).status_code == 422
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    many = {f"k{i}": i for i in range(30)}
    response = api.client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"trigger": "withdraw", "data": many},
        headers={**consumer, "If-Match": f'"{case["version"]}"'},
    )
    assert response.status_code == 422


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(PRIVILEGED),
    value=st.one_of(st.text(max_size=10), st.integers(), st.none()),
    target=st.sampled_from(["file", "transition", "message", "offer"]),
)
def test_privileged_keys_are_refused_and_nothing_is_stored(api: Api, key: str, value: Any, target: str) -> None:
    consumer = api.token("c-1", "consumer")
    base = api.client.get("/v1/cases", headers=consumer).json()["data"]
    if target == "file":
        response = api.client.post("/v1/cases", json={**FILING, key: value}, headers=consumer)
        assert response.status_code == 422
        assert api.client.get("/v1/cases", headers=consumer).json()["data"] == base
        return
    case = base[0] if base else api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    before = api.client.get(f"/v1/cases/{case['id']}", headers=consumer).json()
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "transition": ("/transitions", {"trigger": "withdraw"}),
        "message": ("/messages", {"body": "hello"}),
        "offer": ("/offers", {"amount": 1, "currency": "CNY"}),
    }
    path, body = bodies[target]
    response = api.client.post(
        f"/v1/cases/{case['id']}{path}",
        json={**body, key: value},
        headers={**consumer, "If-Match": f'"{before["version"]}"'},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == key
    assert api.client.get(f"/v1/cases/{case['id']}", headers=consumer).json() == before
