"""plan() answers a write none of whose events it acts on without looking further (the outbox
plans every write on the command path): its list of those event types must be the one its
branches test, or a notice would silently stop being planned."""

from __future__ import annotations

import ast
import inspect

from notify import plan as planning
from notify.rules import default_rules
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot


def _types_tested(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "kind"):
            continue
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Eq) and isinstance(right, ast.Constant):
                found.add(str(right.value))
            elif isinstance(op, ast.In) and isinstance(right, ast.Tuple):
                found.update(str(e.value) for e in right.elts if isinstance(e, ast.Constant))
    return found


def test_planned_types_are_the_event_types_plan_acts_on() -> None:
    source = inspect.getsource(planning.plan)
    tested = _types_tested(source)
    assert "timer_started" in tested and "timer_paused" in tested  # the walk sees both forms
    assert tested == set(planning.PLANNED_TYPES)


def test_a_write_of_other_events_plans_nothing_without_reading_the_case() -> None:
    # An empty snapshot (no attributes set): reading anything of the case would raise.
    case = CaseSnapshot.__new__(CaseSnapshot)
    events = [
        RecordedEvent("DSP-1", seq, kind, "2026-03-02T10:00:00Z", "u-1", "consumer", {}, "1", "1")
        for seq, kind in enumerate(("message", "merchant_responded", "offer_accepted"), start=4)
    ]
    assert planning.plan(default_rules(), case, case, events) is planning.NOTHING
    assert not planning.NOTHING
