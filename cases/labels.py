"""What a case's state reads as to each party (a workflow state's ``labels``).

One function serves every reader: the API's ``GET /v1/cases/{id}/status`` now, the console and
notifications later, so the merchant reads "your response is required" and the consumer
"waiting for the merchant" wherever they look.
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
