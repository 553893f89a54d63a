"""A new desk runs through the HTTP API end to end with no code change: the chargeback example
served from its directory (DISPUTES_CONFIG_DIR), filed, represented, reversed, taken to
pre-arbitration and ruled on; a missed evidence deadline decided by the ticker's sweep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cases.sweep import fire_due_timers
from runtime.bootstrap import build_engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.actors import T0
from tests.support.api import Api, Party
from tests.support.builders import register_mediators

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHARGEBACK: dict[str, Any] = {
    "merchant_id": "m-77",
    "order_ref": "CARD-2026-03-0042",
    "category": "visa-13.1",
    "subject": "Concert tickets never delivered",
    "description": "Paid by card on 20 February; no tickets arrived and the merchant does not answer.",
    "claim": {"amount": 60000, "currency": "EUR"},
}


@pytest.fixture
def chargeback_api(db_url: str) -> Iterator[Api]:
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=EXAMPLES / "chargeback")
    clock = ManualClock(T0)
    engine = build_engine(settings, clock=clock)  # the desk the settings name, as `disputes serve` does
    service = engine.cases
    client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
    client.__enter__()
    yield Api(client=client, service=service, clock=clock, settings=settings, engine=engine)
    client.__exit__(None, None, None)
    service.db.dispose()


def file(api: Api, cardholder: Party) -> dict[str, Any]:
    created = api.client.post("/v1/cases", json=CHARGEBACK, headers=cardholder.headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_a_chargeback_from_dispute_to_arbitration_over_http(chargeback_api: Api) -> None:
    api = chargeback_api
    cardholder = Party(api, "card-holder-1", "consumer")
    merchant = Party(api, "m77-staff", "merchant", "m-77")
    analyst = Party(api, "analyst-1", "mediator")
    arbitrator = Party(api, "network-arb-1", "senior_mediator")
    # The analyst who decides becomes the case's mediator (`assigns_mediator`): a registered one.
    register_mediators(api.service, ["analyst-1"])
    case = file(api, cardholder)
    case_id = case["id"]
    assert case["workflow"] == "card_chargeback" and case["state"] == "awaiting_evidence"

    actions = {a["name"]: a for a in merchant.get(f"/v1/cases/{case_id}/actions")["data"]}
    assert {"represent", "accept_chargeback", "arbitrate"} <= set(actions)
    assert not actions["represent"]["allowed"]
    assert "a representment is the merchant's submitted evidence" in " ".join(actions["represent"]["reasons"])

    refused = merchant.post(case_id, "/transitions", {"trigger": "represent"}, expect=403).json()
    assert refused["type"] == "urn:dispute-engine:problem:policy-denied"
    merchant.post(
        case_id,
        "/evidence",
        expect=201,
        files={"file": ("proof.pdf", b"%PDF-1.4 delivery receipt", "application/pdf")},
        data={"description": "Courier receipt"},
    )
    merchant.post(case_id, "/evidence/submit")
    assert merchant.move(case_id, "represent")["state"] == "issuer_review"

    assert analyst.move(case_id, "reverse", reason="Delivery receipt signed.")["state"] == "merchant_won"
    api.clock.advance(timedelta(days=3))
    escalated = cardholder.move(case_id, "pre_arbitrate", reason="The signature is not mine.")
    assert escalated["state"] == "pre_arbitration"
    # The analyst who reversed is not the arbitrator; the network's arbitrator rules.
    analyst.post(case_id, "/transitions", {"trigger": "arbitrate", "data": {"decision": "for_merchant"}}, expect=403)
    ruled = arbitrator.move(case_id, "arbitrate", data={"decision": "partial", "awarded_amount": 30000})
    assert (ruled["state"], ruled["outcome"], ruled["awarded"]) == (
        "resolved",
        "partial",
        {"amount": 30000, "currency": "EUR"},
    )

    history = cardholder.get(f"/v1/cases/{case_id}/events?limit=200")["data"]
    moves = [e["data"]["trigger"] for e in history if e["type"] == "transitioned"]
    assert moves == ["represent", "reverse", "pre_arbitrate", "arbitrate"]
    assert {e["workflow_version"] for e in history} == {api.service.registry.active().version}


def test_a_missed_evidence_deadline_is_decided_by_the_sweep(chargeback_api: Api) -> None:
    api = chargeback_api
    cardholder = Party(api, "card-holder-2", "consumer")
    case_id = file(api, cardholder)["id"]
    timers = cardholder.get(f"/v1/cases/{case_id}/timers")["data"]
    assert [(t["name"], t["status"], t["goal"]) for t in timers] == [("evidence_due", "running", "10 days")]
    api.clock.advance(timedelta(days=10))
    assert fire_due_timers(api.service, api.clock.now()) == 1
    case = cardholder.get(f"/v1/cases/{case_id}")
    assert (case["state"], case["outcome"], case["awarded"]["amount"]) == ("resolved", "for_consumer", 60000)
