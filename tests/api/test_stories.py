"""End-to-end stories through the HTTP app, one per way a dispute goes."""

from __future__ import annotations

from datetime import timedelta

from cases.sweep import fire_due_timers
from tests.support.api import Api, file_case, parties
from workflow.model import from_iso


def test_settled_by_an_accepted_partial_refund_then_rated(api: Api) -> None:
    consumer, merchant, mediator, _ = parties(api)
    case_id = file_case(api, consumer)
    upload = consumer.post(
        case_id,
        "/evidence",
        expect=201,
        files={"file": ("photo.png", b"\x89PNG fake image bytes", "image/png")},
        data={"description": "内胆照片"},
    )
    evidence = upload.json()
    assert evidence["status"] == "draft" and evidence["size"] == 21
    submitted = consumer.post(case_id, "/evidence/submit", expect=200).json()
    assert [e["status"] for e in submitted["data"]] == ["submitted"]
    content = api.client.get(f"/v1/cases/{case_id}/evidence/{evidence['id']}/content", headers=merchant.headers)
    assert content.status_code == 200 and content.content == b"\x89PNG fake image bytes"

    assert mediator.move(case_id, "assign")["state"] == "assigned"
    merchant.post(case_id, "/responses", {"statement": "We apologise and offer a partial refund."}, expect=201)
    assert mediator.move(case_id, "start_mediation")["state"] == "mediating"
    offer = merchant.post(
        case_id, "/offers", {"amount": 20000, "currency": "CNY", "terms": "Keep the cooker."}, expect=201
    ).json()
    assert offer["status"] == "open" and offer["proposed_by"] == "merchant"
    accepted = consumer.post(case_id, f"/offers/{offer['id']}/accept", {}).json()
    assert accepted["status"] == "accepted"
    settled = mediator.move(case_id, "settle")
    assert settled["state"] == "settled" and settled["awarded"] == {"amount": 20000, "currency": "CNY"}
    assert mediator.move(case_id, "close")["state"] == "closed"
    rating = consumer.post(case_id, "/feedback", {"score": 4, "comment": "Fair outcome."}, expect=201).json()
    assert rating["score"] == 4 and rating["party"] == "consumer"
    consumer.post(case_id, "/feedback", {"score": 5}, expect=422)  # once per party
    types = [e["type"] for e in mediator.get(f"/v1/cases/{case_id}/events?limit=200")["data"]]
    assert types[0] == "filed" and "offer_accepted" in types and types.count("rated") == 1


def test_silent_merchant_is_decided_against_by_the_clock(api: Api) -> None:
    consumer, merchant, mediator, _ = parties(api)
    case_id = file_case(api, consumer)
    mediator.move(case_id, "assign")
    timers = mediator.get(f"/v1/cases/{case_id}/timers")["data"]
    response_clock = next(t for t in timers if t["name"] == "merchant_response")
    assert response_clock["status"] == "running" and response_clock["remaining_business_seconds"] == 48 * 3600
    api.clock.set(from_iso(response_clock["due_at"]))
    assert fire_due_timers(api.service, api.clock.now()) == 1
    case = consumer.get(f"/v1/cases/{case_id}")
    assert case["state"] == "settled" and case["outcome"] == "for_consumer"
    assert case["awarded"] == {"amount": 45900, "currency": "CNY"}
    events = mediator.get(f"/v1/cases/{case_id}/events?limit=200")["data"]
    decided = [e for e in events if e["type"] == "transitioned"][-1]
    assert decided["trigger"] == "decide_for_consumer" and decided["actor"]["role"] == "system"


def test_failed_mediation_escalates_and_a_senior_mediator_rules(api: Api) -> None:
    consumer, merchant, mediator, senior = parties(api)
    case_id = file_case(api, consumer)
    mediator.move(case_id, "assign")
    merchant.post(case_id, "/responses", {"statement": "The coating is fine; misuse."}, expect=201)
    mediator.move(case_id, "start_mediation")
    offer = merchant.post(case_id, "/offers", {"amount": 5000, "currency": "CNY"}, expect=201).json()
    assert consumer.post(case_id, f"/offers/{offer['id']}/reject", {"reason": "Too little."}).json()["status"] == (
        "rejected"
    )
    assert mediator.move(case_id, "escalate", reason="parties far apart")["state"] == "escalated"
    ruled = senior.move(
        case_id,
        "rule",
        data={"decision": "partial", "awarded_amount": 30000, "citations": ["crpl-24"]},
        reason="coating defect shown by photos",
    )
    assert ruled["state"] == "settled" and ruled["outcome"] == "partial" and ruled["awarded"]["amount"] == 30000


def test_consumer_withdraws(api: Api) -> None:
    consumer, _, mediator, _ = parties(api)
    case_id = file_case(api, consumer)
    mediator.move(case_id, "assign")
    withdrawn = consumer.move(case_id, "withdraw", reason="The merchant refunded me directly.")
    assert withdrawn["state"] == "closed" and withdrawn["outcome"] == "withdrawn"
    consumer.post(case_id, "/transitions", {"trigger": "assign"}, expect=409)


def test_consumer_reopens_after_an_unpaid_settlement(api: Api) -> None:
    consumer, merchant, mediator, _ = parties(api)
    case_id = file_case(api, consumer)
    mediator.move(case_id, "assign")
    merchant.move(case_id, "accept_claim")
    mediator.move(case_id, "close")
    api.clock.advance(timedelta(days=3))
    reopened = consumer.move(case_id, "reopen", reason="The refund never arrived.")
    assert reopened["state"] == "mediating" and reopened["reopen_count"] == 1 and reopened["outcome"] is None
    timers = {t["name"]: t["status"] for t in mediator.get(f"/v1/cases/{case_id}/timers")["data"]}
    assert timers["resolution"] == "running"
