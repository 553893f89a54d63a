"""What-if: replay recorded cases' commands under another workflow or policy set.

Nothing is written. Each recorded command (every trigger and action a person or the
system issued) is decided again, in order, against the case as the new rules would
have it: the report lists, per case, the commands that would now be refused or lead
to another state. Clock events are not re-simulated; the system commands they caused
(an escalation on breach, say) are replayed as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlmodel import Session

from cases.chain import GENESIS_HASH, event_from_body
from cases.models import EventRow
from cases.registry import WorkflowRegistry
from policies.base import Authorizer
from workflow.decide import decide, kind_of
from workflow.definition import WorkflowDefinition
from workflow.errors import DisputeError
from workflow.events import Event, RecordedEvent
from workflow.evolve import evolve
from workflow.machine import WorkflowMachine, machine_for
from workflow.model import Actor, CaseSnapshot, Command, from_iso

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
_ID_KEYS = ("offer_id", "request_id", "evidence_id")

# Which action kind produced an event type (the action's name is looked up in the workflow).
ACTION_EVENTS = {
    "message": "comment",
    "evidence_added": "add_evidence",
    "evidence_submitted": "submit_evidence",
    "merchant_responded": "respond",
    "offer_proposed": "propose_offer",
    "offer_accepted": "accept_offer",
    "offer_rejected": "reject_offer",
    "info_requested": "request_info",
    "info_provided": "provide_info",
    "rated": "rate",
}


@dataclass(frozen=True)
class Divergence:
    seq: int
    command: str
    actor: str
    recorded: str  # what happened then
    now: str  # what would happen under the new rules


@dataclass
class CaseReport:
    case_id: str
    commands: int = 0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.divergences)


def recorded_commands(
    events: Iterable[RecordedEvent], definition: WorkflowDefinition, merchant_id: str
) -> Iterator[tuple[RecordedEvent, Command]]:
    """The commands behind a case's events (after ``filed``), with the event each produced.

    Events record the actor's id and role; a merchant who acted on a case acted for the
    case's merchant, so that is the merchant id the policies see again."""
    for event in events:
        actor = Actor(event.actor_id, event.actor_role, merchant_id if event.actor_role == "merchant" else None)
        at = from_iso(event.at)
        if event.type == "transitioned":
            data = {k: v for k, v in event.data.items() if k in ("mediator_id", "decision", "awarded_amount")}
            if event.data.get("outcome") in ("for_consumer", "for_merchant", "partial") and event.data[
                "trigger"
            ] in _ruling_triggers(definition):
                data["decision"] = event.data["outcome"]
            yield event, Command(event.data["trigger"], actor, at, data, event.data.get("reason", ""))
        elif event.type in ACTION_EVENTS:
            kind = ACTION_EVENTS[event.type]
            name = next((a.name for a in definition.actions if a.kind == kind), kind)
            yield event, Command(name, actor, at, _action_data(event), event.data.get("reason", ""))


def _ruling_triggers(definition: WorkflowDefinition) -> set[str]:
    return {t.trigger for t in definition.transitions if t.outcome == "ruling"}


def _action_data(event: RecordedEvent) -> dict[str, object]:
    d = event.data
    if event.type == "message":
        return {"body": d["body"], "internal": d["internal"]}
    if event.type == "evidence_added":
        return {k: d[k] for k in ("sha256", "size", "media_type", "filename", "description") if k in d}
    if event.type == "merchant_responded":
        return {"statement": d["statement"]}
    if event.type == "offer_proposed":
        return {"amount": d["amount"], "currency": d["currency"], "terms": d.get("terms", "")}
    if event.type in ("offer_accepted", "offer_rejected"):
        return {"offer_id": d["offer_id"]}
    if event.type == "info_requested":
        return {"party": d["party"], "question": d["question"]}
    if event.type == "info_provided":
        return {"request_id": d["request_id"], "answer": d["answer"]}
    if event.type == "rated":
        return {"score": d["score"], "comment": d.get("comment", "")}
    return {}


