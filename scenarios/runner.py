"""Running scenario files against a desk: each on a throw-away in-memory database with a manual
clock, through the same command path a person goes through; a pass, or the first difference."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables created in the throw-away database)
from cases.mediators import MAX_CAPACITY, add_mediator
from cases.queries import load_snapshot
from cases.registry import WorkflowRegistry
from cases.review import flag_case, resolve_flag, review_case, sample_period, submit_review, week_start
from cases.service import CaseService
from cases.sweep import fire_due_timers
from desk.loader import Desk
from intake.review import ReviewRules
from scenarios.files import REVIEW_STEPS, Scenario, ScenarioFileError, Step, check_scenarios, filed_category
from sla.clock import ManualClock
from sla.planner import SlaPlanner
from store.db import Database
from store.tables import TIMERS
from workflow.definition import WorkflowDefinition
from workflow.errors import DisputeError
from workflow.model import MEDIATOR_ROLES, Actor, CaseSnapshot, from_iso


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
        self.desk = desk
        self.workflow: WorkflowDefinition = (
            desk.workflow(scenario.workflow) if scenario.workflow else desk.workflow_for(scenario.new_case.facts)
        )
        self.clock = ManualClock(scenario.start_at)
        # A fresh in-memory database per scenario: nothing outlives the run.
        self.db = Database("sqlite://")
        SQLModel.metadata.create_all(self.db.engine)
        numbers = itertools.count(1)
        self.service = CaseService(
            db=self.db,
            registry=WorkflowRegistry(
                list(desk.workflows), default=desk.default_workflow, rules=desk.manifest.workflow_rules
            ),
            authorizer=desk.policies,
            clock=self.clock,
            sla=SlaPlanner(desk.calendars),
            id_factory=lambda now: f"SCENARIO-{next(numbers)}",
            categories=desk.categories,
        )
        self.review: ReviewRules = desk.parts.get("review") or ReviewRules()
        self.zone = ZoneInfo(_desk_zone(desk))
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
        for at, earlier in scenario.earlier:
            self.clock.set(at)
            try:
                self.service.file(
                    actor=Actor(earlier.consumer_id, "consumer"),
                    new_case=filed_category(earlier, self.desk),
                    workflow=scenario.workflow,
                )
            except DisputeError as exc:
                return ScenarioResult(
                    scenario, False, 0, f"filing an earlier case ({at.isoformat()}) was refused: {exc}"
                )
        self.clock.set(scenario.start_at)
        try:
            filed = self.service.file(
                actor=scenario.actors[scenario.filed_by],
                new_case=filed_category(scenario.new_case, self.desk),
                workflow=scenario.workflow,
            )
        except DisputeError as exc:
            wanted = scenario.filing_refused
            if wanted is not None and wanted.lower() in str(exc).lower():
                return ScenarioResult(scenario, True, 0)
            why = f" (expected a refusal containing {wanted!r})" if wanted is not None else ""
            return ScenarioResult(scenario, False, 0, f"filing the case was refused{why}: {exc}")
        if scenario.filing_refused is not None:
            return ScenarioResult(
                scenario, False, 0, f"expected the filing to be refused ({scenario.filing_refused!r}), but it was filed"
            )
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
                if step.command in REVIEW_STEPS:
                    self.review_step(actor, step.command, self.data(step))
                else:
                    self.service.execute(
                        actor=actor, case_id=self.case_id, name=step.command, data=self.data(step), reason=step.reason
                    )
            except DisputeError as exc:
                refusal = str(exc)
        case = self.case()
        self.check(step, case, refusal)

    def review_step(self, actor: Actor, command: str, data: dict[str, Any]) -> None:
        """A third-party review step, through the review service a person's request goes through."""
        if command == "sample_reviews":
            since = week_start(self.clock.now(), self.zone)
            sample_period(self.service, self.review, actor, since=since, zone=self.zone)
        elif command == "review":
            submit_review(
                self.service, self.review, actor, self.case_id, scores=data.get("scores"), comment=data.get("comment")
            )
        elif command == "flag_for_review":
            flag_case(self.service, actor, self.case_id, reason=data.get("reason"))
        else:
            resolve_flag(self.service, actor, self.case_id, decision=data.get("decision"), note=data.get("note"))

    def reviewed_text(self, case: CaseSnapshot) -> str:
        """The redacted case as the first reviewer it was dealt to reads it, as one text."""
        if not case.reviewers:
            raise _Failed("the case was dealt to no reviewer, so no reviewer reads it")
        shown = review_case(self.service, self.review, Actor(case.reviewers[0], "reviewer"), self.case_id)
        return json.dumps(shown, ensure_ascii=False, default=str)

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
            "category": case.category,
            "awarded": case.awarded_amount,
            "flags": sorted(case.flags),
            "mediator": case.mediator_id,
            "merchant_responded": case.merchant_responded,
            "reopen_count": case.reopen_count,
            "reviewers": list(case.reviewers),
            "reviews": len(case.reviews),
        }
        for key in ("review_hides", "review_shows"):
            if key in expect.facts:
                text = self.reviewed_text(case)
                for wanted in expect.facts[key]:
                    if (wanted in text) == (key == "review_hides"):
                        verb = "shows" if key == "review_hides" else "does not show"
                        raise _Failed(f"the reviewer's redacted case {verb} {wanted!r}")
        wanted_labels = expect.facts.get("labels")
        if isinstance(wanted_labels, dict):
            state = self.service.registry.pinned(case.workflow_version).state(case.state)
            actual["labels"] = {party: state.label_for(party) for party in wanted_labels}
        for key, wanted in expect.facts.items():
            if key in ("review_hides", "review_shows"):
                continue
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


def _desk_zone(desk: Desk) -> str:
    """The time zone the desk's weeks start in: its default calendar's (or Shanghai's)."""
    calendar = desk.calendars.get("default")
    return calendar.timezone if calendar is not None else "Asia/Shanghai"


def _local(iso: str, like: datetime | None) -> str:
    """An instant shown in the offset the scenario wrote its expectation in."""
    moment = from_iso(iso)
    return moment.astimezone(like.tzinfo).isoformat() if like is not None and like.tzinfo else moment.isoformat()
