"""Properties of the default policy set over generated cases and callers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.cedar import DEFAULT_POLICY_DIR, CedarAuthorizer, load_policy_dir
from policies.loader import load
from tests.support.policy_factories import ALL_ACTORS, NOW, case, offer, timer
from workflow.model import Actor, CaseSnapshot, to_iso

STATES = ("filed", "assigned", "mediating", "settled", "escalated", "closed")
TIMERS = ("assignment", "merchant_response", "resolution", "ruling", "fulfilment")
TIMER_STATUSES = ("running", "paused", "met", "breached", "cancelled")
CONSUMERS = ("c-1", "c-2", "c-3")
MERCHANTS = ("m-1", "m-2", "m-3")
MEDIATORS = ("med-1", "med-2", "sen-1")

# One authorizer per module: hypothesis runs examples inside one test call.
AUTHORIZER = load_policy_dir()
STRICT = CedarAuthorizer(load(DEFAULT_POLICY_DIR), check_requests=True)
CASE_ACTIONS = sorted(AUTHORIZER.case_actions)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def snapshots(draw: st.DrawFn) -> CaseSnapshot:
    state = draw(st.sampled_from(STATES))
    mediator = draw(st.none() | st.sampled_from(MEDIATORS)) if state != "filed" else None
    timers = tuple(
        timer(name, status, warned=warned)
        for name, status, warned in draw(
            st.lists(
                st.tuples(st.sampled_from(TIMERS), st.sampled_from(TIMER_STATUSES), st.booleans()),
                max_size=4,
                unique_by=lambda t: t[0],
            )
        )
    )
    offers = draw(st.sampled_from(["none", "accepted", "self-accepted", "open"]))
    snapshot = case(
        state=state,
        consumer_id=draw(st.sampled_from(CONSUMERS)),
        merchant_id=draw(st.sampled_from(MERCHANTS)),
        mediator_id=mediator,
        claim_amount=draw(st.integers(0, 2_000_000)),
        currency=draw(st.sampled_from(["CNY", "USD", "JPY"])),
        merchant_responded=draw(st.booleans()),
        timers=timers,
        flags=tuple(draw(st.lists(st.sampled_from(["ruling_overdue", "vip"]), unique=True))),
        reopen_count=draw(st.integers(0, 2)),
        closed_at=to_iso(NOW - timedelta(hours=draw(st.integers(0, 24 * 30)))) if state == "closed" else None,
    )
    if offers != "none":
        made = {
            "accepted": offer(),
            "self-accepted": offer(proposed_by="consumer", decided_by="consumer"),
            "open": offer(status="open", decided_by=None),
        }[offers]
        snapshot = snapshot.evolve(
            offers=(made,), accepted_offer_id=made.offer_id if made.status == "accepted" else None
        )
    return snapshot


@st.composite
def strangers(draw: st.DrawFn, snapshot: CaseSnapshot) -> Actor:
    """Someone who is neither a party of ``snapshot`` nor a mediator, auditor or the system."""
    any_id = st.sampled_from((*CONSUMERS, *MERCHANTS, *MEDIATORS, "system", "adm-1"))
    kind = draw(st.sampled_from(["consumer", "merchant", "admin", "other"]))
    if kind == "consumer":
        return Actor(draw(st.sampled_from([c for c in CONSUMERS if c != snapshot.consumer_id])), "consumer")
    if kind == "merchant":
        merchant = draw(st.none() | st.sampled_from([m for m in MERCHANTS if m != snapshot.merchant_id]))
        return Actor(draw(any_id), "merchant", merchant_id=merchant)
    if kind == "admin":
        return Actor(draw(any_id), "admin")
    role = draw(st.sampled_from(["guest", "", "Mediator", "AUDITOR", "support", "system "]))
    return Actor(draw(any_id), role, merchant_id=draw(st.none() | st.sampled_from(MERCHANTS)))


@PROPERTY
@given(data=st.data(), snapshot=snapshots())
def test_a_stranger_is_never_allowed_anything_on_a_case(data: st.DataObject, snapshot: CaseSnapshot) -> None:
    actor = data.draw(strangers(snapshot))
    decisions = AUTHORIZER.decide_many(actor=actor, actions=CASE_ACTIONS, case=snapshot, now=NOW)
    allowed = [d.action for d in decisions if d.allowed]
    assert allowed == [], (actor, allowed)
    payload = {"mediator_id": actor.id, "amount": 1, "offer_id": "off5"}
    for action in ("assign", "view", "comment", "propose_offer"):
        assert not AUTHORIZER.decide(actor=actor, action=action, case=snapshot, now=NOW, payload=payload).allowed


@PROPERTY
@given(snapshot=snapshots(), actor=st.sampled_from(ALL_ACTORS))
def test_facts_always_conform_to_the_schema(snapshot: CaseSnapshot, actor: Actor) -> None:
    # The fast path skips the per-request schema check; the checked path must agree.
    fast = AUTHORIZER.decide_many(actor=actor, actions=CASE_ACTIONS, case=snapshot, now=NOW)
    checked = STRICT.decide_many(actor=actor, actions=CASE_ACTIONS, case=snapshot, now=NOW)
    assert fast == checked
    assert all(d.errors == () for d in checked)
    assert all(d.reasons for d in fast)


# --- splitting the policy set by action changes no answer -----------------------------

EXAMPLE_DIRS = [
    DEFAULT_POLICY_DIR,
    *(Path(__file__).resolve().parents[2] / "examples" / name / "policies" for name in ("chargeback", "travel")),
]
SPLIT_PAIRS = [(CedarAuthorizer(load(d)), CedarAuthorizer(load(d), split_by_action=False)) for d in EXAMPLE_DIRS]


@PROPERTY
@given(data=st.data(), snapshot=snapshots(), which=st.sampled_from(range(len(SPLIT_PAIRS))))
def test_split_policy_sets_decide_exactly_as_the_whole_set(
    data: st.DataObject, snapshot: CaseSnapshot, which: int
) -> None:
    """A command's view + action, one action, or a whole actions list: the per-action
    subsets give the same allow/deny, reasons, deciding policies and errors as Cedar
    evaluating every policy of the desk."""
    split, whole = SPLIT_PAIRS[which]
    actions = sorted(split.case_actions)
    asked = data.draw(
        st.one_of(
            st.sampled_from(actions).map(lambda a: ["view", a]),
            st.lists(st.sampled_from(actions), min_size=1, max_size=3, unique=True),
            st.just(actions),
        )
    )
    actor = data.draw(st.sampled_from(ALL_ACTORS))
    payloads = {a: {"amount": 100, "currency": "CNY"} for a in asked if a == "propose_offer"}
    got = split.decide_many(actor=actor, actions=asked, case=snapshot, now=NOW, payloads=payloads)
    expected = whole.decide_many(actor=actor, actions=asked, case=snapshot, now=NOW, payloads=payloads)
    assert got == expected
    for action in ("manage_config", "view_config"):
        assert split.decide_desk(actor=actor, action=action, now=NOW) == whole.decide_desk(
            actor=actor, action=action, now=NOW
        )
