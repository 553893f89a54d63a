"""Retries and races over real HTTP: Idempotency-Key replay and If-Match serialisation."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, insert, select

from api.app import create_app
from cases import idempotency
from store.tables import EVENTS, IDEMPOTENCY_KEYS
from tests.support.api import Api
from tests.support.live import serve

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "not_received",
    "subject": "没收到货",
    "description": "物流一直没有更新。",
    "claim": {"amount": 9900, "currency": "CNY"},
}


def run_parallel(count: int, call: Callable[[httpx2.Client], httpx2.Response]) -> list[httpx2.Response]:
    barrier = threading.Barrier(count)

    def one(_: int) -> httpx2.Response:
        with httpx2.Client(timeout=60) as client:
            barrier.wait()
            return call(client)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def count_events(api: Api, case_id: str | None = None) -> int:
    events = EVENTS
    stmt = select(func.count()).select_from(events)
    if case_id:
        stmt = stmt.where(events.c.case_id == case_id)
    with api.service.db.read() as session:
        return int(session.execute(stmt).scalar_one())


def test_fifty_identical_posts_with_one_key_have_one_effect(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    with serve(create_app(engine=api.engine)) as base:
        responses = run_parallel(
            50,
            lambda client: client.post(
                f"{base}/v1/cases", json=FILING, headers={**consumer, "Idempotency-Key": "file-once-42"}
            ),
        )
    assert {r.status_code for r in responses} == {201}, {r.status_code: r.text for r in responses}
    assert len({r.content for r in responses}) == 1
    assert count_events(api) == 1 + 1  # one 'filed' and the assignment clock's 'timer_started'
    listed = api.client.get("/v1/cases", headers=consumer).json()["data"]
    assert len(listed) == 1


def test_same_key_with_another_body_is_refused(api: Api) -> None:
    consumer = {**api.token("c-1", "consumer"), "Idempotency-Key": "k-1"}
    first = api.client.post("/v1/cases", json=FILING, headers=consumer)
    again = api.client.post("/v1/cases", json=FILING, headers=consumer)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = api.client.post("/v1/cases", json={**FILING, "order_ref": "TB-2"}, headers=consumer)
    assert other.status_code == 422 and other.json()["type"].endswith(":idempotency-key-reuse")
    too_long = api.client.post("/v1/cases", json=FILING, headers={**consumer, "Idempotency-Key": "x" * 256})
    assert too_long.status_code == 422


def test_keys_expire_after_a_day(api: Api) -> None:
    consumer = {**api.token("c-1", "consumer"), "Idempotency-Key": "k-day"}
    first = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    api.clock.advance(timedelta(hours=23))
    assert api.client.post("/v1/cases", json=FILING, headers=consumer).json()["id"] == first["id"]
    api.clock.advance(timedelta(hours=2))
    assert api.client.post("/v1/cases", json=FILING, headers=consumer).json()["id"] != first["id"]


def test_fifty_transitions_with_one_if_match_one_wins(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    mediator = api.token("med-1", "mediator")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    before = count_events(api, case["id"])
    with serve(create_app(engine=api.engine)) as base:
        responses = run_parallel(
            50,
            lambda client: client.post(
                f"{base}/v1/cases/{case['id']}/transitions",
                json={"trigger": "assign"},
                headers={**mediator, "If-Match": f'"{case["version"]}"'},
            ),
        )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1 and codes.count(412) == 49, codes
    assert all(r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 412)
    # The winner wrote the transition and its clock events; nobody else wrote anything.
    winner = next(r for r in responses if r.status_code == 200).json()
    assert count_events(api, case["id"]) - before == winner["version"] - case["version"]


def _hold_key(api: Api, key: str, body: bytes, answer: bytes) -> tuple[Any, Any]:
    """Another worker's command transaction that took ``key`` for the same request and has
    not committed yet: (connection, transaction), still open."""
    fingerprint = hashlib.sha256(b"\0".join([b"POST", b"/v1/cases", b"", body])).hexdigest()
    connection = api.service.db.engine.connect()
    if api.service.db.is_sqlite:
        connection = connection.execution_options(sqlite_immediate=True)
    transaction = connection.begin()
    connection.execute(
        insert(IDEMPOTENCY_KEYS).values(
            scope="consumer:c-1",
            key=key,
            fingerprint=fingerprint,
            status="done",
            created_at=api.clock.now(),
            expires_at=api.clock.now() + idempotency.KEEP_FOR,
            response_status=201,
            response_headers=json.dumps({"content-type": "application/json"}),
            response_body=answer,
        )
    )
    return connection, transaction


def test_a_duplicate_waits_for_the_key_holder_and_gets_its_answer(api: Api) -> None:
    consumer = {**api.token("c-1", "consumer"), "Idempotency-Key": "held", "Content-Type": "application/json"}
    body = json.dumps(FILING).encode()
    connection, transaction = _hold_key(api, "held", body, b'{"holder": true}')
    try:
        threading.Timer(0.5, transaction.commit).start()
        duplicate = api.client.post("/v1/cases", content=body, headers=consumer)
    finally:
        connection.close()
    assert duplicate.status_code == 201 and duplicate.json() == {"holder": True}, duplicate.text
    assert duplicate.headers["idempotent-replayed"] == "true"
    assert api.client.get("/v1/cases", headers=consumer).json()["data"] == []


def test_a_key_still_in_flight_elsewhere_gets_409_then_acts_once_released(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"idempotency_wait_seconds": 0.3})
    if api.service.db.is_sqlite:
        pytest.skip("SQLite has one writer: a duplicate waits its turn (the busy timeout), there is no 409 wait")
    consumer = {**api.token("c-1", "consumer"), "Idempotency-Key": "busy-key", "Content-Type": "application/json"}
    body = json.dumps(FILING).encode()
    connection, transaction = _hold_key(api, "busy-key", body, b"{}")
    try:
        busy = api.client.post("/v1/cases", content=body, headers=consumer)
        assert busy.status_code == 409 and busy.json()["type"].endswith(":idempotency-key-in-flight"), busy.text
        assert busy.headers["retry-after"] == "1"
    finally:
        transaction.rollback()  # the other worker died before committing: its key is gone with its work
        connection.close()
    assert api.client.get("/v1/cases", headers=consumer).json()["data"] == []
    done = api.client.post("/v1/cases", content=body, headers=consumer)
    assert done.status_code == 201 and "idempotent-replayed" not in done.headers
    again = api.client.post("/v1/cases", content=body, headers=consumer)
    assert again.content == done.content and again.headers["idempotent-replayed"] == "true"
    assert idempotency.KEEP_FOR >= timedelta(hours=24)