def what_if_case(
    session: Session, registry: WorkflowRegistry, case_id: str, *, workflow: WorkflowDefinition, authorizer: Authorizer
) -> CaseReport:
    rows = session.execute(
        select(EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
        .where(EVENTS.c.case_id == case_id)
        .order_by(EVENTS.c.seq)
    ).all()
    events = [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows]
    report = CaseReport(case_id)
    if not events:
        return report
    recorded_definition = registry.pinned(events[0].workflow_version, session)
    machine = machine_for(workflow)
    filed = events[0]
    filed_data = dict(filed.data, workflow_name=workflow.name, state=workflow.initial)
    snapshot: CaseSnapshot | None = evolve(
        workflow,
        None,
        RecordedEvent(
            case_id=case_id,
            seq=1,
            type="filed",
            at=filed.at,
            actor_id=filed.actor_id,
            actor_role=filed.actor_role,
            data=filed_data,
            workflow_version=workflow.version,
            policy_version=authorizer.version,
        ),
    )
    recorded_state = recorded_definition.initial
    ids: dict[str, str] = {}
    for event, command in recorded_commands(events[1:], recorded_definition, filed.data["merchant_id"]):
        report.commands += 1
        assert snapshot is not None
        recorded_to = event.data.get("to", recorded_state) if event.type == "transitioned" else recorded_state
        # Ids of offers and requests derive from sequence numbers, which differ in the
        # simulation (clock events are not replayed): refer to the simulated ones.
        command = replace(command, data={k: ids.get(v, v) if k in _ID_KEYS and isinstance(v, str) else v
                                         for k, v in command.data.items()})
        outcome = _decide(machine, authorizer, snapshot, command)
        if isinstance(outcome, str):
            report.divergences.append(
                Divergence(
                    event.seq, command.name, f"{command.actor.role}:{command.actor.id}", f"-> {recorded_to}", outcome
                )
            )
        else:
            new_events = outcome
            for key in _ID_KEYS:
                if new_events and key in new_events[0].data and key in event.data:
                    ids[event.data[key]] = new_events[0].data[key]
            for new in new_events:
                snapshot = evolve(
                    workflow,
                    snapshot,
                    RecordedEvent(
                        case_id=case_id,
                        seq=snapshot.version + 1,
                        type=new.type,
                        at=event.at,
                        actor_id=command.actor.id,
                        actor_role=command.actor.role,
                        data=new.data,
                        workflow_version=workflow.version,
                        policy_version=authorizer.version,
                        prev_hash=GENESIS_HASH,
                    ),
                )
            assert snapshot is not None
            if event.type == "transitioned" and snapshot.state != recorded_to:
                report.divergences.append(
                    Divergence(
                        event.seq,
                        command.name,
                        f"{command.actor.role}:{command.actor.id}",
                        f"-> {recorded_to}",
                        f"-> {snapshot.state}",
                    )
                )
        recorded_state = recorded_to
    return report


def _decide(
    machine: WorkflowMachine, authorizer: Authorizer, snapshot: CaseSnapshot, command: Command
) -> list[Event] | str:
    kind = kind_of(machine, command.name)
    if kind is None:
        return f"refused: {command.name!r} no longer exists"
    if kind == "trigger" and not machine.may(snapshot.state, command.name):
        return f"refused: not possible in state {snapshot.state!r}"
    if kind == "action" and not machine.action_allowed(snapshot.state, command.name):
        return f"refused: {command.name!r} not allowed in state {snapshot.state!r}"
    decision = authorizer.decide(
        actor=command.actor, action=command.name, case=snapshot, now=command.at, payload=command.data
    )
    if not decision.allowed:
        return "refused by policy: " + "; ".join(decision.reasons)
    try:
        return decide(machine, snapshot, command)
    except DisputeError as exc:
        return f"refused: {exc}"
