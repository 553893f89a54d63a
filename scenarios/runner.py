"""Running scenario files against a desk: each on a throw-away in-memory database with a manual
clock, through the same command path a person goes through; a pass, or the first difference."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables created in the throw-away database)
from cases.mediators import MAX_CAPACITY, add_mediator
from cases.queries import load_snapshot
from cases.registry import WorkflowRegistry
from cases.service import CaseService
from cases.sweep import fire_due_timers
from desk.loader import Desk
from scenarios.files import Scenario, ScenarioFileError, Step, check_scenarios
from sla.clock import ManualClock
from sla.planner import SlaPlanner
from store.db import Database
from store.tables import TIMERS
from workflow.definition import WorkflowDefinition
from workflow.errors import DisputeError
from workflow.model import MEDIATOR_ROLES, CaseSnapshot, from_iso


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    passed: bool
    steps_passed: int
    # The first difference, with the step's file and line; empty when passed.
    difference: str = ""


def run_scenarios(scenarios: Sequence[Scenario], desk: Desk) -> list[ScenarioResult]:
    """Check the scenarios against the desk (raising :class:`ScenarioFileError`), then run each."""
    problems = check_scenarios(scenarios, desk)
    if problems:
        raise ScenarioFileError(problems)
    return [run_scenario(scenario, desk) for scenario in scenarios]


def run_scenario(scenario: Scenario, desk: Desk) -> ScenarioResult:
    runner = _Run(scenario, desk)
    try:
        return runner.run()
    finally:
        runner.close()


class _Failed(Exception):
    pass


class _Run:
    def __init__(self, scenario: Scenario, desk: Desk) -> None:
        self.scenario = scenario
        self.workflow: WorkflowDefinition = desk.workflow(scenario.workflow)
        self.clock = ManualClock(scenario.start_at)
        # A fresh in-memory database per scenario: nothing outlives the run.
        self.db = Database("sqlite://")
        SQLModel.metadata.create_all(self.db.engine)
        numbers = itertools.count(1)
        self.service = CaseService(
            db=self.db,
            registry=WorkflowRegistry(list(desk.workflows), default=desk.default_workflow),
            authorizer=desk.policies,
            clock=self.clock,
            sla=SlaPlanner(desk.calendars),
            id_factory=lambda now: f"SCENARIO-{next(numbers)}",
        )
        self.case_id = ""
        self.register_mediators()

    def register_mediators(self) -> None:
        """Only registered mediators may be assigned: the scenario's mediators (its actors of a
        mediator role and every ``mediator_id`` its steps name) are registered, active, on every
        category and language, with room for any case, so that a scenario tests the desk's rules."""
        named = {actor.id for actor in self.scenario.actors.values() if actor.role in MEDIATOR_ROLES}
        named |= {
            step.data["mediator_id"] for step in self.scenario.steps if isinstance(step.data.get("mediator_id"), str)
        }
        fields = {
            "display_name": "scenario mediator",
            "categories": ["*"],
            "languages": ["*"],
            "capacity": MAX_CAPACITY,
            "calendar": "24x7",
        }
        with self.db.write() as session:
            for mediator_id in sorted(named):
                try:
                    add_mediator(
                        session, mediator_id=mediator_id, fields=fields, calendars=["24x7"], now=self.clock.now()
                    )
                except DisputeError:
                    pass  # not an identifier: the step naming it will be refused, as it should

    def close(self) -> None:
        self.db.dispose()

    def run(self) -> ScenarioResult:
        scenario = self.scenario
        try:
            filed = self.service.file(
                actor=scenario.actors[scenario.filed_by], new_case=scenario.new_case, workflow=self.workflow.name
            )
        except DisputeError as exc:
            return ScenarioResult(scenario, False, 0, f"filing the case was refused: {exc}")
        self.case_id = filed.id
        for index, step in enumerate(scenario.steps):
            try:
                self.step(step)
            except _Failed as failure:
                return ScenarioResult(
                    scenario, False, index, f"step {index + 1} (line {step.line}, {step.title}): {failure}"
                )
        return ScenarioResult(scenario, True, len(scenario.steps))

    def step(self, step: Step) -> None:
        if step.after is not None:
            self.advance_to(self.clock.now() + step.after)
        elif step.at is not None:
            if step.at < self.clock.now():
                raise _Failed(
                    f"'at' {step.at.isoformat()} is before the scenario's clock "
                    f"({self.clock.now().isoformat()}); time only moves forward"
                )
            self.advance_to(step.at)
        refusal: str | None = None
        if step.command is not None and step.actor is not None:
            actor = self.scenario.actors[step.actor]
            try:
                self.service.execute(
                    actor=actor, case_id=self.case_id, name=step.command, data=self.data(step), reason=step.reason
                )
            except DisputeError as exc:
                refusal = str(exc)
        case = self.case()
        self.check(step, case, refusal)

    def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, firing every timer due on the way at its own instant,
        so that a breach's consequences (a new state's clocks) start when they would have."""
        for _ in range(10_000):
            with self.db.read() as session:
                due = session.execute(
                    select(func.min(TIMERS.c.next_fire_at)).where(TIMERS.c.next_fire_at <= target)
                ).scalar()
            if due is None:
                break
            instant = max(due, self.clock.now())
            self.clock.set(instant)
            if fire_due_timers(self.service, instant) == 0:
                break  # nothing applied at this instant (cannot happen with a sound desk): stop looping
        self.clock.set(target)

    def data(self, step: Step) -> dict[str, Any]:
        data = dict(step.data)
        case = self.case()
        if data.get("offer_id") == "last":
            data["offer_id"] = case.offers[-1].offer_id if case.offers else "none"
        if data.get("request_id") == "last":
            data["request_id"] = case.info_requests[-1].request_id if case.info_requests else "none"
        action = self.workflow.action(step.command or "")
        if action is not None and action.kind == "add_evidence":
            # A scenario speaks of a file, not of its bytes: fill in what an upload would.
            filename = data.setdefault("filename", "evidence.pdf")
            data.setdefault("media_type", "application/pdf")
            data.setdefault("size", 1024)
            data.setdefault("sha256", hashlib.sha256(str(filename).encode()).hexdigest())
        return data

    def case(self) -> CaseSnapshot:
        # Read directly: what the scenario checks must not depend on who the policies let read.
        with self.db.read() as session:
            return load_snapshot(session, self.case_id)

    def check(self, step: Step, case: CaseSnapshot, refusal: str | None) -> None:
        expect = step.expect
        if step.command is not None:
            if expect.allowed and refusal is not None:
                raise _Failed(f"expected {step.command} to be allowed, but it was refused: {refusal}")
            if not expect.allowed and refusal is None:
                wanted = f" (with a reason containing {expect.refused_text!r})" if expect.refused_text else ""
                raise _Failed(
                    f"expected {step.command} to be refused{wanted}, but it was allowed (state now {case.state!r})"
                )
            if refusal is not None and expect.refused_text and expect.refused_text.lower() not in refusal.lower():
                raise _Failed(
                    f"{step.command} was refused, but the reason does not contain {expect.refused_text!r}: {refusal}"
                )
        actual: dict[str, Any] = {
            "state": case.state,
            "outcome": case.outcome,
            "awarded": case.awarded_amount,
            "flags": sorted(case.flags),
            "mediator": case.mediator_id,
            "merchant_responded": case.merchant_responded,
            "reopen_count": case.reopen_count,
        }
        for key, wanted in expect.facts.items():
            if actual[key] != wanted:
                raise _Failed(f"expected {key} {wanted!r}, got {actual[key]!r}")
        for name, timer_expect in expect.timers.items():
            timer = case.timer(name)
            status = timer.status if timer is not None else "none"
            if timer_expect.status is not None and status != timer_expect.status:
                raise _Failed(
                    f"expected timer {name} {timer_expect.status}, got {status}"
                    + (f" (due {_local(timer.due_at, timer_expect.due)})" if timer is not None else "")
                )
            if timer_expect.due is not None:
                if timer is None:
                    raise _Failed(f"expected timer {name} due {timer_expect.due.isoformat()}, but it never started")
                if from_iso(timer.due_at) != timer_expect.due:
                    raise _Failed(
                        f"expected timer {name} due {timer_expect.due.isoformat()}, "
                        f"got {_local(timer.due_at, timer_expect.due)}"
                    )
            if timer_expect.warned is not None and (timer is None or timer.warned != timer_expect.warned):
                raise _Failed(
                    f"expected timer {name} warned={timer_expect.warned}, "
                    f"got {timer.warned if timer else 'never started'}"
                )


def _local(iso: str, like: datetime | None) -> str:
    """An instant shown in the offset the scenario wrote its expectation in."""
    moment = from_iso(iso)
    return moment.astimezone(like.tzinfo).isoformat() if like is not None and like.tzinfo else moment.isoformat()
