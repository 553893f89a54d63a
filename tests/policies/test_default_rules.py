"""Every rule of the default policy set, allowed once and refused once, with its reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from policies.cedar import CedarAuthorizer
from tests.support.actors import (
    ADMIN,
    AUDITOR,
    CONSUMER,
    MEDIATOR,
    MERCHANT,
    OTHER_CONSUMER,
    OTHER_MEDIATOR,
    OTHER_MERCHANT,
    SENIOR,
)
from tests.support.policy_factories import NOW, assigned, case, closed, timer, with_accepted_offer
from workflow.model import SYSTEM, Actor, CaseSnapshot


def no_permit(action: str, actor: Actor, snapshot: CaseSnapshot) -> str:
    return f"no policy permits {action} for role {actor.role} in state {snapshot.state}"


R_CONSUMER_READS = "the consumer who filed the case may read it"
R_MERCHANT_READS = "the merchant the case is against may read it"
R_MEDIATOR_READS = "the mediator assigned to the case may read it, internal notes included"
R_QUEUE = "any mediator may read an unassigned case waiting in the filed queue"
R_SENIOR_READS = "senior mediators may read escalated cases, internal notes included"
R_AUDITOR_READS = "auditors may read every case, its history and its export"
R_FILE = "a consumer may file a case in their own name"
R_AUDITOR_READ_ONLY = "auditors have read-only access: they may not change cases or the desk"
R_ADMIN_OUT = "admins manage the desk's configuration and mediators; they do not read or act in cases"
R_INTERNAL = "internal notes are for mediators and auditors only"
R_ASSIGN = "any mediator or senior mediator may assign a filed case, to themselves or another mediator"
R_SYSTEM_ASSIGNS = "the system router may assign a case"
R_START = "the assigned mediator may start mediation"
R_WAIT_MERCHANT = "mediation starts only once the merchant has responded or its response clock has run out"
R_ACCEPT_CLAIM = "the merchant the case is against may concede the claim in full"
R_SETTLE = "the assigned mediator may settle the case on an accepted offer"
R_NEEDS_OFFER = "a case is settled only on an offer accepted by the party that did not propose it"
R_THRESHOLD = "claims above 5,000.00 CNY must be settled or ruled on by a senior mediator"
R_ESCALATE = "the assigned mediator may escalate the case"
R_PARTY_ESCALATES = "the consumer or the merchant may escalate once the resolution clock has run out"
R_SYSTEM_ESCALATES = "the system escalates a case when its clock runs out"
R_RULE = "a senior mediator may rule on an escalated case"
R_SYSTEM_DECIDES = "the system decides for the consumer when the merchant's response clock runs out"
R_ONLY_SYSTEM = "only the system may decide a case for the consumer, when the merchant's response clock has run out"
R_WITHDRAW = "only the consumer who filed the case may withdraw it"
R_REJECT_FILED = "a mediator may reject a case while it is filed"
R_REJECT_ESCALATED = "a senior mediator may reject an escalated case"
R_CLOSE = "the assigned mediator may close a settled case"
R_SYSTEM_CLOSES = "the system closes a settled case when the fulfilment clock ends"
R_REOPEN = "only the consumer who filed the case may reopen it"
R_REOPEN_WINDOW = "a closed case can be reopened only within 15 days of closing"
R_REOPEN_ONCE = "a case can be reopened only once"
R_CONSUMER_PART = (
    "the consumer who filed the case may comment, add and submit evidence, negotiate offers and answer "
    "information requests"
)
R_MERCHANT_PART = (
    "the merchant the case is against may comment, add and submit evidence, negotiate offers and answer "
    "information requests"
)
R_RESPOND = "only the merchant the case is against may respond to the claim"
R_RATE = "the consumer and the merchant may rate a case once it is closed"
R_MEDIATOR_ASKS = "the assigned mediator may comment and request information from the parties"
R_SENIOR_ASKS = "a senior mediator may comment and request information on an escalated case"

BIG = 600_000  # 6,000.00 CNY, above the default threshold
MEDIATING = assigned("mediating")
ESCALATED = assigned("escalated")
SETTLED = assigned("settled")
BREACHED_RESOLUTION = assigned("mediating", timers=(timer("resolution", "breached"),))

# (actor, action, case, allowed, a reason the decision must give, the deciding policy or None)
RULES: list[Any] = [
    # --- reads ---
    pytest.param(CONSUMER, "view", case(), True, R_CONSUMER_READS, "consumer-reads-own-case", id="consumer-views-own"),
    pytest.param(CONSUMER, "export", MEDIATING, True, R_CONSUMER_READS, None, id="consumer-exports-own"),
    pytest.param(
        OTHER_CONSUMER,
        "view",
        case(),
        False,
        no_permit("view", OTHER_CONSUMER, case()),
        None,
        id="other-consumer-cannot-view",
    ),
    pytest.param(
        MERCHANT, "view_history", case(), True, R_MERCHANT_READS, "merchant-reads-own-case", id="merchant-views-own"
    ),
    pytest.param(
        OTHER_MERCHANT,
        "view",
        case(),
        False,
        no_permit("view", OTHER_MERCHANT, case()),
        None,
        id="other-merchant-cannot-view",
    ),
    pytest.param(
        MEDIATOR,
        "view_internal",
        MEDIATING,
        True,
        R_MEDIATOR_READS,
        "mediator-reads-assigned-case",
        id="assigned-mediator-reads-internal",
    ),
    pytest.param(
        OTHER_MEDIATOR,
        "view",
        MEDIATING,
        False,
        no_permit("view", OTHER_MEDIATOR, MEDIATING),
        None,
        id="unassigned-mediator-cannot-view",
    ),
    pytest.param(
        OTHER_MEDIATOR, "view", case(), True, R_QUEUE, "mediator-reads-filed-queue", id="mediator-views-filed-queue"
    ),
    pytest.param(
        OTHER_MEDIATOR,
        "view_internal",
        case(),
        False,
        no_permit("view_internal", OTHER_MEDIATOR, case()),
        None,
        id="queue-shows-no-internal-notes",
    ),
    pytest.param(
        SENIOR,
        "view_internal",
        ESCALATED,
        True,
        R_SENIOR_READS,
        "senior-reads-escalated-case",
        id="senior-reads-escalated",
    ),
    pytest.param(
        SENIOR,
        "view",
        MEDIATING,
        False,
        no_permit("view", SENIOR, MEDIATING),
        None,
        id="senior-cannot-read-others-mediation",
    ),
    pytest.param(AUDITOR, "export", MEDIATING, True, R_AUDITOR_READS, "auditor-reads-everything", id="auditor-exports"),
    pytest.param(AUDITOR, "view_internal", closed(), True, R_AUDITOR_READS, None, id="auditor-reads-internal"),
    pytest.param(
        AUDITOR,
        "comment",
        MEDIATING,
        False,
        R_AUDITOR_READ_ONLY,
        "auditors-change-nothing",
        id="auditor-cannot-comment",
    ),
    pytest.param(
        AUDITOR,
        "escalate",
        MEDIATING,
        False,
        R_AUDITOR_READ_ONLY,
        "auditors-change-nothing",
        id="auditor-cannot-escalate",
    ),
    pytest.param(ADMIN, "view", case(), False, R_ADMIN_OUT, "admins-stay-out-of-cases", id="admin-cannot-view-case"),
    pytest.param(
        CONSUMER,
        "view_internal",
        MEDIATING,
        False,
        R_INTERNAL,
        "internal-notes-are-for-mediators",
        id="consumer-cannot-read-internal",
    ),
    pytest.param(CONSUMER, "file", case(version=0), True, R_FILE, "consumer-files-own-case", id="consumer-files"),
    pytest.param(
        OTHER_CONSUMER,
        "file",
        case(version=0),
        False,
        no_permit("file", OTHER_CONSUMER, case()),
        None,
        id="consumer-cannot-file-for-another",
    ),
    pytest.param(
        MERCHANT, "file", case(version=0), False, no_permit("file", MERCHANT, case()), None, id="merchant-cannot-file"
    ),
    # --- triggers ---
    pytest.param(OTHER_MEDIATOR, "assign", case(), True, R_ASSIGN, "mediator-assigns-case", id="mediator-assigns"),
    pytest.param(SENIOR, "assign", case(), True, R_ASSIGN, None, id="senior-assigns"),
    pytest.param(SYSTEM, "assign", case(), True, R_SYSTEM_ASSIGNS, "system-assigns-case", id="system-assigns"),
    pytest.param(
        CONSUMER, "assign", case(), False, no_permit("assign", CONSUMER, case()), None, id="consumer-cannot-assign"
    ),
    pytest.param(
        MEDIATOR,
        "start_mediation",
        assigned(merchant_responded=True),
        True,
        R_START,
        "assigned-mediator-starts-mediation",
        id="start-after-response",
    ),
    pytest.param(
        MEDIATOR,
        "start_mediation",
        assigned(timers=(timer("merchant_response", "breached"),)),
        True,
        R_START,
        None,
        id="start-after-response-breach",
    ),
    pytest.param(
        MEDIATOR,
        "start_mediation",
        assigned(),
        False,
        R_WAIT_MERCHANT,
        "mediation-waits-for-merchant",
        id="start-waits-for-merchant",
    ),
    pytest.param(
        OTHER_MEDIATOR,
        "start_mediation",
        assigned(merchant_responded=True),
        False,
        no_permit("start_mediation", OTHER_MEDIATOR, assigned()),
        None,
        id="start-only-assigned",
    ),
    pytest.param(
        MERCHANT, "accept_claim", assigned(), True, R_ACCEPT_CLAIM, "merchant-accepts-claim", id="merchant-concedes"
    ),
    pytest.param(
        CONSUMER,
        "accept_claim",
        assigned(),
        False,
        no_permit("accept_claim", CONSUMER, assigned()),
        None,
        id="consumer-cannot-concede",
    ),
    pytest.param(
        OTHER_MERCHANT,
        "accept_claim",
        assigned(),
        False,
        no_permit("accept_claim", OTHER_MERCHANT, assigned()),
        None,
        id="other-merchant-cannot-concede",
    ),
    pytest.param(
        MEDIATOR,
        "settle",
        with_accepted_offer(MEDIATING),
        True,
        R_SETTLE,
        "assigned-mediator-settles",
        id="settle-on-accepted-offer",
    ),
    pytest.param(
        MEDIATOR, "settle", MEDIATING, False, R_NEEDS_OFFER, "settle-needs-accepted-offer", id="settle-needs-offer"
    ),
    pytest.param(
        MEDIATOR,
        "settle",
        with_accepted_offer(MEDIATING, proposed_by="consumer", decided_by="consumer"),
        False,
        R_NEEDS_OFFER,
        None,
        id="settle-refuses-self-accepted-offer",
    ),
    pytest.param(
        OTHER_MEDIATOR,
        "settle",
        with_accepted_offer(MEDIATING),
        False,
        no_permit("settle", OTHER_MEDIATOR, MEDIATING),
        None,
        id="settle-only-assigned",
    ),
    pytest.param(
        MEDIATOR,
        "settle",
        with_accepted_offer(assigned("mediating", claim_amount=BIG)),
        False,
        R_THRESHOLD,
        "senior-threshold",
        id="big-claim-needs-senior-to-settle",
    ),
    pytest.param(
        MEDIATOR,
        "settle",
        with_accepted_offer(assigned("mediating", claim_amount=500_000)),
        True,
        R_SETTLE,
        None,
        id="threshold-itself-is-not-above",
    ),
    pytest.param(
        SENIOR,
        "settle",
        with_accepted_offer(assigned("mediating", SENIOR, claim_amount=BIG)),
        True,
        R_SETTLE,
        None,
        id="senior-settles-big-claim",
    ),
    pytest.param(
        MEDIATOR,
        "settle",
        with_accepted_offer(assigned("mediating", currency="USD")),
        False,
        R_THRESHOLD,
        "senior-threshold",
        id="currency-without-threshold-needs-senior",
    ),
    pytest.param(
        MEDIATOR, "escalate", MEDIATING, True, R_ESCALATE, "assigned-mediator-escalates", id="mediator-escalates"
    ),
    pytest.param(
        CONSUMER,
        "escalate",
        MEDIATING,
        False,
        no_permit("escalate", CONSUMER, MEDIATING),
        None,
        id="consumer-cannot-escalate-early",
    ),
    pytest.param(
        CONSUMER,
        "escalate",
        BREACHED_RESOLUTION,
        True,
        R_PARTY_ESCALATES,
        "party-escalates-after-resolution-breach",
        id="consumer-escalates-after-breach",
    ),
    pytest.param(
        MERCHANT, "escalate", BREACHED_RESOLUTION, True, R_PARTY_ESCALATES, None, id="merchant-escalates-after-breach"
    ),
    pytest.param(
        OTHER_CONSUMER,
        "escalate",
        BREACHED_RESOLUTION,
        False,
        no_permit("escalate", OTHER_CONSUMER, MEDIATING),
        None,
        id="stranger-cannot-escalate",
    ),
    pytest.param(SYSTEM, "escalate", case(), True, R_SYSTEM_ESCALATES, "system-escalates", id="system-escalates"),
    pytest.param(SENIOR, "rule", ESCALATED, True, R_RULE, "senior-rules", id="senior-rules"),
    pytest.param(
        SENIOR, "rule", assigned("escalated", claim_amount=BIG), True, R_RULE, None, id="senior-rules-big-claim"
    ),
    pytest.param(
        MEDIATOR, "rule", ESCALATED, False, no_permit("rule", MEDIATOR, ESCALATED), None, id="mediator-cannot-rule"
    ),
    pytest.param(
        MEDIATOR,
        "rule",
        assigned("escalated", claim_amount=BIG),
        False,
        R_THRESHOLD,
        "senior-threshold",
        id="big-claim-ruling-needs-senior",
    ),
    pytest.param(
        SYSTEM,
        "decide_for_consumer",
        assigned(),
        True,
        R_SYSTEM_DECIDES,
        "system-decides-for-consumer",
        id="system-decides",
    ),
    pytest.param(
        MEDIATOR,
        "decide_for_consumer",
        assigned(),
        False,
        R_ONLY_SYSTEM,
        "only-system-decides-for-consumer",
        id="mediator-cannot-decide-for-consumer",
    ),
    pytest.param(
        SENIOR, "decide_for_consumer", assigned(), False, R_ONLY_SYSTEM, None, id="senior-cannot-decide-for-consumer"
    ),
    pytest.param(CONSUMER, "withdraw", MEDIATING, True, R_WITHDRAW, "consumer-withdraws", id="consumer-withdraws"),
    pytest.param(MERCHANT, "withdraw", MEDIATING, False, R_WITHDRAW, None, id="merchant-cannot-withdraw"),
    pytest.param(
        OTHER_MEDIATOR,
        "reject",
        case(),
        True,
        R_REJECT_FILED,
        "mediator-rejects-filed-case",
        id="mediator-rejects-filed",
    ),
    pytest.param(
        MEDIATOR,
        "reject",
        ESCALATED,
        False,
        no_permit("reject", MEDIATOR, ESCALATED),
        None,
        id="mediator-cannot-reject-escalated",
    ),
    pytest.param(
        SENIOR,
        "reject",
        ESCALATED,
        True,
        R_REJECT_ESCALATED,
        "senior-rejects-escalated-case",
        id="senior-rejects-escalated",
    ),
    pytest.param(
        CONSUMER, "reject", case(), False, no_permit("reject", CONSUMER, case()), None, id="consumer-cannot-reject"
    ),
    pytest.param(MEDIATOR, "close", SETTLED, True, R_CLOSE, "assigned-mediator-closes", id="mediator-closes"),
    pytest.param(SYSTEM, "close", SETTLED, True, R_SYSTEM_CLOSES, "system-closes", id="system-closes"),
    pytest.param(
        OTHER_MEDIATOR,
        "close",
        SETTLED,
        False,
        no_permit("close", OTHER_MEDIATOR, SETTLED),
        None,
        id="unassigned-mediator-cannot-close",
    ),
    pytest.param(
        MERCHANT, "close", SETTLED, False, no_permit("close", MERCHANT, SETTLED), None, id="merchant-cannot-close"
    ),
    pytest.param(CONSUMER, "reopen", closed(days_ago=3), True, R_REOPEN, "consumer-reopens", id="consumer-reopens"),
    pytest.param(CONSUMER, "reopen", closed(days_ago=15), True, R_REOPEN, None, id="reopen-on-day-15"),
    pytest.param(
        CONSUMER,
        "reopen",
        closed(days_ago=15.01),
        False,
        R_REOPEN_WINDOW,
        "reopen-within-window",
        id="reopen-after-window",
    ),
    pytest.param(
        CONSUMER, "reopen", closed(reopen_count=1), False, R_REOPEN_ONCE, "reopen-only-once", id="reopen-only-once"
    ),
    pytest.param(MERCHANT, "reopen", closed(), False, R_REOPEN, None, id="merchant-cannot-reopen"),
    # --- actions ---
    pytest.param(CONSUMER, "comment", MEDIATING, True, R_CONSUMER_PART, "consumer-takes-part", id="consumer-comments"),
    pytest.param(MERCHANT, "comment", MEDIATING, True, R_MERCHANT_PART, "merchant-takes-part", id="merchant-comments"),
    pytest.param(
        MEDIATOR,
        "comment",
        MEDIATING,
        True,
        R_MEDIATOR_ASKS,
        "assigned-mediator-comments-and-asks",
        id="mediator-comments",
    ),
    pytest.param(
        OTHER_MEDIATOR,
        "comment",
        MEDIATING,
        False,
        no_permit("comment", OTHER_MEDIATOR, MEDIATING),
        None,
        id="unassigned-mediator-cannot-comment",
    ),
    pytest.param(
        SENIOR,
        "comment",
        ESCALATED,
        True,
        R_SENIOR_ASKS,
        "senior-comments-and-asks-on-escalated-case",
        id="senior-comments-on-escalated",
    ),
    pytest.param(CONSUMER, "add_evidence", case(), True, R_CONSUMER_PART, None, id="consumer-adds-evidence"),
    pytest.param(MERCHANT, "submit_evidence", MEDIATING, True, R_MERCHANT_PART, None, id="merchant-submits-evidence"),
    pytest.param(
        MEDIATOR,
        "add_evidence",
        MEDIATING,
        False,
        no_permit("add_evidence", MEDIATOR, MEDIATING),
        None,
        id="mediator-cannot-add-evidence",
    ),
    pytest.param(MERCHANT, "respond", assigned(), True, R_RESPOND, "merchant-responds", id="merchant-responds"),
    pytest.param(CONSUMER, "respond", assigned(), False, R_RESPOND, None, id="consumer-cannot-respond"),
    pytest.param(MERCHANT, "propose_offer", MEDIATING, True, R_MERCHANT_PART, None, id="merchant-proposes"),
    pytest.param(CONSUMER, "accept_offer", MEDIATING, True, R_CONSUMER_PART, None, id="consumer-accepts-offer"),
    pytest.param(CONSUMER, "reject_offer", MEDIATING, True, R_CONSUMER_PART, None, id="consumer-rejects-offer"),
    pytest.param(
        OTHER_MERCHANT,
        "propose_offer",
        MEDIATING,
        False,
        no_permit("propose_offer", OTHER_MERCHANT, MEDIATING),
        None,
        id="other-merchant-cannot-offer",
    ),
    pytest.param(MEDIATOR, "request_info", MEDIATING, True, R_MEDIATOR_ASKS, None, id="mediator-requests-info"),
    pytest.param(
        CONSUMER,
        "request_info",
        MEDIATING,
        False,
        no_permit("request_info", CONSUMER, MEDIATING),
        None,
        id="consumer-cannot-request-info",
    ),
    pytest.param(CONSUMER, "provide_info", MEDIATING, True, R_CONSUMER_PART, None, id="consumer-provides-info"),
    pytest.param(
        MEDIATOR,
        "provide_info",
        MEDIATING,
        False,
        no_permit("provide_info", MEDIATOR, MEDIATING),
        None,
        id="mediator-cannot-provide-info",
    ),
    pytest.param(MERCHANT, "rate", closed(), True, R_RATE, "party-rates-closed-case", id="merchant-rates-closed"),
    pytest.param(
        CONSUMER, "rate", MEDIATING, False, no_permit("rate", CONSUMER, MEDIATING), None, id="no-rating-before-close"
    ),
    pytest.param(
        MEDIATOR, "rate", closed(), False, no_permit("rate", MEDIATOR, closed()), None, id="mediator-cannot-rate"
    ),
    pytest.param(
        SYSTEM, "comment", MEDIATING, False, no_permit("comment", SYSTEM, MEDIATING), None, id="system-does-not-comment"
    ),
]


@pytest.mark.parametrize(("actor", "action", "snapshot", "allowed", "reason", "policy"), RULES)
def test_default_rule(
    authorizer: CedarAuthorizer,
    actor: Actor,
    action: str,
    snapshot: CaseSnapshot,
    allowed: bool,
    reason: str,
    policy: str | None,
) -> None:
    # A ruling cites the rulebook (the forbid ruling-cites-the-rulebook; its refusal is tested below).
    payload = {"citations": ["crpl-24"]} if action == "rule" else None
    decision = authorizer.decide(actor=actor, action=action, case=snapshot, now=NOW, payload=payload)
    assert decision.allowed is allowed, decision
    assert reason in decision.reasons, decision.reasons
    if policy is not None:
        assert policy in decision.policy_ids, decision.policy_ids
    assert decision.errors == ()


def test_a_ruling_without_a_citation_is_refused_with_the_policys_reason(authorizer: CedarAuthorizer) -> None:
    decision = authorizer.decide(actor=SENIOR, action="rule", case=ESCALATED, now=NOW, payload={"decision": "partial"})
    assert not decision.allowed and decision.policy_ids == ("ruling-cites-the-rulebook",)
    assert decision.reasons == ("a ruling must cite at least one entry of the desk's rulebook (data.citations)",)
    cited = authorizer.decide(actor=SENIOR, action="rule", case=ESCALATED, now=NOW, payload={"citations": ["crpl-24"]})
    assert cited.allowed


def test_a_default_deny_names_no_policy_but_the_rules_that_would_allow(authorizer: CedarAuthorizer) -> None:
    decision = authorizer.decide(actor=MERCHANT, action="escalate", case=MEDIATING, now=NOW)
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert decision.reasons == (
        "no policy permits escalate for role merchant in state mediating",
        R_ESCALATE,
        R_PARTY_ESCALATES,
        R_SYSTEM_ESCALATES,
    )


def test_a_forbid_names_itself_not_the_permit_it_overrides(authorizer: CedarAuthorizer) -> None:
    decision = authorizer.decide(actor=MEDIATOR, action="start_mediation", case=assigned(), now=NOW)
    assert decision.policy_ids == ("mediation-waits-for-merchant",)
    assert decision.reasons == (R_WAIT_MERCHANT,)


def test_reopen_window_is_measured_from_now(authorizer: CedarAuthorizer) -> None:
    snapshot = closed(days_ago=3)
    later = NOW + timedelta(days=13)
    assert authorizer.decide(actor=CONSUMER, action="reopen", case=snapshot, now=NOW).allowed
    refused = authorizer.decide(actor=CONSUMER, action="reopen", case=snapshot, now=later)
    assert not refused.allowed and refused.reasons == (R_REOPEN_WINDOW,)


def test_desk_actions(authorizer: CedarAuthorizer) -> None:
    for action in ("manage_config", "manage_mediators", "view_config"):
        decision = authorizer.decide_desk(actor=ADMIN, action=action, now=NOW)
        assert decision.allowed and decision.policy_ids == ("admin-manages-desk",)
    assert authorizer.decide_desk(actor=AUDITOR, action="view_config", now=NOW).policy_ids == ("auditor-views-config",)
    refused = authorizer.decide_desk(actor=AUDITOR, action="manage_config", now=NOW)
    assert not refused.allowed and refused.reasons == (R_AUDITOR_READ_ONLY,)
    refused = authorizer.decide_desk(actor=MEDIATOR, action="manage_mediators", now=NOW)
    assert not refused.allowed
    assert refused.reasons[0] == "no policy permits manage_mediators for role mediator on the desk"


def test_unknown_and_misplaced_actions_are_refused_without_evaluation(authorizer: CedarAuthorizer) -> None:
    decision = authorizer.decide(actor=SYSTEM, action="teleport", case=case(), now=NOW)
    assert not decision.allowed
    assert decision.reasons == ("'teleport' is not an action on a case in this policy set",)
    assert not authorizer.decide(actor=ADMIN, action="manage_config", case=case(), now=NOW).allowed
    assert not authorizer.decide_desk(actor=ADMIN, action="view", now=NOW).allowed


def test_decide_many_matches_decide(authorizer: CedarAuthorizer) -> None:
    actions = [*sorted(authorizer.case_actions), "teleport"]
    snapshot = with_accepted_offer(assigned("mediating", merchant_responded=True))
    for actor in (CONSUMER, MERCHANT, MEDIATOR, SENIOR, AUDITOR, ADMIN, SYSTEM):
        many = authorizer.decide_many(actor=actor, actions=actions, case=snapshot, now=NOW)
        assert [d.action for d in many] == actions
        single = [authorizer.decide(actor=actor, action=a, case=snapshot, now=NOW) for a in actions]
        assert many == single


def test_what_the_assigned_mediator_may_do_while_mediating(authorizer: CedarAuthorizer) -> None:
    snapshot = with_accepted_offer(assigned("mediating", merchant_responded=True))
    actions = ["settle", "escalate", "comment", "request_info", "view", "view_internal", "withdraw", "rule", "rate"]
    allowed = {
        d.action for d in authorizer.decide_many(actor=MEDIATOR, actions=actions, case=snapshot, now=NOW) if d.allowed
    }
    assert allowed == {"settle", "escalate", "comment", "request_info", "view", "view_internal"}


def test_it_is_an_authorizer_and_require_raises_with_reasons(authorizer: CedarAuthorizer) -> None:
    from policies.base import Authorizer, require
    from workflow.errors import PolicyDeniedError

    typed: Authorizer = authorizer  # checked by mypy: the protocol is implemented
    assert require(typed, actor=CONSUMER, action="withdraw", case=case(), now=NOW).allowed
    with pytest.raises(PolicyDeniedError) as caught:
        require(typed, actor=MERCHANT, action="withdraw", case=case(), now=NOW)
    assert caught.value.reasons[0] == "no policy permits withdraw for role merchant in state filed"
    assert R_WITHDRAW in caught.value.reasons
