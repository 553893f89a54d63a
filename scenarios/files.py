"""Scenario tests for a desk's rules: YAML files of steps and expectations, run for real.

A scenario files one case at a given instant, then takes steps: time passes (the due
timers fire through :func:`cases.sweep.fire_due_timers`, each at its own due instant,
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import store.tables  # noqa: F401  (registers the tables created in the throw-away database)
from desk.loader import Desk
from workflow.categories import CATEGORY_ID
from workflow.durations import DurationError, parse_duration
from workflow.errors import ConfigError, InvalidCommandError, Problem
from workflow.facts import validate_facts
from workflow.model import SYSTEM, Actor, NewCase, from_iso
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
    "facts",
    "refused",
    "earlier",
}


_STEP_KEYS = {"note", "at", "after", "as", "do", "data", "reason", "expect"}


_EXPECT_KEYS = {
    "allowed",
    "refused",
    "state",
    "outcome",
    "awarded",
    "category",
    "flags",
    "mediator",
    "merchant_responded",
    "reopen_count",
    "timers",
    # Third-party review (cases/review.py): who the case was dealt to, how many reviews it has,
    # and texts the redacted case a reviewer reads must not / must contain.
    "reviewers",
    "reviews",
    "review_hides",
    "review_shows",
    "labels",
}
# Review steps a scenario may take besides the workflow's triggers and actions (cases/review.py):
# sample_reviews draws the sample of the period the case closed in (as an admin); review (data:
# scores, comment), flag_for_review (data: reason) as a reviewer; resolve_review_flag (data:
# decision, note) as a senior mediator.
REVIEW_STEPS = frozenset({"sample_reviews", "review", "flag_for_review", "resolve_review_flag"})


_TIMER_KEYS = {"status", "due", "warned"}


_ACTOR_KEYS = {"role", "id", "merchant"}


_ROLES = ("consumer", "merchant", "mediator", "senior_mediator", "auditor", "admin", "reviewer", "system")


_MISSING = object()


class ScenarioFileError(ConfigError):
    """Scenario files that cannot be run; ``problems`` names each mistake with file and line."""


@dataclass(frozen=True)
class TimerExpectation:
    status: str | None = None
    due: datetime | None = None
    warned: bool | None = None


# A scenario that names no category files in the desk's first one (filed_category).
DESK_CATEGORY = ""


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
    # ``start: refused: <text>``: the filing itself must be refused, with a reason containing it
    # (a required fact missing, a value of the wrong type, a filing no workflow takes).
    filing_refused: str | None = None
    # ``start: earlier:``: cases filed before this one (instant, order reference, consumer,
    # merchant), so that counts over related cases have something to count.
    earlier: tuple[tuple[datetime, NewCase], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def filed_category(new_case: NewCase, desk: Desk) -> NewCase:
    """``new_case`` in the category its scenario names, or the desk's first when it names none."""
    if new_case.category != DESK_CATEGORY:
        return new_case
    return replace(new_case, category=desk.categories.ids[0])


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
        earlier = self.earlier(start.get("earlier"), (*path, "start", "earlier"), new_case, start_at)
        filing_refused = start.get("refused")
        if filing_refused is not None and (not isinstance(filing_refused, str) or not filing_refused):
            self.problem((*path, "start", "refused"), "'refused' must be text the filing's refusal contains")
            filing_refused = None
        raw_steps = data.get("steps", [] if filing_refused is not None else None)
        if not isinstance(raw_steps, list) or (not raw_steps and filing_refused is None):
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
            lines={
                "workflow": self.located.line((*path, "workflow")),
                "facts": self.located.line((*path, "start", "facts")),
                "category": self.located.line((*path, "start", "category")),
            },
            filing_refused=filing_refused,
            earlier=earlier,
        )

    def earlier(
        self, raw: Any, path: YamlPath, new_case: NewCase | None, start_at: datetime | None
    ) -> tuple[tuple[datetime, NewCase], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            self.problem(path, "'earlier' must be a list of {at, order_ref, consumer, merchant, facts}")
            return ()
        found = []
        for index, item in enumerate(raw):
            where = (*path, index)
            self.unknown(item, {"at", "order_ref", "consumer", "merchant", "facts"}, where, "an earlier case")
            at = self.instant(item.get("at", _MISSING), (*where, "at"))
            if at is None or new_case is None:
                continue
            if start_at is not None and at >= start_at:
                self.problem((*where, "at"), "an earlier case is filed before the scenario's case ('start: at')")
                continue
            changes = {
                key: item[name]
                for name, key in (("order_ref", "order_ref"), ("consumer", "consumer_id"), ("merchant", "merchant_id"))
                if name in item
            }
            if not all(isinstance(v, str) and v for v in changes.values()):
                self.problem(where, "order_ref, consumer and merchant of an earlier case must be text")
                continue
            facts = item.get("facts", {})
            if not isinstance(facts, dict):
                self.problem((*where, "facts"), "facts must be a mapping of fact name to value")
                continue
            # The scenario's facts, with the earlier case's own on top.
            found.append((at, replace(new_case, facts={**new_case.facts, **facts}, **changes)))
        return tuple(sorted(found, key=lambda pair: pair[0]))

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
            # Absent: the desk's first category (scenarios/runner.py), product_quality on the default desk.
            "category": start.get("category", DESK_CATEGORY),
            "subject": start.get("subject", "Scenario case"),
            "description": start.get("description", "A case filed by a scenario."),
            "order_ref": start.get("order_ref", "ORDER-1"),
            "desired_outcome": start.get("desired_outcome", "refund"),
            "priority": start.get("priority", "normal"),
        }
        ok = True
        for key, value in values.items():
            if not isinstance(value, str) or not (value or key == "category"):
                self.problem((*path, key.removesuffix("_id")), f"{key.removesuffix('_id')} must be text")
                ok = False
        category = values["category"]
        if isinstance(category, str) and category != DESK_CATEGORY and not CATEGORY_ID.match(category):
            # Whether the desk has it is check_scenarios' to say (the desk is not known here).
            self.problem((*path, "category"), f"category {values['category']!r} is not a category id")
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
        facts = start.get("facts", {})
        if not isinstance(facts, dict):
            self.problem((*path, "facts"), "facts must be a mapping of fact name to value")
            ok = False
        if not ok:
            return None
        return NewCase(claim_amount=int(amount), currency=str(currency), facts=dict(facts), **values)  # type: ignore[arg-type]

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
            # The packaged desk's reviewers (intake/default/review.yaml).
            "reviewer": Actor("reviewer-1", "reviewer"),
            "second_reviewer": Actor("reviewer-2", "reviewer"),
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
            ("category", str),
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
        if "reviewers" in raw:
            reviewers = raw["reviewers"]
            if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
                self.problem((*path, "reviewers"), "'reviewers' must be the list of reviewer ids the case was dealt to")
            else:
                facts["reviewers"] = list(reviewers)
        if "reviews" in raw:
            count = raw["reviews"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                self.problem((*path, "reviews"), "'reviews' must be the number of reviews the case has")
            else:
                facts["reviews"] = count
        for key in ("review_hides", "review_shows"):
            if key in raw:
                texts = raw[key]
                if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
                    self.problem((*path, key), f"'{key}' must be a list of texts")
                else:
                    facts[key] = list(texts)
        if "labels" in raw:
            labels = raw["labels"]
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                self.problem((*path, "labels"), "'labels' maps a party to the text its state reads as")
            else:
                facts["labels"] = dict(labels)
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


def check_scenarios(scenarios: Sequence[Scenario], desk: Desk) -> list[Problem]:
    """Names the scenarios use that the desk lacks: a workflow, a trigger or action, a state, a timer."""
    problems: list[Problem] = []
    for scenario in scenarios:
        try:
            workflow = (
                desk.workflow(scenario.workflow) if scenario.workflow else desk.workflow_for(scenario.new_case.facts)
            )
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
        category = scenario.new_case.category
        if scenario.filing_refused is None and category != DESK_CATEGORY and category not in desk.categories:
            problems.append(
                Problem(
                    scenario.file,
                    scenario.lines.get("category", scenario.line),
                    f"unknown category {category!r} (the desk's categories: {desk.categories.listing()}); "
                    "a scenario of a refused filing says so with 'refused:'",
                )
            )
        if scenario.filing_refused is None:
            try:
                validate_facts(workflow.facts, scenario.new_case.facts)
            except InvalidCommandError as exc:
                problems.append(Problem(scenario.file, scenario.lines.get("facts", scenario.line), str(exc)))
        commands = {*workflow.trigger_names, *workflow.action_names}
        states = {s.name for s in workflow.states}
        timers = {t.name for t in workflow.timers}
        for step in scenario.steps:
            if step.command is not None and step.command not in commands and step.command not in REVIEW_STEPS:
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
