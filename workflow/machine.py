"""One ``transitions`` machine per definition version, and the immutable table served from it.

The machine validates the definition and is the reference for what is possible;
requests on many threads read only the frozen table derived from it, so no
model is ever added to or removed from a shared machine concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from transitions import Machine

from workflow.definition import ActionDef, TransitionDef, WorkflowDefinition


@dataclass(frozen=True)
class WorkflowMachine:
    definition: WorkflowDefinition
    machine: Machine
    # (state, trigger) -> transition
    table: Mapping[tuple[str, str], TransitionDef]
    # state -> triggers possible from it, in definition order
    triggers_by_state: Mapping[str, tuple[str, ...]]
    # state -> actions allowed in it
    actions_by_state: Mapping[str, tuple[str, ...]]

    def transition(self, state: str, trigger: str) -> TransitionDef | None:
        return self.table.get((state, trigger))

    def possible_triggers(self, state: str) -> tuple[str, ...]:
        return self.triggers_by_state.get(state, ())

    def may(self, state: str, trigger: str) -> bool:
        return (state, trigger) in self.table

    def action(self, name: str) -> ActionDef | None:
        return self.definition.action(name)

    def action_allowed(self, state: str, name: str) -> bool:
        return name in self.actions_by_state.get(state, ())


def _build(definition: WorkflowDefinition) -> WorkflowMachine:
    machine = Machine(
        model=None,
        states=[s.name for s in definition.states],
        transitions=[{"trigger": t.trigger, "source": list(t.sources), "dest": t.dest} for t in definition.transitions],
        initial=definition.initial,
        auto_transitions=False,
        send_event=False,
    )
    by_trigger = {t.trigger: t for t in definition.transitions}
    table: dict[tuple[str, str], TransitionDef] = {}
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            # The loader refuses duplicate triggers per source, so there is one each.
            dest = transitions[0].dest
            candidates = [t for t in definition.transitions if t.trigger == trigger and source in t.sources]
            table[(source, trigger)] = candidates[0] if candidates else by_trigger[trigger]
            assert table[(source, trigger)].dest == dest
    triggers_by_state = {
        s.name: tuple(t for t in machine.get_triggers(s.name) if (s.name, t) in table) for s in definition.states
    }
    actions_by_state = {
        s.name: tuple(a.name for a in definition.actions if s.name in a.states) for s in definition.states
    }
    return WorkflowMachine(
        definition=definition,
        machine=machine,
        table=MappingProxyType(table),
        triggers_by_state=MappingProxyType(triggers_by_state),
        actions_by_state=MappingProxyType(actions_by_state),
    )


_cache: dict[str, WorkflowMachine] = {}
_lock = threading.Lock()


def machine_for(definition: WorkflowDefinition) -> WorkflowMachine:
    """The shared machine of this definition version, built on first use."""
    found = _cache.get(definition.version)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(definition.version)
        if found is None:
            found = _build(definition)
            _cache[definition.version] = found
        return found
