"""What-if: replay recorded cases' commands under another workflow or policy set.

Nothing is written. Each recorded command (every trigger and action a person or the
system issued) is decided again, in order, against the case as the new rules would
have it: the report lists, per case, the commands that would now be refused or lead
to another state.

Without ``sla`` (an SLA planner) the clock events are not re-simulated; the system commands they
caused (an escalation on breach, say) are replayed as recorded. With ``sla`` (the
changed desk's calendars) the timers are simulated under the new workflow: a recorded
breach that would not have happened yet (a longer goal, a new holiday) is reported and
the system command it caused is not replayed; a timer that would have breached before
something recorded happened is reported too (its effect is not invented).

A merchant's supervision flag is a fact from outside the rules being tried: each
recorded decision names the standing of the merchant's log it relied on
(``merchant_flag``, workflow/merchant.py), and the decision is taken again with the
case seen that way. Cases of older versions carried the flag as events of their own
(``flag_raised`` / ``flag_cleared``), which the simulated case carries as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlmodel import Session

from cases.registry import WorkflowRegistry
from policies.base import Authorizer
from sla.planner import SlaPlanner
from store.db import Database
from store.tables import EVENTS
from workflow.chain import GENESIS_HASH, event_from_body
from workflow.decide import decide, kind_of
from workflow.definition import WorkflowDefinition
from workflow.errors import DisputeError, NotFoundError
from workflow.events import Event, RecordedEvent
from workflow.evolve import evolve
from workflow.machine import WorkflowMachine, machine_for
from workflow.merchant import recorded_standing, seen_with
from workflow.model import SYSTEM, Actor, CaseSnapshot, Command, from_iso

_ID_KEYS = ("offer_id", "request_id", "evidence_id")
FLAG_EVENTS = ("flag_raised", "flag_cleared")

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
    "category_corrected": "recategorise",
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
            data = {
                k: v for k, v in event.data.items() if k in ("mediator_id", "decision", "awarded_amount", "citations")
            }
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
    if event.type == "category_corrected":
        return {"category": d["to"]}
    return {}


def what_if_case(
    session: Session,
    registry: WorkflowRegistry,
    case_id: str,
    *,
    workflow: WorkflowDefinition,
    authorizer: Authorizer,
    workflows: Mapping[str, WorkflowDefinition] | None = None,
    sla: SlaPlanner | None = None,
) -> CaseReport:
    """Replay ``case_id`` under ``workflow`` (or, with ``workflows``, the one of the case's
    workflow name there) and ``authorizer``; with ``sla``, simulate its timers too."""
    rows = session.execute(
        select(EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
        .where(EVENTS.c.case_id == case_id)
        .order_by(EVENTS.c.seq)
    ).all()
    events = [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows]
    if not events:  # a case that does not exist is the caller's mistake, not a case without changes
        raise NotFoundError("case", case_id)
    report = CaseReport(case_id)
    recorded_definition = registry.pinned(events[0].workflow_version, session)
    if workflows is not None and recorded_definition.name in workflows:
        workflow = workflows[recorded_definition.name]
    sim = _Simulation(case_id, workflow, authorizer, sla)
    filed = events[0]
    filed_data = dict(filed.data, workflow_name=workflow.name, state=workflow.initial)
    sim.apply([Event("filed", filed_data)], Actor(filed.actor_id, filed.actor_role), filed.at)
    sim.follow_up(None, "file", filed.at)
    recorded_state = recorded_definition.initial
    ids: dict[str, str] = {}
    commands = {id(e): c for e, c in recorded_commands(events[1:], recorded_definition, filed.data["merchant_id"])}
    # A system command caused by a breach the new rules would not have: (trigger, instant).
    suppressed: set[tuple[str, str]] = set()
    # The case as it was recorded, folded alongside: a clock that was just as overdue then
    # (due, but not yet swept when someone acted) is no difference the new rules make.
    recorded: CaseSnapshot | None = evolve(recorded_definition, None, filed)
    for event in events[1:]:
        previous, recorded = recorded, evolve(recorded_definition, recorded, event)
        if sla is not None and event.type == "timer_breached":
            suppressed |= sim.breach(event, report)
            continue
        if event.type in FLAG_EVENTS and (sla is None or "timer" not in event.data):
            # A flag is a fact from outside the rules being tried (the supervision thresholds;
            # a recorded breach, when sla are not simulated): the simulated case carries it
            # as recorded, so that policies reading it (merchant_flagged) decide on the same facts.
            sim.apply([Event(event.type, dict(event.data))], SYSTEM, event.at)
            continue
        command = commands.get(id(event))
        if command is None:
            continue
        if sla is not None:
            assert previous is not None
            for name, due in sim.overdue_before(event.at, previous):
                report.divergences.append(
                    Divergence(
                        event.seq,
                        f"timer {name}",
                        "system",
                        "-",
                        f"would have breached at {due}, before {command.name}",
                    )
                )
        report.commands += 1
        recorded_to = event.data.get("to", recorded_state) if event.type == "transitioned" else recorded_state
        actor = f"{command.actor.role}:{command.actor.id}"
        if command.actor.role == "system" and (command.name, event.at) in suppressed:
            report.divergences.append(
                Divergence(
                    event.seq,
                    command.name,
                    actor,
                    f"-> {recorded_to}",
                    "would not happen: its clock would not have run out",
                )
            )
            recorded_state = recorded_to
            continue
        # Ids of offers and requests derive from sequence numbers, which differ in the
        # simulation (clock events are not replayed): refer to the simulated ones.
        command = replace(
            command,
            data={k: ids.get(v, v) if k in _ID_KEYS and isinstance(v, str) else v for k, v in command.data.items()},
        )
        before = sim.snapshot
        standing = recorded_standing(event.data)
        outcome = _decide(sim.machine, authorizer, before if standing is None else seen_with(before, standing), command)
        if isinstance(outcome, str):
            report.divergences.append(Divergence(event.seq, command.name, actor, f"-> {recorded_to}", outcome))
        else:
            new_events = outcome
            for key in _ID_KEYS:
                if new_events and key in new_events[0].data and key in event.data:
                    ids[event.data[key]] = new_events[0].data[key]
            sim.apply(new_events, command.actor, event.at)
            sim.follow_up(before, command.name, event.at)
            if event.type == "transitioned" and sim.snapshot.state != recorded_to:
                report.divergences.append(
                    Divergence(event.seq, command.name, actor, f"-> {recorded_to}", f"-> {sim.snapshot.state}")
                )
        recorded_state = recorded_to
    return report


class _Simulation:
    """The case as the new rules would have it, folded event by event (never written)."""

    def __init__(
        self, case_id: str, workflow: WorkflowDefinition, authorizer: Authorizer, sla: SlaPlanner | None
    ) -> None:
        self.case_id = case_id
        self.workflow = workflow
        self.machine = machine_for(workflow)
        self.authorizer = authorizer
        self.sla = sla
        self._snapshot: CaseSnapshot | None = None
        self.reported: set[tuple[str, str]] = set()

    @property
    def snapshot(self) -> CaseSnapshot:
        assert self._snapshot is not None
        return self._snapshot

    def apply(self, events: Iterable[Event], actor: Actor, at: str) -> None:
        for new in events:
            self._snapshot = evolve(
                self.workflow,
                self._snapshot,
                RecordedEvent(
                    case_id=self.case_id,
                    seq=self._snapshot.version + 1 if self._snapshot else 1,
                    type=new.type,
                    at=at,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    data=new.data,
                    workflow_version=self.workflow.version,
                    policy_version=self.authorizer.version,
                    prev_hash=GENESIS_HASH,
                ),
            )

    def follow_up(self, before: CaseSnapshot | None, command: str, at: str) -> None:
        if self.sla is not None:
            events = self.sla.follow_up(self.workflow, before, self.snapshot, command, from_iso(at))
            self.apply(events, SYSTEM, at)

    def overdue_before(self, at: str, recorded: CaseSnapshot) -> list[tuple[str, str]]:
        """Running timers the new rules make due strictly before ``at`` (and the recorded rules
        did not), each reported once."""
        moment = from_iso(at)
        found = []
        for timer in self.snapshot.timers:
            key = (timer.name, timer.started_at)
            if timer.status != "running" or from_iso(timer.due_at) >= moment or key in self.reported:
                continue
            self.reported.add(key)
            then = recorded.timer(timer.name)
            if then is not None and then.status == "running" and from_iso(then.due_at) < moment:
                continue  # overdue under the recorded rules too
            found.append((timer.name, timer.due_at))
        return found

    def breach(self, event: RecordedEvent, report: CaseReport) -> set[tuple[str, str]]:
        """A recorded breach: simulate it if the new rules agree it was due, else report it
        and return the system command it caused, which is then not replayed."""
        name = event.data["timer"]
        timer = self.snapshot.timer(name)
        moment = from_iso(event.at)
        if timer is not None and timer.status == "running" and from_iso(timer.due_at) <= moment:
            self.reported.add((timer.name, timer.started_at))
            breached = [Event("timer_breached", dict(event.data))]
            flag = event.data.get("flag")
            if flag:
                breached.append(Event("flag_raised", {"flag": flag, "timer": name}))
            self.apply(breached, SYSTEM, event.at)
            return set()
        if timer is None or timer.status not in ("running", "paused"):
            now = f"would not breach: the {name} clock would not be running"
        elif timer.status == "paused":
            now = f"would not breach: the {name} clock would be paused"
        else:
            now = f"would not breach yet: due {timer.due_at} under the new rules"
        report.divergences.append(Divergence(event.seq, f"timer {name}", "system", f"breached at {event.at}", now))
        triggers = event.data.get("triggers") or [event.data.get("trigger")]
        return {(trigger, event.at) for trigger in triggers if trigger}


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


def what_if_cases(
    db: Database,
    registry: WorkflowRegistry,
    case_ids: Iterable[str],
    *,
    workflow: WorkflowDefinition,
    authorizer: Authorizer,
    workflows: Mapping[str, WorkflowDefinition] | None = None,
    sla: SlaPlanner | None = None,
) -> Iterator[CaseReport]:
    """:func:`what_if_case` for each case, each read in a transaction of its own (writes nothing)."""
    for case_id in case_ids:
        with db.read() as session:
            report = what_if_case(
                session, registry, case_id, workflow=workflow, authorizer=authorizer, workflows=workflows, sla=sla
            )
        yield report
