"""Scenario tests for a desk's rules: YAML files of steps and expectations, run for real.

A scenario files one case at a given instant, then takes steps: time passes (the due
timers fire through :func:`cases.timers.fire_due_timers`, each at its own due instant,
on an injected :class:`~sla.clock.ManualClock`), or an actor fires a trigger or does an
action through the real :class:`~cases.service.CaseService` with the desk's Cedar
policies. After each step the expectations are compared with the case; the first
difference fails the scenario. Every run uses a throw-away in-memory SQLite database.

File format (``docs/operators.md`` has the full reference)::

    scenario: The merchant stays silent; the case is decided for the consumer
    start:
      at: 2026-03-02T10:00:00+08:00
      claim: {amount: 29900, currency: CNY}
    steps:
      - as: mediator
        do: assign
        expect: {state: assigned, timers: {merchant_response: {status: running, due: 2026-03-04T10:00:00+08:00}}}
      - after: 48h
        expect: {state: settled, outcome: for_consumer, awarded: 29900}

A file holds one scenario, or several under ``scenarios:``. Mistakes in a file (an
unknown key, an actor nobody defined, a trigger the workflow does not have) are
reported with file and line before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables created in the throw-away database)
from cases.desk import Desk
from cases.mediators import MAX_CAPACITY, add_mediator
from cases.registry import WorkflowRegistry
from cases.service import CaseService, load_snapshot
from cases.timers import SlaClocks, fire_due_timers
from sla.clock import ManualClock
from store.db import Database
from store.tables import TIMERS
from workflow.definition import Problem, WorkflowDefinition
from workflow.durations import DurationError, parse_duration
from workflow.errors import DisputeError
from workflow.model import CATEGORIES, MEDIATOR_ROLES, SYSTEM, Actor, CaseSnapshot, NewCase, from_iso
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

YamlPath = tuple[str | int, ...]

TIMER_STATUSES = ("running", "paused", "met", "breached", "cancelled")
_SCENARIO_KEYS = {"scenario", "description", "workflow", "start", "actors", "steps"}
_START_KEYS = {
    "at",
    "consumer",
    "merchant",
    "category",
    "claim",
    "subject",
    "description",
    "order_ref",
    "desired_outcome",
    "priority",
    "filed_by",
}
_STEP_KEYS = {"note", "at", "after", "as", "do", "data", "reason", "expect"}
_EXPECT_KEYS = {
    "allowed",
    "refused",
    "state",
    "outcome",
    "awarded",
    "flags",
    "mediator",
    "merchant_responded",
    "reopen_count",
    "timers",
}
_TIMER_KEYS = {"status", "due", "warned"}
_ACTOR_KEYS = {"role", "id", "merchant"}
_ROLES = ("consumer", "merchant", "mediator", "senior_mediator", "auditor", "admin", "system")
_MISSING = object()


class ScenarioFileError(ValueError):
    """Scenario files that cannot be run; ``problems`` names each mistake with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class TimerExpectation:
    status: str | None = None
    due: datetime | None = None
    warned: bool | None = None


@dataclass(frozen=True)
class Expectation:
    allowed: bool = True
    refused_text: str | None = None
    # Case facts to compare: name -> expected value (present only when the file names them).
    facts: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, TimerExpectation] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    line: int
    note: str = ""
    at: datetime | None = None
    after: timedelta | None = None
    actor: str | None = None
    command: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    expect: Expectation = field(default_factory=Expectation)
    # Lines of what the desk check needs to point at.
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def title(self) -> str:
        if self.note:
            return self.note
        parts = []
        if self.after is not None:
            parts.append(f"after {_show_delta(self.after)}")
        if self.at is not None:
            parts.append(f"at {self.at.isoformat()}")
        if self.command:
            parts.append(f"{self.actor} does {self.command}")
        return ", ".join(parts) or "check"


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    line: int
    start_at: datetime
    new_case: NewCase
    filed_by: str
    actors: dict[str, Actor]
    steps: tuple[Step, ...]
    workflow: str | None = None
    description: str = ""
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    passed: bool
    steps_passed: int
    # The first difference, with the step's file and line; empty when passed.
    difference: str = ""


