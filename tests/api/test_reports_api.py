"""Reports and mediators over real HTTP: classification on filing, routing, problem+json errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from cases.triage import Triage
from tests.support.actors import T0
from tests.support.api import Api

INTAKE = Triage.load()
AUDITOR = ("aud-1", "auditor")
ADMIN = ("adm-1", "admin")
FILING = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "subject": "收到的耳机是假货",
    "description": "官网查询序列号无效。",
    "claim": {"amount": 89900, "currency": "CNY"},
}
MEDIATOR = {
    "id": "med-li",
    "display_name": "李调解员",
    "categories": ["counterfeit", "product_quality"],
    "languages": ["zh"],
    "capacity": 4,
}


@pytest.fixture
def desk(api_factory: Callable[..., Api]) -> Api:
    api = api_factory(mediators=())  # the router's tests register their own
    api.service.triage = INTAKE
    return api


def test_filing_without_category_is_classified_and_shows_why(desk: Api) -> None:
    created = desk.client.post("/v1/cases", json=FILING, headers=desk.token("c-1", "consumer"))
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["category"] == "counterfeit" and case["priority"] == "high" and case["state"] == "filed"
    history = desk.client.get(f"/v1/cases/{case['id']}/events", headers=desk.token("c-1", "consumer")).json()
    evidence = history["data"][0]["data"]["classification"]["rule_evidence"]["matches"]
    assert any(e["term"] == "假货" for e in evidence)


def test_mediators_are_managed_by_admins_and_route_new_cases(desk: Api) -> None:
    admin = desk.token(*ADMIN)
    created = desk.client.post("/v1/mediators", json=MEDIATOR, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/v1/mediators/med-li"
    assert created.json()["open_load"] == 0 and created.json()["calendar"] == "default"
    again = desk.client.post("/v1/mediators", json=MEDIATOR, headers=admin)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "urn:dispute-engine:problem:already-exists"
    case = desk.client.post("/v1/cases", json=FILING, headers=desk.token("c-1", "consumer")).json()
    assert case["state"] == "assigned" and case["mediator_id"] == "med-li"
    assert desk.client.get(f"/v1/cases/{case['id']}", headers=desk.token("med-li", "mediator")).status_code == 200
    listed = desk.client.get("/v1/mediators", headers=desk.token(*AUDITOR)).json()["data"]
    assert [(m["id"], m["open_load"]) for m in listed] == [("med-li", 2)]  # counterfeit: high priority, weight 2
    paused = desk.client.patch("/v1/mediators/med-li", json={"active": False}, headers=admin)
    assert paused.status_code == 200 and paused.json()["active"] is False
    waiting = desk.client.post("/v1/cases", json={**FILING, "order_ref": "TB-2"}, headers=desk.token("c-1", "consumer"))
    assert waiting.json()["state"] == "filed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**MEDIATOR, "categories": ["shoes"]}, "categories.0"),
        ({**MEDIATOR, "capacity": -1}, "capacity"),
        ({**MEDIATOR, "role": "admin"}, "role"),
        ({**MEDIATOR, "calendar": "mars"}, "calendar"),
    ],
)
def test_bad_mediators_are_refused_with_the_field(desk: Api, body: dict[str, object], field: str) -> None:
    refused = desk.client.post("/v1/mediators", json=body, headers=desk.token(*ADMIN))
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in refused.json()["errors"]]
    assert desk.client.get("/v1/mediators", headers=desk.token(*ADMIN)).json()["data"] == []


def test_a_mediator_id_in_any_script_is_located_percent_encoded(desk: Api) -> None:
    created = desk.client.post("/v1/mediators", json={**MEDIATOR, "id": "调解员李"}, headers=desk.token(*ADMIN))
    assert created.status_code == 201 and created.json()["id"] == "调解员李"
    assert created.headers["Location"] == "/v1/mediators/%E8%B0%83%E8%A7%A3%E5%91%98%E6%9D%8E"
    slash = desk.client.post("/v1/mediators", json={**MEDIATOR, "id": "a/b"}, headers=desk.token(*ADMIN))
    assert slash.status_code == 422 and slash.json()["errors"][0]["field"] == "id"
    changed = desk.client.patch(created.headers["Location"], json={"capacity": 1}, headers=desk.token(*ADMIN))
    assert changed.status_code == 200 and changed.json()["capacity"] == 1


def test_patching_an_unknown_mediator_or_with_null_is_refused(desk: Api) -> None:
    admin = desk.token(*ADMIN)
    assert desk.client.patch("/v1/mediators/nobody", json={"capacity": 3}, headers=admin).status_code == 404
    desk.client.post("/v1/mediators", json=MEDIATOR, headers=admin)
    null = desk.client.patch("/v1/mediators/med-li", json={"capacity": None}, headers=admin)
    assert null.status_code == 422 and null.json()["errors"][0]["field"] == "capacity"


def test_reports_answer_auditors_with_figures(desk: Api) -> None:
    consumer, auditor = desk.token("c-1", "consumer"), desk.token(*AUDITOR)
    assert desk.client.post("/v1/cases", json=FILING, headers=consumer).status_code == 201
    desk.clock.set(T0 + timedelta(hours=1))
    since, until = "2026-03-01T00:00:00Z", "2026-03-09T00:00:00Z"
    merchants = desk.client.get("/v1/reports/merchants", params={"since": since, "until": until}, headers=auditor)
    assert merchants.status_code == 200, merchants.text
    row = merchants.json()["data"][0]
    assert (row["merchant_id"], row["complaints"], row["flagged"]) == ("m-1", 1, False)
    assert row["by_category"] == [{"category": "counterfeit", "complaints": 1, "percent": 100.0}]
    hotspots = desk.client.get("/v1/reports/hotspots", params={"since": since, "until": until}, headers=auditor)
    assert hotspots.json()["data"][0] == {
        "merchant_id": "m-1",
        "category": "counterfeit",
        "complaints": 1,
        "previous_period": 0,
        "change": 1,
        "change_percent": None,
    }
    assert hotspots.json()["weeks"][0]["week"] == "2026-W10"
    assert desk.client.get("/v1/reports/sla", headers=auditor).json()["by_clock"] == []  # nothing ended yet
    defaults = desk.client.get("/v1/reports/merchants", headers=desk.token(*ADMIN)).json()
    assert defaults["until"].startswith("2026-03-02T03:00") and defaults["data"][0]["complaints"] == 1
    satisfaction = desk.client.get("/v1/reports/satisfaction", headers=auditor).json()
    assert satisfaction["by_mediator"] == [] and satisfaction["comments"] == []


@pytest.mark.parametrize(
    "path", ["/v1/reports/merchants", "/v1/reports/hotspots", "/v1/reports/sla", "/v1/reports/satisfaction"]
)
def test_reports_refuse_others_and_bad_periods(desk: Api, path: str) -> None:
    refused = desk.client.get(path, headers=desk.token("med-1", "mediator"))
    assert refused.status_code == 403 and refused.json()["type"] == "urn:dispute-engine:problem:policy-denied"
    auditor = desk.token(*AUDITOR)
    backwards = desk.client.get(path, params={"since": "2026-03-05", "until": "2026-03-01"}, headers=auditor)
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "until"
    assert desk.client.get(path, params={"since": "yesterday"}, headers=auditor).status_code == 422
    assert desk.client.get(path, params={"colour": "red"}, headers=auditor).status_code == 422


def test_openapi_documents_the_new_routes_with_examples(desk: Api) -> None:
    document = desk.client.get("/openapi.json").json()
    for path in (
        "/v1/reports/merchants",
        "/v1/reports/hotspots",
        "/v1/reports/sla",
        "/v1/reports/satisfaction",
        "/v1/mediators",
        "/v1/mediators/{mediator_id}",
    ):
        assert path in document["paths"]
    schemas = document["components"]["schemas"]
    for name in (
        "MerchantsReportPublic",
        "HotspotsPublic",
        "SlaPublic",
        "SatisfactionPublic",
        "MediatorCreate",
        "MediatorPublic",
    ):
        assert schemas[name].get("examples"), name
    assert "already-exists" in str(document["paths"]["/v1/mediators"]["post"]["responses"]["409"])
