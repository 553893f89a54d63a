"""Property: no sequence of requests by a non-party changes a case or reveals its fields."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, case_in_state
from workflow.model import Actor

AUDITOR = Actor("aud-1", "auditor")
STRANGERS = [
    ("c-2", "consumer", None),
    ("mu-2", "merchant", "m-2"),
    ("med-2", "mediator", None),
    ("adm-1", "admin", None),
]
SECRET_SUBJECT = "假货"  # the subject case_in_state files; must never show up in a stranger's response
TRIGGERS = [
    "assign",
    "start_mediation",
    "accept_claim",
    "settle",
    "escalate",
    "rule",
    "decide_for_consumer",
    "withdraw",
    "reject",
    "close",
    "reopen",
]

request = st.one_of(
    st.tuples(
        st.just("POST"),
        st.just("/transitions"),
        st.builds(lambda t: {"trigger": t, "reason": "r", "data": {"mediator_id": "med-2"}}, st.sampled_from(TRIGGERS)),
    ),
    st.tuples(st.just("POST"), st.sampled_from(["/messages"]), st.just({"body": "hi"})),
    st.tuples(st.just("POST"), st.just("/offers"), st.just({"amount": 1, "currency": "CNY"})),
    st.tuples(st.just("POST"), st.just("/responses"), st.just({"statement": "x"})),
    st.tuples(st.just("POST"), st.just("/info-requests"), st.just({"party": "consumer", "question": "q"})),
    st.tuples(st.just("POST"), st.just("/feedback"), st.just({"score": 1})),
    st.tuples(
        st.just("GET"),
        st.sampled_from(["", "/events", "/actions", "/messages", "/evidence", "/offers", "/timers", "/info-requests"]),
        st.none(),
    ),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stranger=st.sampled_from(STRANGERS), requests=st.lists(request, min_size=1, max_size=6), with_if_match=st.booleans()
)
def test_strangers_change_nothing_and_learn_nothing(
    api: Api, stranger: tuple[str, str, str | None], requests: list[tuple[str, str, Any]], with_if_match: bool
) -> None:
    ids = case_in_state(api, "mediating")
    case_id = ids["case_id"]
    before = api.service.get(actor=AUDITOR, case_id=case_id)
    headers = api.token(*stranger)
    if with_if_match:
        headers["If-Match"] = f'"{before.version}"'
    for method, suffix, body in requests:
        response = api.client.request(method, f"/v1/cases/{case_id}{suffix}", headers=headers, json=body)
        assert response.status_code in (404, 428), (stranger, method, suffix, response.status_code, response.text)
        assert SECRET_SUBJECT not in response.text and "m-1" not in response.text
    assert api.service.get(actor=AUDITOR, case_id=case_id) == before
