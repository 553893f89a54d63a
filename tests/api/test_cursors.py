"""Every paginated route takes any cursor a client can send: a page or a 422 problem, never a 5xx.

A cursor is opaque to clients but travels through their hands, so it arrives truncated,
hand-edited, replayed from another route or forged. The routes share one validation
(``api/params.py``); this walks each of them with arbitrary text, base64 of arbitrary
bytes, base64 of huge, negative and odd integers, and the cursors the routes themselves
hand out.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.problems import PROBLEM_JSON, TYPE_PREFIX
from audit.checkpoints import write_checkpoint
from tests.support.api import Api, Party, file_case, parties

# route template -> the query parameter carrying its position
PAGINATED = [
    ("/v1/cases", "cursor"),
    ("/v1/cases/{id}/events", "cursor"),
    ("/v1/cases/{id}/messages", "cursor"),
    ("/v1/cases/{id}/evidence", "cursor"),
    ("/v1/cases/{id}/offers", "cursor"),
    ("/v1/cases/{id}/info-requests", "cursor"),
    ("/v1/queue", "cursor"),
    ("/v1/audit/checkpoints", "cursor"),
    ("/v1/audit/checkpoints", "after"),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]),
)
cursors = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=40).map(_b64),
    numbers.map(lambda n: _b64(str(n).encode())),
    numbers.map(str),
    st.sampled_from(["", " ", "=", "====", "MA", "MA==", "0", "-", "+1", "1_000", "１２", "\x00", "MTA!", "MT\nA"]),
    # the queue's own format, with forged parts
    st.tuples(st.text(max_size=30), st.text(max_size=30)).map("|".join),
    st.text(max_size=20).map(lambda s: f"2026-03-02T02:00:00Z|{s}"),
)


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """Each example reads every route: far more than the default 600 requests a minute."""
    return api_factory({"rate_limit_per_minute": 10**6})


@pytest.fixture
def walked(api: Api) -> dict[str, Any]:
    """A case with a little of everything a route pages through, and who may read it."""
    consumer, merchant, mediator, _ = parties(api)
    case_id = file_case(api, consumer)
    for _ in range(3):  # waiting in the filed queue, each with its assignment clock
        file_case(api, consumer)
    mediator.move(case_id, "assign")
    for body in ("one", "two", "three"):
        consumer.post(case_id, "/messages", {"body": body}, expect=201)
    first = merchant.post(case_id, "/offers", {"amount": 100, "currency": "CNY"}, expect=201).json()
    consumer.post(case_id, f"/offers/{first['id']}/reject", {}, expect=200)
    merchant.post(case_id, "/offers", {"amount": 200, "currency": "CNY"}, expect=201)
    asked = mediator.post(case_id, "/info-requests", {"party": "consumer", "question": "Which model?"}, expect=201)
    consumer.post(case_id, f"/info-requests/{asked.json()['id']}/answer", {"answer": "K-2"}, expect=200)
    mediator.post(case_id, "/info-requests", {"party": "merchant", "question": "Tracking number?"}, expect=201)
    for name in ("a.png", "b.png"):
        consumer.post(case_id, "/evidence", expect=201, files={"file": (name, name.encode(), "image/png")}, data={})
    key = api.engine.signing_key
    for minutes in (1, 2, 3):
        assert write_checkpoint(api.service.db, key, api.clock.now() + timedelta(minutes=minutes)) is not None
    return {"case_id": case_id, "auditor": Party(api, "aud-1", "auditor"), "mediator": mediator}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cursor=cursors, limit=st.sampled_from([None, 1, 2]))
# The classes that reached the database as a 500 before cursors were validated, always tried:
@example(cursor=_b64(str(2**63).encode()), limit=None)
@example(cursor=_b64(str(2**31).encode()), limit=None)  # above PostgreSQL's INTEGER (seq)
@example(cursor=_b64(b"-1"), limit=None)
@example(cursor="2026-03-02T02:00:00Z|\x00", limit=None)
def test_any_cursor_gets_a_page_or_a_validation_problem(
    api: Api, walked: dict[str, Any], cursor: str, limit: int | None
) -> None:
    for template, parameter in PAGINATED:
        path = template.format(id=walked["case_id"])
        reader = walked["mediator"] if path == "/v1/queue" else walked["auditor"]
        params: dict[str, Any] = {parameter: cursor}
        if limit is not None:
            params["limit"] = limit
        response = api.client.get(path, params=params, headers=reader.headers)
        assert response.status_code in (200, 422), (path, cursor, response.status_code, response.text)
        if response.status_code == 422:
            assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
            problem = response.json()
            assert problem["type"] == TYPE_PREFIX + "validation" and problem["status"] == 422, problem
        else:
            page = response.json()
            assert isinstance(page["data"], list)
            assert page["next_cursor"] is None or isinstance(page["next_cursor"], str)


@pytest.mark.parametrize("template", sorted({t for t, p in PAGINATED if p == "cursor"}))
def test_the_cursors_a_route_hands_out_walk_it_to_the_end(api: Api, walked: dict[str, Any], template: str) -> None:
    """Valid cursors still page: one item per page until ``next_cursor`` is null, the whole list."""
    path = template.format(id=walked["case_id"])
    reader = walked["mediator"] if path == "/v1/queue" else walked["auditor"]
    seen: list[Any] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(50):
        response = api.client.get(path, params=params, headers=reader.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["data"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 1, "cursor": page["next_cursor"]}
    else:
        pytest.fail(f"{path}: no end after 50 pages")
    whole = api.client.get(path, params={"limit": 200}, headers=reader.headers).json()["data"]
    assert seen == whole and len(whole) > 1
