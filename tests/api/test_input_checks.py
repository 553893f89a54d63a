"""Input checks over HTTP, on both databases: ISO 4217 currencies, blank and invisible text,
look-alike identifiers; arbitrary Unicode never gets a 5xx.

Identifiers (merchant_id, order_ref, mediator ids) are normalised to NFKC and refused when
they hold whitespace, control, format or invisible characters; free text (subject,
description, messages) is kept as written and refused when blank or holding controls
(workflow/text.py). Bodies are sent pre-encoded so that unpaired surrogates reach the server.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api

FILING: dict[str, Any] = {
    "merchant_id": "m-1001",
    "order_ref": "TB-1",
    "category": "other",
    "subject": "Broken kettle",
    "description": "It stopped heating after two days.",
    "claim": {"amount": 100, "currency": "CNY"},
}
CONSUMER = ("c-1", "consumer")
TRICKY = st.sampled_from(
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\t",
        "\n",
        " ",
        "\u00a0",
        "\u00ad",
        "\u200b",
        "\u200d",
        "\u202e",
        "\u2066",
        "\u2028",
        "\u3000",
        "\u3164",
        "\ufe0f",
        "\ufeff",
        "\ud800",
        "\udc00",
        "\U000e0041",
        "ｍ",
        "１",
        "ﬁ",
        "\u0301",
        "\ufdfa",
        "m-1001",
    ]
)
ANY_TEXT = st.lists(st.one_of(st.characters(codec=None), TRICKY), max_size=30).map("".join)
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def post(api: Api, path: str, body: dict[str, Any], who: tuple[str, str], **headers: str) -> Any:
    """POST with the body encoded here: ASCII JSON carries unpaired surrogates as \\ud800."""
    return api.client.post(
        path,
        content=json.dumps(body).encode(),
        headers={**api.token(*who), "Content-Type": "application/json", **headers},
    )


def assert_identifier(value: str) -> None:
    assert unicodedata.normalize("NFKC", value) == value
    assert value and not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs", "Cs") for ch in value)


@pytest.fixture
def fast_api(api_factory: Callable[..., Api]) -> Api:
    return api_factory({"rate_limit_per_minute": 10**6})


@HYPOTHESIS
@given(merchant_id=ANY_TEXT, order_ref=ANY_TEXT, subject=ANY_TEXT, description=ANY_TEXT)
def test_arbitrary_filings_never_get_a_5xx_and_store_clean_identifiers(
    fast_api: Api, merchant_id: str, order_ref: str, subject: str, description: str
) -> None:
    body = {
        **FILING,
        "merchant_id": merchant_id,
        "order_ref": order_ref,
        "subject": subject,
        "description": description,
    }
    response = post(fast_api, "/v1/cases", body, CONSUMER)
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"]
        return
    case = response.json()
    assert_identifier(case["merchant_id"])
    assert_identifier(case["order_ref"])
    assert case["merchant_id"] == unicodedata.normalize("NFKC", merchant_id)
    assert (case["subject"], case["description"]) == (subject, description)  # free text kept as written


@HYPOTHESIS
@given(mediator_id=ANY_TEXT, display_name=ANY_TEXT)
def test_arbitrary_mediator_ids_never_get_a_5xx_and_are_stored_clean(
    fast_api: Api, mediator_id: str, display_name: str
) -> None:
    body = {"id": mediator_id, "display_name": display_name, "categories": ["*"], "languages": ["*"], "capacity": 3}
    response = post(fast_api, "/v1/mediators", body, ("adm-1", "admin"))
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code == 201:
        stored = response.json()
        assert_identifier(stored["id"])
        assert "/" not in stored["id"] and stored["display_name"] == display_name


@HYPOTHESIS
@given(body=ANY_TEXT, reason=ANY_TEXT, mediator_id=ANY_TEXT)
def test_arbitrary_messages_and_assignments_never_get_a_5xx(
    fast_api: Api, body: str, reason: str, mediator_id: str
) -> None:
    case = post(fast_api, "/v1/cases", FILING, CONSUMER).json()
    version = f'"{case["version"]}"'
    message = post(fast_api, f"/v1/cases/{case['id']}/messages", {"body": body}, CONSUMER, **{"If-Match": version})
    assert message.status_code in (201, 422), message.text
    if message.status_code == 201:
        assert message.json()["body"] == body
        version = message.headers["ETag"]
    assign = post(
        fast_api,
        f"/v1/cases/{case['id']}/transitions",
        {"trigger": "assign", "reason": reason, "data": {"mediator_id": mediator_id}},
        ("med-1", "mediator"),
        **{"If-Match": version},
    )
    assert assign.status_code in (200, 422), assign.text
    if assign.status_code == 200:
        assert_identifier(assign.json()["mediator_id"])


@pytest.mark.parametrize("currency", ["XYZ", "ABC", "cny", "XTS", "XXX"])
def test_only_iso_4217_currencies_are_accepted(api: Api, currency: str) -> None:
    consumer = api.token(*CONSUMER)
    refused = api.client.post(
        "/v1/cases", json={**FILING, "claim": {"amount": 100, "currency": currency}}, headers=consumer
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["claim.currency"]
    assert api.client.get("/v1/cases", headers=consumer).json()["data"] == []
    fine = api.client.post("/v1/cases", json={**FILING, "claim": {"amount": 100, "currency": "USD"}}, headers=consumer)
    assert fine.status_code == 201 and fine.json()["claim"]["currency"] == "USD"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_id", "   "),
        ("merchant_id", "\u3000"),
        ("subject", " \t "),
        ("subject", "\u200b"),
        ("description", "\n\n"),
        ("description", "\u200b\ufeff "),
        ("order_ref", " "),
    ],
)
def test_blank_identifiers_and_texts_are_refused(api: Api, field: str, value: str) -> None:
    refused = api.client.post("/v1/cases", json={**FILING, field: value}, headers=api.token(*CONSUMER))
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:dispute-engine:problem:validation"
    assert [e["field"] for e in refused.json()["errors"]] == [field]


@pytest.mark.parametrize(
    "merchant_id",
    [
        "m-1001\u200b",
        "m-10\u200d01",
        "\u202em-1001",
        "m-1001\u2066",
        "m-1001\ufeff",
        "m-1001\u3164",
        "m 1001",
        "m-1001\x00",
        "m-1001\x1b[2J",
    ],
)
def test_invisible_and_control_characters_in_identifiers_are_refused(api: Api, merchant_id: str) -> None:
    refused = api.client.post("/v1/cases", json={**FILING, "merchant_id": merchant_id}, headers=api.token(*CONSUMER))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["merchant_id"]


def test_a_look_alike_merchant_id_files_against_the_real_merchant(api: Api) -> None:
    filed = api.client.post("/v1/cases", json={**FILING, "merchant_id": "ｍ-１００１"}, headers=api.token(*CONSUMER))
    assert filed.status_code == 201, filed.text
    case = filed.json()
    assert case["merchant_id"] == "m-1001"
    merchant = api.token("mu-1001", "merchant", "m-1001")
    assert api.client.get(f"/v1/cases/{case['id']}", headers=merchant).status_code == 200
    # A filter spelt with the look-alike finds the case too.
    listed = api.client.get("/v1/cases", params={"merchant_id": "ｍ-１００１"}, headers=api.token("aud-1", "auditor"))
    assert [c["id"] for c in listed.json()["data"]] == [case["id"]]
    bad_filter = api.client.get(
        "/v1/cases", params={"merchant_id": "m-1001\u200b"}, headers=api.token("aud-1", "auditor")
    )
    assert bad_filter.status_code == 422


def test_whitespace_only_messages_and_answers_are_refused(api: Api) -> None:
    consumer = api.token(*CONSUMER)
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    refused = api.client.post(
        f"/v1/cases/{case['id']}/messages",
        json={"body": " \n\t "},
        headers={**consumer, "If-Match": f'"{case["version"]}"'},
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body"
    assert api.client.get(f"/v1/cases/{case['id']}/messages", headers=consumer).json()["data"] == []


def test_the_document_states_each_field_rule(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    filing = schemas["CaseCreate"]["properties"]
    assert "NFKC" in filing["merchant_id"]["description"] and filing["merchant_id"]["pattern"]
    assert "bidi" in filing["subject"]["description"] and filing["subject"]["pattern"]
    money = schemas["Money"]["properties"]["currency"]
    assert "ISO 4217" in money["description"] and money["pattern"] == "^[A-Z]{3}$"
    transition = schemas["TransitionRequest"]["properties"]["data"]["description"]
    assert "registered, active mediator" in transition and "mediator-unavailable" in transition
