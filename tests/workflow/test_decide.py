"""decide() from every state with every trigger, and each action's domain checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.workflow_factories import DESIGN_TABLE, snapshot
from workflow.decide import decide
from workflow.definition import load_definition_file
from workflow.errors import InvalidCommandError, TransitionNotAllowedError, UnknownCommandError
from workflow.machine import machine_for
from workflow.model import Actor, Command, Offer

DEFAULT = Path(__file__).resolve().parents[2] / "workflow" / "definitions" / "consumer_dispute.yaml"
MACHINE = machine_for(load_definition_file(DEFAULT))
DEFINITION = MACHINE.definition
EXPECTED = DESIGN_TABLE
# Data each trigger needs to be well-formed.
PAYLOAD: dict[str, dict[str, Any]] = {
    "assign": {"mediator_id": "med-1"},
    "rule": {"decision": "partial", "awarded_amount": 100},
}


def command(name: str, actor: Actor = MEDIATOR, reason: str = "because", **data: object) -> Command:
    payload: dict[str, Any] = dict(data) or dict(PAYLOAD.get(name, {}))
    return Command(name=name, actor=actor, at=T0, data=payload, reason=reason)


@pytest.mark.parametrize("state", [s.name for s in DEFINITION.states])
@pytest.mark.parametrize("trigger", DEFINITION.trigger_names)
def test_every_trigger_from_every_state(state: str, trigger: str) -> None:
    accepted = Offer("off2", 100, "CNY", "", "merchant", "mu-1", status="accepted")
    case = snapshot(state=state, offers=(accepted,), accepted_offer_id="off2")
    if (state, trigger) in EXPECTED:
        events = decide(MACHINE, case, command(trigger))
        assert [e.type for e in events] == ["transitioned"]
        assert events[0].data["from"] == state and events[0].data["to"] == EXPECTED[(state, trigger)]
    else:
        with pytest.raises(TransitionNotAllowedError) as caught:
            decide(MACHINE, case, command(trigger))
        possible = {t for (s, t) in EXPECTED if s == state}
        assert caught.value.state == state and set(caught.value.possible) == possible
        assert state in str(caught.value)


def test_assign_defaults_to_the_calling_mediator_and_needs_someone() -> None:
    events = decide(MACHINE, snapshot(), Command("assign", MEDIATOR, T0, {}))
    assert events[0].data["mediator_id"] == "med-1"
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, snapshot(), Command("assign", Actor("system", "system"), T0, {}))


def test_outcomes() -> None:
    case = snapshot(state="assigned")
    assert decide(MACHINE, case, command("accept_claim"))[0].data["awarded_amount"] == 29900
    ruling = decide(MACHINE, snapshot(state="escalated"), command("rule", SENIOR, decision="for_merchant"))
    assert ruling[0].data["outcome"] == "for_merchant" and ruling[0].data["awarded_amount"] == 0
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, snapshot(state="escalated"), command("rule", SENIOR, decision="partial", awarded_amount=10**9))
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, snapshot(state="mediating"), command("settle"))
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, snapshot(state="filed"), command("reject", reason=""))


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(UnknownCommandError) as caught:
        decide(MACHINE, snapshot(), command("teleport"))
    assert "assign" in caught.value.known


def test_action_in_wrong_state() -> None:
    with pytest.raises(TransitionNotAllowedError) as caught:
        decide(MACHINE, snapshot(state="filed"), Command("respond", MERCHANT, T0, {"statement": "x"}))
    assert caught.value.kind == "action"


def test_offer_rules() -> None:
    case = snapshot(state="mediating", version=4)
    proposed = decide(MACHINE, case, Command("propose_offer", MERCHANT, T0, {"amount": 10000, "currency": "CNY"}))
    assert proposed[0].data["offer_id"] == "off5" and proposed[0].data["party"] == "merchant"
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, case, Command("propose_offer", MERCHANT, T0, {"amount": 10.5}))
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, case, Command("propose_offer", MERCHANT, T0, {"amount": 100, "currency": "USD"}))
    offered = snapshot(state="mediating", offers=(Offer("off5", 10000, "CNY", "", "merchant", "mu-1"),))
    with pytest.raises(InvalidCommandError, match="other party"):
        decide(MACHINE, offered, Command("accept_offer", MERCHANT, T0, {"offer_id": "off5"}))
    accepted = decide(MACHINE, offered, Command("accept_offer", CONSUMER, T0, {"offer_id": "off5"}))
    assert accepted[0].type == "offer_accepted"


def test_internal_notes_are_for_mediators() -> None:
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, snapshot(), Command("comment", CONSUMER, T0, {"body": "hi", "internal": True}))
    note = decide(MACHINE, snapshot(), Command("comment", MEDIATOR, T0, {"body": "hm", "internal": True}))
    assert note[0].data["internal"] is True


def test_rating_once_per_party_with_a_score_in_range() -> None:
    closed = snapshot(state="closed")
    with pytest.raises(InvalidCommandError):
        decide(MACHINE, closed, Command("rate", CONSUMER, T0, {"score": 6}))
    events = decide(MACHINE, closed, Command("rate", CONSUMER, T0, {"score": 5, "comment": "fair"}))
    assert events[0].data == {"party": "consumer", "score": 5, "comment": "fair"}