# --- reading files ------------------------------------------------------------------


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, and those in the directories named (sorted, not recursive)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files


def load_scenarios(paths: Iterable[Path]) -> list[Scenario]:
    """Parse every scenario in ``paths``; raise :class:`ScenarioFileError` with every problem."""
    scenarios: list[Scenario] = []
    problems: list[Problem] = []
    files = scenario_files(paths)
    if not files:
        raise ScenarioFileError([Problem(", ".join(str(p) for p in paths) or ".", 1, "no scenario files found")])
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            located = load_located(text, str(path))
        except OSError as exc:
            problems.append(Problem(str(path), 1, f"cannot read file: {exc.strerror}"))
            continue
        except YamlError as exc:
            problems.append(Problem(exc.file, exc.line, exc.message))
            continue
        reader = _Reader(located)
        scenarios.extend(reader.read())
        problems.extend(reader.problems)
    if problems:
        raise ScenarioFileError(problems)
    return scenarios


class _Reader:
    def __init__(self, located: LocatedYaml) -> None:
        self.located = located
        self.problems: list[Problem] = []

    def problem(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.located.file, self.located.line(path), message))

    def unknown(self, mapping: dict[str, Any], allowed: set[str], path: YamlPath, what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem((*path, key), f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")

    def read(self) -> list[Scenario]:
        data = self.located.data
        if isinstance(data, dict) and "scenarios" in data:
            self.unknown(data, {"scenarios"}, (), "a file of scenarios")
            items = data["scenarios"]
            if not isinstance(items, list) or not items:
                self.problem(("scenarios",), "'scenarios' must be a non-empty list of scenarios")
                return []
            found = [self.scenario(item, ("scenarios", i)) for i, item in enumerate(items)]
        else:
            found = [self.scenario(data, ())]
        return [s for s in found if s is not None]

    def scenario(self, data: Any, path: YamlPath) -> Scenario | None:
        if not isinstance(data, dict):
            self.problem(path, "a scenario must be a mapping with scenario, start and steps")
            return None
        before = len(self.problems)
        self.unknown(data, _SCENARIO_KEYS, path, "a scenario")
        name = data.get("scenario")
        if not isinstance(name, str) or not name.strip():
            self.problem((*path, "scenario"), "every scenario needs a name: 'scenario: what it shows'")
            name = "?"
        workflow = data.get("workflow")
        if workflow is not None and not isinstance(workflow, str):
            self.problem((*path, "workflow"), "'workflow' must be a workflow name")
            workflow = None
        start = data.get("start")
        if not isinstance(start, dict):
            self.problem(
                (*path, "start") if "start" in data else path,
                "'start' is required: at least the instant the case is filed ('at')",
            )
            return None
        self.unknown(start, _START_KEYS, (*path, "start"), "start")
        start_at = self.instant(start.get("at", _MISSING), (*path, "start", "at"))
        new_case = self.new_case(start, (*path, "start"))
        actors = self.actors(data.get("actors"), (*path, "actors"), new_case)
        filed_by = start.get("filed_by", "consumer")
        if not isinstance(filed_by, str) or filed_by not in actors:
            self.problem((*path, "start", "filed_by"), f"filed_by {filed_by!r} is not an actor ({_names(actors)})")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            self.problem((*path, "steps") if "steps" in data else path, "'steps' must be a non-empty list")
            raw_steps = []
        steps = [self.step(item, (*path, "steps", i), actors) for i, item in enumerate(raw_steps)]
        if len(self.problems) > before or start_at is None or new_case is None:
            return None
        return Scenario(
            name=name.strip(),
            file=self.located.file,
            line=self.located.line((*path, "scenario") if "scenario" in data else path),
            start_at=start_at,
            new_case=new_case,
            filed_by=str(filed_by),
            actors=actors,
            steps=tuple(s for s in steps if s is not None),
            workflow=workflow,
            description=str(data.get("description", "")),
            lines={"workflow": self.located.line((*path, "workflow"))},
        )

    def instant(self, value: Any, path: YamlPath) -> datetime | None:
        if value is _MISSING:
            self.problem(path[:-1], "the instant 'at' is required, e.g. 2026-03-02T10:00:00+08:00")
            return None
        moment: Any = value
        if isinstance(value, str):
            try:
                moment = from_iso(value.strip())
            except ValueError:
                moment = None
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            self.problem(path, f"{value!r} is not an instant with its UTC offset, e.g. 2026-03-02T10:00:00+08:00")
            return None
        return moment

    def new_case(self, start: dict[str, Any], path: YamlPath) -> NewCase | None:
        values: dict[str, Any] = {
            "consumer_id": start.get("consumer", "c-1"),
            "merchant_id": start.get("merchant", "m-1"),
            "category": start.get("category", "product_quality"),
            "subject": start.get("subject", "Scenario case"),
            "description": start.get("description", "A case filed by a scenario."),
            "order_ref": start.get("order_ref", "ORDER-1"),
            "desired_outcome": start.get("desired_outcome", "refund"),
            "priority": start.get("priority", "normal"),
        }
        ok = True
        for key, value in values.items():
            if not isinstance(value, str) or not value:
                self.problem((*path, key.removesuffix("_id")), f"{key.removesuffix('_id')} must be text")
                ok = False
        if values["category"] not in CATEGORIES:
            self.problem((*path, "category"), f"unknown category {values['category']!r} ({', '.join(CATEGORIES)})")
            ok = False
        claim = start.get("claim", {"amount": 29900, "currency": "CNY"})
        amount = claim.get("amount") if isinstance(claim, dict) else None
        currency = claim.get("currency") if isinstance(claim, dict) else None
        if (
            not isinstance(claim, dict)
            or set(claim) - {"amount", "currency"}
            or isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount < 0
            or not isinstance(currency, str)
        ):
            self.problem((*path, "claim"), "claim must be {amount: <minor units, e.g. 29900>, currency: CNY}")
            ok = False
        if not ok:
            return None
        return NewCase(claim_amount=int(amount), currency=str(currency), **values)  # type: ignore[arg-type]

    def actors(self, raw: Any, path: YamlPath, new_case: NewCase | None) -> dict[str, Actor]:
        consumer = new_case.consumer_id if new_case else "c-1"
        merchant = new_case.merchant_id if new_case else "m-1"
        actors = {
            "consumer": Actor(consumer, "consumer"),
            "merchant": Actor(f"staff-{merchant}", "merchant", merchant_id=merchant),
            "mediator": Actor("med-1", "mediator"),
            "senior": Actor("sen-1", "senior_mediator"),
            "senior_mediator": Actor("sen-1", "senior_mediator"),
            "auditor": Actor("aud-1", "auditor"),
            "admin": Actor("adm-1", "admin"),
            "system": SYSTEM,
        }
        if raw is None:
            return actors
        if not isinstance(raw, dict):
            self.problem(path, "'actors' must map names to {role, id, merchant}")
            return actors
        for name, spec in raw.items():
            where = (*path, name)
            if not isinstance(spec, dict):
                self.problem(where, f"actor {name!r} must be a mapping like {{role: mediator, id: med-2}}")
                continue
            self.unknown(spec, _ACTOR_KEYS, where, f"actor {name!r}")
            role, ident, merchant_id = spec.get("role"), spec.get("id"), spec.get("merchant")
            if role not in _ROLES:
                self.problem((*where, "role"), f"actor {name!r}: role must be one of {', '.join(_ROLES)}")
                continue
            if not isinstance(ident, str) or not ident:
                self.problem((*where, "id"), f"actor {name!r} needs an id")
                continue
            if role == "merchant" and not isinstance(merchant_id, str):
                self.problem(where, f"actor {name!r}: a merchant needs 'merchant' (the merchant id it acts for)")
                continue
            actors[name] = Actor(ident, role, merchant_id=merchant_id if role == "merchant" else None)
        return actors

    def step(self, raw: Any, path: YamlPath, actors: dict[str, Actor]) -> Step | None:
        if not isinstance(raw, dict):
            self.problem(path, "a step must be a mapping (at/after, as + do, expect)")
            return None
        self.unknown(raw, _STEP_KEYS, path, "a step")
        before = len(self.problems)
        at = self.instant(raw["at"], (*path, "at")) if "at" in raw else None
        after: timedelta | None = None
        if "after" in raw:
            try:
                duration = parse_duration(raw["after"])
                if duration.business:
                    raise DurationError("'after' is wall-clock time; write e.g. '48h' or '3d'")
                after = timedelta(seconds=duration.wall_seconds)
            except DurationError as exc:
                self.problem((*path, "after"), f"after: {exc}")
        if at is not None and after is not None:
            self.problem(path, "a step moves the clock with 'at' or with 'after', not both")
        actor, command = raw.get("as"), raw.get("do")
        if (actor is None) != (command is None):
            self.problem(path, "'as' (who) and 'do' (the trigger or action) go together")
        if actor is not None and actor not in actors:
            self.problem((*path, "as"), f"unknown actor {actor!r} ({_names(actors)}; add others under 'actors')")
        if command is not None and not isinstance(command, str):
            self.problem((*path, "do"), "'do' must name a trigger or an action")
        data = raw.get("data", {})
        if not isinstance(data, dict):
            self.problem((*path, "data"), "'data' must be a mapping")
            data = {}
        reason = raw.get("reason", "")
        if not isinstance(reason, str):
            self.problem((*path, "reason"), "'reason' must be text")
            reason = ""
        note = raw.get("note", "")
        if command is None and at is None and after is None and "expect" not in raw:
            self.problem(path, "a step does something: move the clock (at/after), act (as + do), or check (expect)")
        expect = self.expectation(raw.get("expect", {}), (*path, "expect"), acting=command is not None)
        if len(self.problems) > before or expect is None:
            return None
        lines = {key: self.located.line((*path, key)) for key in ("do", "expect")}
        lines.update({f"timer:{name}": self.located.line((*path, "expect", "timers", name)) for name in expect.timers})
        lines["state"] = self.located.line((*path, "expect", "state"))
        return Step(
            line=self.located.line(path),
            note=str(note),
            at=at,
            after=after,
            actor=actor,
            command=command,
            data=data,
            reason=reason,
            expect=expect,
            lines=lines,
        )

    def expectation(self, raw: Any, path: YamlPath, *, acting: bool) -> Expectation | None:
        if not isinstance(raw, dict):
            self.problem(path, "'expect' must be a mapping of what should hold after the step")
            return None
        self.unknown(raw, _EXPECT_KEYS, path, "expect")
        allowed = raw.get("allowed", True)
        refused = raw.get("refused")
        if not isinstance(allowed, bool):
            self.problem((*path, "allowed"), "'allowed' must be true or false")
            allowed = True
        refused_text: str | None = None
        if refused is not None:
            if refused is True:
                refused_text = ""
            elif isinstance(refused, str) and refused:
                refused_text = refused
            else:
                self.problem((*path, "refused"), "'refused' is true or a text the refusal's reason must contain")
            if "allowed" in raw and allowed:
                self.problem((*path, "allowed"), "'allowed: true' and 'refused' contradict each other")
            allowed = False
        if not acting and ("allowed" in raw or refused is not None):
            self.problem(path, "'allowed' and 'refused' need a command ('as' + 'do') in the step")
        facts: dict[str, Any] = {}
        for key, kind in (
            ("state", str),
            ("outcome", str),
            ("mediator", str),
            ("awarded", int),
            ("merchant_responded", bool),
            ("reopen_count", int),
        ):
            if key not in raw:
                continue
            value = raw[key]
            nullable = key in ("outcome", "awarded", "mediator")
            if (value is None and not nullable) or (
                value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool)))
            ):
                self.problem((*path, key), f"{key!r} must be {kind.__name__}" + (" or null" if nullable else ""))
                continue
            facts[key] = value
        if "flags" in raw:
            flags = raw["flags"]
            if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
                self.problem((*path, "flags"), "'flags' must be the list of flags the case has (may be [])")
            else:
                facts["flags"] = sorted(flags)
        timers: dict[str, TimerExpectation] = {}
        raw_timers = raw.get("timers", {})
        if not isinstance(raw_timers, dict):
            self.problem((*path, "timers"), "'timers' must map timer names to a status or {status, due, warned}")
            raw_timers = {}
        for name, spec in raw_timers.items():
            where = (*path, "timers", name)
            if isinstance(spec, str):
                spec = {"status": spec}
            if not isinstance(spec, dict):
                self.problem(where, f"timer {name!r}: give a status or {{status, due, warned}}")
                continue
            self.unknown(spec, _TIMER_KEYS, where, f"timer {name!r}")
            status = spec.get("status")
            if status is not None and status not in (*TIMER_STATUSES, "none"):
                self.problem(
                    (*where, "status"),
                    f"timer {name!r}: status must be one of {', '.join(TIMER_STATUSES)} or none (never started)",
                )
                status = None
            due = self.instant(spec["due"], (*where, "due")) if "due" in spec else None
            warned = spec.get("warned")
            if warned is not None and not isinstance(warned, bool):
                self.problem((*where, "warned"), f"timer {name!r}: warned must be true or false")
                warned = None
            timers[str(name)] = TimerExpectation(status=status, due=due, warned=warned)
        return Expectation(allowed=allowed, refused_text=refused_text, facts=facts, timers=timers)


