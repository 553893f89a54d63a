"""Case facts over HTTP, on the guarantee example desk: typed facts validated at filing (422
naming ``facts.<name>``), stored on the case, read by the policies (403 with the rule's reason),
pinned per case across a desk change, and replayed by what-if under changed rules."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from audit.whatif import what_if_case
from desk.loader import load_desk
from runtime.bootstrap import apply_desk, build_engine
from runtime.settings import Settings
from sla.clock import ManualClock
from sla.planner import SlaPlanner
from tests.support.api import Api, Party
from tests.support.builders import register_mediators

GUARANTEE = Path(__file__).resolve().parents[2] / "examples" / "guarantee"
# Thursday 5 March 2026, 10:00 in Seattle.
FILED_AT = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
FACTS: dict[str, Any] = {
    "delivered_on": "2026-02-20",
    "contacted_seller_at": "2026-03-03T10:00:00-08:00",
    "order_total": {"amount": 4999, "currency": "USD"},
    "fulfilment": "marketplace",
}


ORDERS = itertools.count(1)


def claim(order_ref: str | None = None, **facts: Any) -> dict[str, Any]:
    """A claim on a new order each time (the desk takes one claim per order), or on ``order_ref``."""
    merged = {k: v for k, v in {**FACTS, **facts}.items() if v is not None}
    return {
        "merchant_id": "m-1",
        "order_ref": order_ref or f"AMZ-112-{next(ORDERS):04d}",
        "category": "not_received",
        "subject": "Parcel never arrived",
        "description": "Tracking says delivered; nothing at the door.",
        "claim": {"amount": 4999, "currency": "USD"},
        "facts": merged,
    }


@pytest.fixture
def desk_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "guarantee"
    shutil.copytree(GUARANTEE, copy)
    return copy


@pytest.fixture
def api(db_url: str, desk_dir: Path) -> Iterator[Api]:
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=desk_dir)
    clock = ManualClock(FILED_AT)
    engine = build_engine(settings, clock=clock)
    client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
    client.__enter__()
    register_mediators(engine.cases, ["med-1", "sen-1"])
    yield Api(client=client, service=engine.cases, clock=clock, settings=settings, engine=engine)
    client.__exit__(None, None, None)
    engine.cases.db.dispose()


def test_facts_are_validated_stored_and_shown(api: Api) -> None:
    buyer = Party(api, "c-1", "consumer")
    created = api.client.post("/v1/cases", json=claim(), headers=buyer.headers)
    assert created.status_code == 201, created.text
    case = created.json()
    # Stored in one form: the instant in UTC, the date as written, money as a record.
    assert case["facts"] == {
        "delivered_on": "2026-02-20",
        "contacted_seller_at": "2026-03-03T18:00:00.000000Z",
        "order_total": {"amount": 4999, "currency": "USD"},
        "fulfilment": "marketplace",
    }
    assert buyer.get(f"/v1/cases/{case['id']}")["facts"] == case["facts"]
    filed = buyer.get(f"/v1/cases/{case['id']}/events")["data"][0]
    assert filed["data"]["facts"] == case["facts"]


@pytest.mark.parametrize(
    ("facts", "field", "says"),
    [
        ({"order_total": None}, "facts.order_total", "is required"),
        ({"colour": "red"}, "facts.colour", "unknown fact"),
        ({"delivered_on": "20 Feb"}, "facts.delivered_on", "a date YYYY-MM-DD"),
        ({"contacted_seller_at": "2026-03-03T10:00:00"}, "facts.contacted_seller_at", "UTC offset"),
        ({"fulfilment": "drone"}, "facts.fulfilment", "one of seller, marketplace"),
        ({"order_total": {"amount": 1.5, "currency": "USD"}}, "facts.order_total", "whole amount"),
        ({"order_total": {"amount": 100, "currency": "usd"}}, "facts.order_total.currency", "capitals"),
    ],
    ids=["missing", "unknown", "bad-date", "naive-instant", "not-in-enum", "float-money", "bad-currency"],
)
def test_bad_facts_are_refused_naming_the_field(api: Api, facts: dict[str, Any], field: str, says: str) -> None:
    refused = api.client.post("/v1/cases", json=claim(**facts), headers=api.token("c-1", "consumer"))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert says in problem["detail"]
    assert api.client.get("/v1/cases", headers=api.token("aud-1", "auditor")).json()["data"] == []


def test_policies_read_the_facts(api: Api) -> None:
    buyer = Party(api, "c-1", "consumer")
    late = api.client.post("/v1/cases", json=claim(delivered_on="2025-11-01"), headers=buyer.headers)
    assert late.status_code == 403 and "within 90 days" in late.text
    hasty = api.client.post(
        "/v1/cases", json=claim(contacted_seller_at="2026-03-05T09:00:00-08:00"), headers=buyer.headers
    )
    assert hasty.status_code == 403 and "48 hours" in hasty.text
    # Seller-shipped orders wait for the seller; marketplace-shipped ones are granted at once.
    investigator = Party(api, "med-1", "mediator")
    waits = api.client.post("/v1/cases", json=claim(fulfilment="seller"), headers=buyer.headers).json()["id"]
    investigator.post(waits, "/transitions", {"trigger": "grant"}, expect=403)
    at_once = api.client.post("/v1/cases", json=claim(), headers=buyer.headers).json()["id"]
    assert investigator.move(at_once, "grant")["state"] == "granted"


def test_a_case_keeps_the_facts_declaration_it_was_filed_under(api: Api, desk_dir: Path) -> None:
    buyer = Party(api, "c-1", "consumer")
    old = api.client.post("/v1/cases", json=claim(fulfilment="seller"), headers=buyer.headers).json()
    workflow = desk_dir / "workflows" / "guarantee_claim.yaml"
    text = workflow.read_text(encoding="utf-8")
    workflow.write_text(
        text.replace("facts:\n", "facts:\n  carrier:\n    type: string\n    required: true\n", 1), encoding="utf-8"
    )
    apply_desk(api.engine, load_desk(desk_dir))
    # New filings need the new fact; the open case runs on under the version it was filed with.
    missing = api.client.post("/v1/cases", json=claim(), headers=buyer.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "facts.carrier"
    new = api.client.post("/v1/cases", json=claim(carrier="UPS"), headers=buyer.headers).json()
    assert new["workflow_version"] != old["workflow_version"] and new["facts"]["carrier"] == "UPS"
    seller = Party(api, "mu-1", "merchant", "m-1")
    moved = seller.move(old["id"], "investigate")
    assert moved["state"] == "investigation" and moved["workflow_version"] == old["workflow_version"]
    assert "carrier" not in moved["facts"]


def test_what_if_replays_with_the_facts(api: Api, desk_dir: Path) -> None:
    buyer = Party(api, "c-1", "consumer")
    case_id = api.client.post("/v1/cases", json=claim(), headers=buyer.headers).json()["id"]
    Party(api, "med-1", "mediator").move(case_id, "grant")
    # Under a rule where every order waits for its seller, that grant would have been refused.
    guards = desk_dir / "policies" / "guards.cedar"
    guards.write_text(
        guards.read_text(encoding="utf-8").replace(
            'unless { resource.facts has fulfilment && resource.facts.fulfilment == "marketplace" };',
            'unless { resource.facts has fulfilment && resource.facts.fulfilment == "nobody" };',
        ),
        encoding="utf-8",
    )
    changed = load_desk(desk_dir)
    with api.engine.cases.db.read() as session:
        report = what_if_case(
            session,
            api.engine.cases.registry,
            case_id,
            workflow=changed.workflow(),
            authorizer=changed.policies,
            workflows={w.name: w for w in changed.workflows},
            sla=SlaPlanner(changed.calendars),
        )
        same = what_if_case(
            session,
            api.engine.cases.registry,
            case_id,
            workflow=changed.workflow(),
            authorizer=load_desk(GUARANTEE).policies,
            sla=SlaPlanner(changed.calendars),
        )
    assert [(d.command, d.now) for d in report.divergences] == [("grant", report.divergences[0].now)]
    assert "seller's 3 days" in report.divergences[0].now
    assert not same.changed


CARD_NETWORK = GUARANTEE.parent / "card_network"
DISPUTE: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "CARD-2026-0042",
    "category": "not_received",
    "subject": "Goods never arrived",
    "description": "Charged on 1 February; nothing delivered.",
    "claim": {"amount": 45000, "currency": "EUR"},
}


@pytest.fixture
def card_api(db_url: str) -> Iterator[Api]:
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=CARD_NETWORK)
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    engine = build_engine(settings, clock=clock)
    client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
    client.__enter__()
    register_mediators(engine.cases, ["med-1"])
    yield Api(client=client, service=engine.cases, clock=clock, settings=settings, engine=engine)
    client.__exit__(None, None, None)
    engine.cases.db.dispose()


def test_the_workflow_is_chosen_by_the_facts_or_picked_within_the_policies(card_api: Api) -> None:
    holder = card_api.token("c-1", "consumer")
    amex = {"network": "amex", "reason_code": "C08", "transaction_at": "2026-02-01T09:00:00Z"}
    visa = {**amex, "network": "visa", "reason_code": "13.1"}
    chosen = card_api.client.post("/v1/cases", json={**DISPUTE, "facts": amex}, headers=holder).json()
    assert (chosen["workflow"], chosen["state"]) == ("amex_inquiry", "inquiry")
    default = card_api.client.post("/v1/cases", json={**DISPUTE, "facts": visa}, headers=holder).json()
    assert (default["workflow"], default["state"]) == ("card_dispute", "awaiting_response")
    picked = card_api.client.post(
        "/v1/cases", json={**DISPUTE, "facts": amex, "workflow": "card_dispute"}, headers=holder
    )
    assert picked.status_code == 201 and picked.json()["workflow"] == "card_dispute"
    refused = card_api.client.post(
        "/v1/cases", json={**DISPUTE, "facts": visa, "workflow": "amex_inquiry"}, headers=holder
    )
    assert refused.status_code == 403 and "only an Amex dispute is filed as an inquiry" in refused.text
    unknown = card_api.client.post(
        "/v1/cases", json={**DISPUTE, "facts": visa, "workflow": "arbitration"}, headers=holder
    )
    assert unknown.status_code == 422 and [e["field"] for e in unknown.json()["errors"]] == ["workflow"]


def test_each_party_reads_the_state_its_own_way(api: Api) -> None:
    buyer = Party(api, "c-1", "consumer")
    case_id = api.client.post("/v1/cases", json=claim(fulfilment="seller"), headers=buyer.headers).json()["id"]
    seller = Party(api, "mu-1", "merchant", "m-1")
    investigator = Party(api, "med-1", "mediator")
    assert buyer.get(f"/v1/cases/{case_id}/status") == {
        "case_id": case_id,
        "state": "seller_response",
        "party": "consumer",
        "label": "Waiting for the seller (3 days)",
        "final": False,
    }
    assert seller.get(f"/v1/cases/{case_id}/status")["label"] == "Your response is required within 3 days"
    # No label of its own: the state's description.
    assert investigator.get(f"/v1/cases/{case_id}/status")["label"].startswith("The seller answers the claim")
    outsider = api.client.get(f"/v1/cases/{case_id}/status", headers=api.token("mu-9", "merchant", "m-9"))
    assert outsider.status_code == 404
    seller.move(case_id, "investigate")
    assert buyer.get(f"/v1/cases/{case_id}/status")["label"] == "We are looking into your claim"


def test_counts_over_related_cases_are_taken_at_filing(api: Api) -> None:
    buyer = Party(api, "c-1", "consumer")
    first = api.client.post("/v1/cases", json=claim("AMZ-112-0042"), headers=buyer.headers)
    assert first.status_code == 201
    # The same order again: refused by the policy reading the count the engine took.
    again = api.client.post("/v1/cases", json=claim("AMZ-112-0042"), headers=buyer.headers)
    assert again.status_code == 403 and "claimed under the guarantee once" in again.text
    # An order reference with LIKE's wildcards matches only itself.
    wild = api.client.post("/v1/cases", json={**claim(), "order_ref": "AMZ_112%0042"}, headers=buyer.headers)
    assert wild.status_code == 201, wild.text
    other = api.client.post("/v1/cases", json={**claim(), "order_ref": "AMZ-112-0099"}, headers=buyer.headers).json()
    events = buyer.get(f"/v1/cases/{other['id']}/events")["data"]
    assert events[0]["data"]["related"] == {"claims_same_order": 0, "claims_against_seller_90d": 2}
    # A third claim against the seller within 90 days: an investigator may not decide it.
    Party(api, "med-1", "mediator").post(other["id"], "/transitions", {"trigger": "grant"}, expect=403)
    assert Party(api, "sen-1", "senior_mediator").move(other["id"], "grant")["state"] == "granted"
