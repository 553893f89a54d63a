"""Every body over its cap gets 413 payload-too-large, declared or streamed: chunked transfer
(no Content-Length), a Content-Length that lies, with or without Idempotency-Key, on JSON
routes and the evidence upload; nothing is stored. Through the ASGI app with streamed
request bodies, and through a real server with chunked transfer encoding."""

from __future__ import annotations

import http.client
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.app import create_app
from store.tables import BLOBS, EVENTS
from tests.support.api import FILING, Api
from tests.support.live import run_coroutine, serve

BODY_CAP = 2048
UPLOAD_CAP = 1024
EVIDENCE_CAP = UPLOAD_CAP + 64 * 1024  # the upload's cap plus multipart framing (api/guard.py)
BOUNDARY = "cap-test-boundary"


def capped_api(api_factory: Callable[..., Api]) -> Api:
    return api_factory({"max_body_bytes": BODY_CAP, "max_upload_bytes": UPLOAD_CAP, "rate_limit_per_minute": 10**6})


def json_body(size: int) -> bytes:
    """A filing of exactly ``size`` bytes (its description padded), at least a valid JSON shell."""
    shell = json.dumps({**FILING, "description": ""}).encode()
    if size < len(shell):
        return (b'{"d":"' + b"x" * size)[:size]
    return json.dumps({**FILING, "description": "x" * (size - len(shell))}).encode()


def multipart_body(size: int) -> bytes:
    """A multipart upload of a PNG whose whole body is ``size`` bytes."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def pieces(data: bytes, chunk: int) -> Iterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


def stream_post(api: Api, path: str, data: bytes, headers: dict[str, str], chunk: int) -> httpx2.Response:
    """POST ``data`` through the ASGI app as a stream of ``chunk``-byte pieces (chunked transfer
    unless ``headers`` declare a Content-Length)."""

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces(data, chunk):
            yield piece

    async def send() -> httpx2.Response:
        transport = httpx2.ASGITransport(app=api.client.app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, content=body(), headers=headers)

    return run_coroutine(send())


def count(api: Api, table: Any) -> int:
    with api.service.db.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def targets(api: Api) -> dict[str, tuple[str, dict[str, str], Callable[[int], bytes], int]]:
    """Route name -> (path, headers, body of a given size, cap)."""
    consumer = api.token("c-1", "consumer")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    on_case = {**consumer, "If-Match": f'"{case["version"]}"'}
    json_type = {"Content-Type": "application/json"}
    return {
        "file": ("/v1/cases", {**consumer, **json_type}, json_body, BODY_CAP),
        "transition": (f"/v1/cases/{case['id']}/transitions", {**on_case, **json_type}, json_body, BODY_CAP),
        "evidence": (
            f"/v1/cases/{case['id']}/evidence",
            {**on_case, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            multipart_body,
            EVIDENCE_CAP,
        ),
    }


def assert_too_large(response: httpx2.Response, cap: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith(":payload-too-large") and problem["limit"] == cap


def test_streamed_bodies_over_the_cap_get_413_and_store_nothing(api_factory: Callable[..., Api]) -> None:
    api = capped_api(api_factory)
    routes = targets(api)
    events, blobs = count(api, EVENTS), count(api, BLOBS)
    for name, (path, headers, body, cap) in routes.items():
        for key in ({}, {"Idempotency-Key": f"big-{name}"}):
            oversize = body(cap + 1)
            chunked = stream_post(api, path, oversize, {**headers, **key}, chunk=700)
            assert_too_large(chunked, cap)
            lying = stream_post(api, path, oversize, {**headers, **key, "Content-Length": "100"}, chunk=700)
            assert_too_large(lying, cap)
    assert (count(api, EVENTS), count(api, BLOBS)) == (events, blobs)
    # At the cap itself the body is read and judged as usual.
    path, headers, body, cap = routes["file"]
    assert stream_post(api, path, body(cap), headers, chunk=700).status_code == 201


def test_any_body_over_the_cap_gets_413_and_none_gets_a_server_error(api_factory: Callable[..., Api]) -> None:
    api = capped_api(api_factory)
    routes = targets(api)

    @settings(max_examples=80, deadline=None)
    @given(
        route=st.sampled_from(sorted(routes)),
        over=st.integers(min_value=-64, max_value=3000),
        declared=st.sampled_from(["none", "true", "smaller", "larger", "huge"]),
        chunk=st.integers(min_value=1, max_value=5000),
        key=st.booleans(),
    )
    def check(route: str, over: int, declared: str, chunk: int, key: bool) -> None:
        path, headers, body, cap = routes[route]
        data = body(max(1, cap + over))
        declared_length = {
            "none": None,
            "true": len(data),
            "smaller": len(data) // 2,
            "larger": len(data) + 10,
            "huge": 10**9,
        }[declared]
        extra = {} if declared_length is None else {"Content-Length": str(declared_length)}
        if key:
            extra["Idempotency-Key"] = f"k-{route}-{over}-{declared}-{chunk}"
        response = stream_post(api, path, data, {**headers, **extra}, chunk=max(1, min(chunk, len(data))))
        assert response.status_code < 500, response.text
        if len(data) > cap or (declared_length or 0) > cap:
            assert_too_large(response, cap)
        elif route == "evidence":
            assert_too_large(response, UPLOAD_CAP)  # within the framing's cap, the file itself is over its own
        else:
            assert response.status_code != 413, response.text

    check()


def _chunked(port: int, path: str, headers: dict[str, str], data: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=pieces(data, 1000), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_real_server_answers_chunked_oversize_bodies_413(api_factory: Callable[..., Api]) -> None:
    api = capped_api(api_factory)
    routes = targets(api)
    events = count(api, EVENTS)
    with serve(create_app(engine=api.engine)) as base:
        port = int(base.rsplit(":", 1)[1])
        for name, (path, headers, body, cap) in routes.items():
            for key in ({}, {"Idempotency-Key": f"real-{name}"}):
                status, problem = _chunked(port, path, {**headers, **key}, body(cap + 500))
                assert status == 413 and problem["type"].endswith(":payload-too-large"), problem
                assert problem["limit"] == cap
        status, _ = _chunked(port, routes["file"][0], routes["file"][1], json_body(BODY_CAP))
        assert status == 201
    assert count(api, EVENTS) > events