def _names(actors: dict[str, Actor]) -> str:
    return "known: " + ", ".join(sorted(actors))


def _show_delta(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- checking against a desk --------------------------------------------------------


def check_scenarios(scenarios: Sequence[Scenario], desk: Desk) -> list[Problem]:
    """Names the scenarios use that the desk lacks: a workflow, a trigger or action, a state, a timer."""
    problems: list[Problem] = []
    for scenario in scenarios:
        try:
            workflow = desk.workflow(scenario.workflow)
        except KeyError:
            names = ", ".join(w.name for w in desk.workflows)
            problems.append(
                Problem(
                    scenario.file,
                    scenario.lines.get("workflow", scenario.line),
                    f"workflow {scenario.workflow!r} is not a workflow of the desk ({names})",
                )
            )
            continue
        commands = {*workflow.trigger_names, *workflow.action_names}
        states = {s.name for s in workflow.states}
        timers = {t.name for t in workflow.timers}
        for step in scenario.steps:
            if step.command is not None and step.command not in commands:
                problems.append(
                    Problem(
                        scenario.file,
                        step.lines["do"],
                        f"{step.command!r} is neither a trigger nor an action of workflow {workflow.name!r}",
                    )
                )
            state = step.expect.facts.get("state")
            if state is not None and state not in states:
                problems.append(
                    Problem(
                        scenario.file,
                        step.lines["state"],
                        f"state {state!r} is not a state of workflow {workflow.name!r}",
                    )
                )
            for name in step.expect.timers:
                if name not in timers:
                    problems.append(
                        Problem(
                            scenario.file,
                            step.lines[f"timer:{name}"],
                            f"timer {name!r} is not a timer of workflow {workflow.name!r}",
                        )
                    )
    return problems


# --- running ------------------------------------------------------------------------


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
            clocks=SlaClocks(desk.calendars),
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
