"""The facts given to Cedar: they conform to the schema, and payload facts reach policies."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import cedarpy
import pytest

from policies import facts
from policies.cedar import DEFAULT_POLICY_DIR, CedarAuthorizer, load_policy_dir
from policies.loader import load
from tests.support.actors import CONSUMER, MERCHANT
from tests.support.policy_factories import (
    ALL_ACTORS,
    NOW,
    assigned,
    closed,
    copy_policy_dir,
    offer,
    timer,
    with_accepted_offer,
)
from workflow.model import CaseSnapshot, Evidence, InfoRequest

SCHEMA = cedarpy.Schema.from_str((DEFAULT_POLICY_DIR / "schema.cedarschema").read_text())
DESK = facts.desk_entity("default", {"reopen_window_days": 15}, {"CNY": 500000})


def full_case() -> CaseSnapshot:
    evidence = (
        Evidence("ev1", "consumer", "c-1", "a.jpg", "image/jpeg", 10, "0" * 64, status="submitted"),
        Evidence("ev2", "merchant", "mu-1", "b.pdf", "application/pdf", 10, "1" * 64),
    )
    request = InfoRequest("rq3", "merchant", "Where is the receipt?", "med-1")
    timers = (
        timer("resolution", "running", warned=True),
        timer("merchant_response", "met"),
        timer("ruling", "breached"),
        timer("fulfilment", "paused", warned=True),
    )
    snapshot = with_accepted_offer(
        closed(
            outcome="settled_by_offer",
            awarded_amount=20000,
            flags=("vip",),
            evidence=evidence,
            info_requests=(request,),
            timers=timers,
            reopen_count=1,
        )
    )
    return snapshot.evolve(offers=(*snapshot.offers, offer(offer_id="off9", status="open", decided_by=None)))


def test_the_facts_of_a_full_case_conform_to_the_schema() -> None:
    snapshot = full_case()
    entity = facts.case_entity(snapshot, "default")
    cedarpy.Entities.from_json_str(json.dumps([DESK, facts.user_entity(MERCHANT), entity]), SCHEMA)
    attrs = entity["attrs"]
    assert attrs["timers"] == {
        "running": ["resolution"],
        "paused": ["fulfilment"],
        "warned": ["resolution", "fulfilment"],
        "breached": ["ruling"],
        "met": ["merchant_response"],
    }
    assert attrs["evidence"] == {
        "total": 2,
        "submitted": 1,
        "consumer": 1,
        "merchant": 1,
        "consumer_submitted": 1,
        "merchant_submitted": 0,
    }
    assert attrs["awaiting"] == ["merchant"]
    assert attrs["accepted_offer"] is True and attrs["accepted_offer_amount"] == 20000
    assert attrs["open_offers"] == 1
    assert attrs["closed_at"] == facts.epoch_seconds(NOW) - 86400
    assert attrs["mediator"] == {"__entity": {"type": "User", "id": "med-1"}}


def test_the_facts_of_a_bare_case_conform_to_the_schema() -> None:
    entity = facts.case_entity(assigned().evolve(mediator_id=None, id=""), "default")
    cedarpy.Entities.from_json_str(json.dumps([DESK, facts.user_entity(CONSUMER), entity]), SCHEMA)
    assert entity["uid"]["id"] == "(new)"
    assert "mediator" not in entity["attrs"] and "closed_at" not in entity["attrs"]


def test_schema_checked_requests_agree_with_the_fast_path(authorizer: CedarAuthorizer) -> None:
    # check_requests sends every request, with its context, through the schema.
    strict = CedarAuthorizer(load(DEFAULT_POLICY_DIR), check_requests=True)
    actions = sorted(authorizer.case_actions)
    for snapshot in (full_case(), assigned("mediating", merchant_responded=True)):
        for actor in ALL_ACTORS:
            fast = authorizer.decide_many(actor=actor, actions=actions, case=snapshot, now=NOW)
            checked = strict.decide_many(actor=actor, actions=actions, case=snapshot, now=NOW)
            assert fast == checked
            assert all(d.errors == () for d in checked)
    payload = {
        "mediator_id": "med-2",
        "amount": 100,
        "currency": "CNY",
        "decision": "partial",
        "awarded_amount": 5,
        "internal": True,
        "party": "consumer",
        "offer_id": "off9",
        "score": 5,
    }
    decision = strict.decide(actor=CONSUMER, action="comment", case=full_case(), now=NOW, payload=payload)
    assert decision.errors == ()


def test_payload_facts_keep_only_well_typed_values() -> None:
    snapshot = with_accepted_offer(assigned("mediating"))
    payload = {
        "amount": True,
        "awarded_amount": 2**70,
        "internal": 1,
        "score": 4,
        "party": "merchant",
        "mediator_id": "med-2",
        "offer_id": "off5",
        "unknown": "x",
        "decision": None,
    }
    assert facts.payload_facts(payload, snapshot) == {
        "score": 4,
        "party": "merchant",
        "offer_id": "off5",
        "offer_amount": 20000,
        "offer_proposed_by": "merchant",
        "mediator": {"__entity": {"type": "User", "id": "med-2"}},
    }
    assert facts.payload_facts({"offer_id": "nope"}, snapshot) == {"offer_id": "nope"}
    assert facts.payload_facts(None, snapshot) == {}


def test_naive_instants_are_refused(authorizer: CedarAuthorizer) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        authorizer.decide(actor=CONSUMER, action="view", case=assigned(), now=datetime(2026, 3, 1))


def test_a_desk_rule_on_a_payload_fact(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    (directory / "offers.cedar").write_text(
        '@id("offer-within-claim")\n'
        '@reason("an offer cannot exceed the claim")\n'
        'forbid (principal, action == Action::"propose_offer", resource is Case)\n'
        "when { context.payload has amount && context.payload.amount > resource.claim_amount };\n"
    )
    authorizer = load_policy_dir(directory)
    snapshot = assigned("mediating")
    ok = authorizer.decide(actor=MERCHANT, action="propose_offer", case=snapshot, now=NOW, payload={"amount": 100})
    assert ok.allowed
    too_much = authorizer.decide(
        actor=MERCHANT, action="propose_offer", case=snapshot, now=NOW, payload={"amount": snapshot.claim_amount + 1}
    )
    assert not too_much.allowed and too_much.policy_ids == ("offer-within-claim",)
    # Listing actions has no payload: the rule does not fire, nothing errors.
    listed = authorizer.decide_many(actor=MERCHANT, actions=["propose_offer"], case=snapshot, now=NOW)
    assert listed[0].allowed and listed[0].errors == ()
