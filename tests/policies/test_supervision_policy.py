"""The example supervision policy: a flagged merchant may not propose offers below the claim,
and the reports are for auditors and admins."""

from __future__ import annotations

from policies.cedar import CedarAuthorizer, load_policy_dir
from policies.facts import case_entity
from tests.support.actors import ADMIN, AUDITOR, CONSUMER, MEDIATOR, MERCHANT
from tests.support.policy_factories import NOW, assigned

AUTHZ: CedarAuthorizer = load_policy_dir()
REASON = "a merchant under supervision for repeated complaints may only offer the full claim"


def test_merchant_flagged_is_a_fact_of_the_case() -> None:
    assert case_entity(assigned(), "default")["attrs"]["merchant_flagged"] is False
    flagged = assigned(flags=("merchant_flagged",))
    assert case_entity(flagged, "default")["attrs"]["merchant_flagged"] is True


def test_a_flagged_merchant_may_not_offer_less_than_the_claim() -> None:
    flagged = assigned(state="mediating", flags=("merchant_flagged",))
    claim = flagged.claim_amount
    below = AUTHZ.decide(actor=MERCHANT, action="propose_offer", case=flagged, now=NOW, payload={"amount": claim - 1})
    assert not below.allowed
    assert below.reasons == (REASON,) and below.policy_ids == ("flagged-merchant-offers-full-claim",)
    full = AUTHZ.decide(actor=MERCHANT, action="propose_offer", case=flagged, now=NOW, payload={"amount": claim})
    assert full.allowed


def test_unflagged_merchants_and_consumers_offer_freely() -> None:
    plain = assigned(state="mediating")
    assert AUTHZ.decide(actor=MERCHANT, action="propose_offer", case=plain, now=NOW, payload={"amount": 1}).allowed
    flagged = assigned(state="mediating", flags=("merchant_flagged",))
    assert AUTHZ.decide(actor=CONSUMER, action="propose_offer", case=flagged, now=NOW, payload={"amount": 1}).allowed


def test_reports_are_for_auditors_and_admins() -> None:
    assert AUTHZ.decide_desk(actor=AUDITOR, action="view_reports", now=NOW).allowed
    assert AUTHZ.decide_desk(actor=ADMIN, action="view_reports", now=NOW).allowed
    for actor in (MEDIATOR, MERCHANT, CONSUMER):
        assert not AUTHZ.decide_desk(actor=actor, action="view_reports", now=NOW).allowed
    # Auditors still change nothing, mediators included.
    assert not AUTHZ.decide_desk(actor=AUDITOR, action="manage_mediators", now=NOW).allowed
