"""What a case's state reads as to each party (a workflow state's ``labels``).

These functions serve every reader: the API's ``GET /v1/cases/{id}/status``, the console's
case page, consumer list and merchant inbox, and the notifications' texts, so the merchant
reads "your response is required" and the consumer "waiting for the merchant" wherever they
look. The API falls back to the state's description; the console and the notifications fall
back to their own, translated, texts (:func:`declared_label` gives None for them to do so).
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.definition import WorkflowDefinition
from workflow.model import Actor, CaseSnapshot


@dataclass(frozen=True, slots=True)
class PartyStatus:
    """The case's state, the party it is read by, and the label that party sees."""

    case_id: str
    state: str
    party: str
    label: str
    final: bool


def party_status(definition: WorkflowDefinition, case: CaseSnapshot, actor: Actor) -> PartyStatus:
    state = definition.state(case.state)
    party = "mediator" if actor.party == "mediator" else actor.party
    return PartyStatus(case.id, case.state, party, state.label_for(party), state.final)


def declared_label(definition: WorkflowDefinition, state: str, party: str) -> str | None:
    """The label ``state`` declares for ``party``, or None when it declares none (or the
    pinned workflow no longer has the state): the reader then shows its own title."""
    try:
        found = definition.state(state)
    except KeyError:
        return None
    return dict(found.labels).get(party) or None
