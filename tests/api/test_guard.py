"""Unauthenticated traffic is refused before it costs anything: no database work for a junk
token (Idempotency-Key or not), failed authentications throttled per client address (not
per token, so junk tokens cannot grow the server's memory), real callers unaffected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx2
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select

from api.auth import mint_token
from api.guard import GuardMiddleware, TokenBuckets, client_address
from runtime.settings import DEV_SECRET, Settings
from store.tables import IDEMPOTENCY_KEYS
from tests.support.actors import T0
from tests.support.api import FILING, Api
from tests.support.live import run_coroutine


def junk(i: int) -> dict[str, str]:
    """A different well-formed token each time, signed with a key the server does not know."""
    token = jwt.encode({"sub": f"x-{i}", "role": "consumer", "exp": 4_000_000_000}, "not-the-secret" * 3, "HS256")
    return {"Authorization": f"Bearer {token}"}


UNAUTHENTICATED = [
    {},
    {"Authorization": "Basic dXNlcjpwdw=="},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not.a.jwt"},
    junk(0),
    {
        "Authorization": "Bearer "
        + mint_token(
            Settings(environment="test"), sub="c-1", role="consumer", now=T0 - timedelta(days=9), ttl=timedelta(hours=1)
        )
    },
    {"Authorization": "Bearer " + jwt.encode({"sub": "c-1", "role": "pope", "exp": 4_000_000_000}, DEV_SECRET)},
]


@contextmanager
def statements(api: Api) -> Iterator[list[str]]:
    """Every SQL statement the app runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(api.service.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(api.service.db.engine, "before_cursor_execute", record)


def guard_of(app: FastAPI) -> GuardMiddleware:
    layer: Any = app.middleware_stack
    while not isinstance(layer, GuardMiddleware):
        layer = layer.app
    return layer


def post_from(app: FastAPI, address: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> httpx2.Response:
    """A POST through the ASGI app from a client at ``address``."""

    async def send() -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, json=body, headers=headers)

    return run_coroutine(send())


@pytest.mark.parametrize("headers", UNAUTHENTICATED, ids=range(len(UNAUTHENTICATED)))
def test_no_database_work_before_authentication(api: Api, headers: dict[str, str]) -> None:
    consumer = api.token("c-1", "consumer")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    targets = [
        ("/v1/cases", {}),
        (f"/v1/cases/{case['id']}/transitions", {"If-Match": f'"{case["version"]}"'}),
        (f"/v1/cases/{case['id']}/messages", {"If-Match": f'"{case["version"]}"'}),
    ]
    with statements(api) as seen:
        for path, extra in targets:
            body = {"trigger": "withdraw"} if path.endswith("transitions") else FILING
            if path.endswith("messages"):
                body = {"body": "hello"}
            for key in ({"Idempotency-Key": "k-junk"}, {}):
                refused = api.client.post(path, json=body, headers={**headers, **extra, **key})
                assert refused.status_code == 401, refused.text
                assert refused.json()["type"].endswith(":unauthenticated")
                assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert api.client.get(f"/v1/cases/{case['id']}", headers=headers).status_code == 401
    assert seen == [], seen
    with api.service.db.read() as session:
        assert session.execute(select(func.count()).select_from(IDEMPOTENCY_KEYS)).scalar_one() == 0


def test_failed_authentications_are_throttled_per_client_address(api_factory: Any) -> None:
    api = api_factory({"auth_failures_per_minute": 5, "auth_failure_delay_seconds": 0.2})
    app = api.client.app
    codes = [post_from(app, "203.0.113.7", "/v1/cases", junk(i), FILING).status_code for i in range(5)]
    assert codes == [401] * 5
    started = time.monotonic()
    throttled = post_from(app, "203.0.113.7", "/v1/cases", junk(99), FILING)
    assert time.monotonic() - started >= 0.2  # held back: a flood gets one answer per connection per delay
    assert throttled.status_code == 429, throttled.text
    assert throttled.headers["content-type"] == "application/problem+json"
    assert throttled.json()["type"].endswith(":rate-limited")
    assert "failed authentications" in throttled.json()["detail"]
    assert 1 <= int(throttled.headers["Retry-After"]) <= 12  # one failure refills in 60/5 s
    # A real caller at the same address is not held back by the junk sent from it.
    filed = post_from(app, "203.0.113.7", "/v1/cases", api.token("c-1", "consumer"), FILING)
    assert filed.status_code == 201, filed.text
    # Another address has its own budget; an IPv6 client is counted by its /64 network.
    assert post_from(app, "203.0.113.8", "/v1/cases", junk(1), FILING).status_code == 401
    assert [post_from(app, f"2001:db8::{i}", "/v1/cases", junk(i), FILING).status_code for i in range(1, 7)] == [
        401,
        401,
        401,
        401,
        401,
        429,
    ]
    assert post_from(app, "2001:db8:0:1::1", "/v1/cases", junk(7), FILING).status_code == 401


def test_junk_tokens_do_not_each_get_a_bucket(api_factory: Any) -> None:
    api = api_factory({"auth_failure_delay_seconds": 0})
    guard = guard_of(api.client.app)
    for i in range(200):
        assert api.client.get("/v1/cases", headers=junk(i)).status_code in (401, 429)
    assert len(guard.buckets) == 0, "a rate bucket per junk token"
    assert len(guard.auth_failures) == 1  # the one client address
    assert api.client.get("/v1/cases", headers=api.token("c-1", "consumer")).status_code == 200
    assert len(guard.buckets) == 1


def test_buckets_are_bounded_forgetting_the_stalest_first() -> None:
    buckets = TokenBuckets(per_minute=2, max_keys=3)
    assert buckets.take("a", 0.0) == 0.0 and buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) > 0  # spent
    for key in ("b", "c"):
        buckets.take(key, 0.0)
    assert buckets.take("a", 0.0) > 0  # touched: now the freshest, still spent
    buckets.take("d", 0.0)  # one too many: "b", the stalest, goes
    assert len(buckets) == 3
    assert buckets.take("a", 0.0) > 0  # "a" was kept with its empty bucket
    assert buckets.take("a", 30.0) == 0.0  # and refills at its rate (one per 30 s)


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("198.51.100.4", 1), "198.51.100.4"),
        (("::ffff:198.51.100.4", 1), "198.51.100.4"),
        (("2001:db8:aa:bb:1:2:3:4", 1), "2001:db8:aa:bb::/64"),
        (("2001:db8:aa:bb:ffff::9", 1), "2001:db8:aa:bb::/64"),
        (("testclient", 1), "testclient"),
        (None, "unknown"),
    ],
)
def test_client_address(client: tuple[str, int] | None, key: str) -> None:
    assert client_address({"client": client}) == key
