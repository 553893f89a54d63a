"""Workflow definitions: YAML -> typed, validated, immutable, content-hashed objects.

A definition's version is the sha256 of its canonical form (RFC 8785 JSON of the
normalised document), so reformatting or reordering the YAML keeps the version
while any change of meaning makes a new one. Cases are pinned to that version.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rfc8785

from workflow.durations import Duration, DurationError, parse_duration
from workflow.errors import ConfigError, Problem
from workflow.facts import FactDef, parse_fact_defs
from workflow.related import RelatedCount, parse_related
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

# The packaged workflow definitions, and the workflow new cases use when a desk names none and
# has it (the desk loader's rule and the registry's).
PACKAGED_DEFINITIONS = Path(__file__).resolve().parent / "definitions"
DEFAULT_WORKFLOW = "consumer_dispute"

# Built-in behaviours an action can have. A desk may name its actions freely and
# map them to one of these with ``kind``.
ACTION_KINDS = frozenset(
    {
        "comment",
        "add_evidence",
        "submit_evidence",
        "respond",
        "propose_offer",
        "accept_offer",
        "reject_offer",
        "request_info",
        "provide_info",
        "rate",
        "recategorise",
    }
)
# How a transition sets the case outcome, if it does.
OUTCOMES = frozenset({"accepted_offer", "full_claim", "ruling", "withdrawn", "rejected"})
# Conditions under which a clock can pause.
PAUSE_CONDITIONS = frozenset({"awaiting_consumer", "awaiting_merchant"})
# Reads are actions too, so that one policy set governs all access.
READ_ACTIONS = ("view", "view_history", "export")

OutcomeRule = Literal["accepted_offer", "full_claim", "ruling", "withdrawn", "rejected"]


class InvalidDefinitionError(ConfigError):
    """A workflow file that cannot be used; carries every problem found."""


# Who a state's label may speak to: the parties of a case and its mediators and auditors.
LABEL_PARTIES = frozenset({"consumer", "merchant", "mediator", "auditor"})


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    final: bool = False
    timers: tuple[str, ...] = ()
    description: str = ""
    # What the state reads as to each party ("your response is required" to the merchant,
    # "waiting for the merchant" to the consumer); a party without one sees the description.
    labels: tuple[tuple[str, str], ...] = ()

    def label_for(self, party: str) -> str:
        """The state as ``party`` reads it: its own label, else the description, else the name."""
        return dict(self.labels).get(party) or self.description or self.name


@dataclass(frozen=True, slots=True)
class TransitionDef:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    outcome: OutcomeRule | None = None
    assigns_mediator: bool = False
    requires_reason: bool = False
    counts_reopen: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionDef:
    name: str
    kind: str
    states: tuple[str, ...]
    description: str = ""
    # A trigger the action also fires, in the same command, when the state machine allows it
    # from where the action leaves the case (submitting evidence both locks it and moves the case).
    then: str | None = None


@dataclass(frozen=True, slots=True)
class BreachRule:
    """What a timer's breach does: fire a trigger as ``system``, fire the first of ``triggers``
    the state machine and the policies allow, or raise a flag."""

    trigger: str | None = None
    flag: str | None = None
    triggers: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[str, ...]:
        """The triggers a breach tries, in order."""
        return self.triggers or ((self.trigger,) if self.trigger else ())


@dataclass(frozen=True, slots=True)
class TimerDef:
    name: str
    goal: Duration
    calendar: str = "default"
    warn_at: float | None = None
    pause_while: tuple[str, ...] = ()
    stop_on: tuple[str, ...] = ()
    on_breach: BreachRule = field(default_factory=BreachRule)
    # An action clock: starts when one of these triggers or actions happens (whatever the state)
    # and runs across state changes until a ``stop_on`` command, or the case's end.
    start_on: tuple[str, ...] = ()
    # Start and due instant from case facts (workflow/facts.py): a 180-day window from the
    # payment instant; a per-dispute due date. The goal applies when the fact is absent.
    start_from: str | None = None
    due_from: str | None = None

    @property
    def action_clock(self) -> bool:
        return bool(self.start_on)


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    name: str
    initial: str
    states: tuple[StateDef, ...]
    transitions: tuple[TransitionDef, ...]
    actions: tuple[ActionDef, ...]
    timers: tuple[TimerDef, ...]
    version: str
    document: dict[str, Any] = field(compare=False, hash=False, repr=False)
    title: str = ""
    source: str = field(default="", compare=False)
    # The typed facts a filing may or must carry (workflow/facts.py); part of the version.
    facts: tuple[FactDef, ...] = ()
    # Counts over related cases, taken at filing (workflow/related.py).
    related: tuple[RelatedCount, ...] = ()

    def fact(self, name: str) -> FactDef | None:
        return next((f for f in self.facts if f.name == name), None)

    def state(self, name: str) -> StateDef:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    def timer(self, name: str) -> TimerDef:
        for timer in self.timers:
            if timer.name == name:
                return timer
        raise KeyError(name)

    def action(self, name: str) -> ActionDef | None:
        for action in self.actions:
            if action.name == name:
                return action
        return None

    @property
    def trigger_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for transition in self.transitions:
            seen.setdefault(transition.trigger, None)
        return tuple(seen)

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(action.name for action in self.actions)


def canonical_version(document: Any) -> str:
    """sha256 hex of the RFC 8785 canonical JSON of a normalised document."""
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def load_definition_file(path: str | Path) -> WorkflowDefinition:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidDefinitionError([Problem(str(path), 1, f"cannot read file: {exc.strerror}")]) from exc
    return load_definition_text(text, file=str(path))


def load_definition_text(text: str, *, file: str = "<workflow>") -> WorkflowDefinition:
    """Parse and validate; raise :class:`InvalidDefinitionError` listing every problem."""
    try:
        located = load_located(text, file)
    except YamlError as exc:
        raise InvalidDefinitionError([Problem(exc.file, exc.line, exc.message)]) from exc
    return _Builder(located).build()


def load_definition_document(document: dict[str, Any], *, file: str = "<stored>") -> WorkflowDefinition:
    """Rebuild a definition from its stored normalised document (for pinned versions)."""
    return _Builder(LocatedYaml(data=document, file=file)).build()


_TOP_KEYS = {
    "name",
    "title",
    "initial",
    "states",
    "transitions",
    "actions",
    "timers",
    "description",
    "facts",
    "related",
}
_STATE_KEYS = {"final", "timers", "description", "labels"}
_TRANSITION_KEYS = {
    "trigger",
    "source",
    "dest",
    "outcome",
    "assigns_mediator",
    "requires_reason",
    "counts_reopen",
    "description",
}
_ACTION_KEYS = {"kind", "states", "description", "then"}
_TIMER_KEYS = {
    "goal",
    "calendar",
    "warn_at",
    "pause_while",
    "stop_on",
    "on_breach",
    "description",
    "start_on",
    "start_from",
    "due_from",
}


class _Builder:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, located: LocatedYaml) -> None:
        self.located = located
        self.problems: list[Problem] = []
        self._parsed_transitions: tuple[TransitionDef, ...] = ()

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.located.file, self.located.line(path), message))

    def _names(self, value: Any, path: tuple[str | int, ...], what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.problem(path, f"{what} must be a name or a list of names")
        return ()

    def _unknown_keys(self, mapping: dict[str, Any], allowed: set[str], path: tuple[str | int, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem((*path, key), f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")

    def build(self) -> WorkflowDefinition:
        data = self.located.data
        if not isinstance(data, dict):
            self.problem((), "a workflow definition must be a mapping with name, initial, states, transitions")
            raise InvalidDefinitionError(self.problems)
        self._unknown_keys(data, _TOP_KEYS, (), "workflow")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            self.problem(("name",), "workflow 'name' is required and must be text")
            name = ""
        states = self._states(data.get("states"))
        state_names = {s.name for s in states}
        initial = data.get("initial")
        if not isinstance(initial, str):
            self.problem(("initial",), "'initial' state is required")
            initial = ""
        elif initial not in state_names:
            self.problem(("initial",), f"initial state {initial!r} is not a declared state")
        transitions = self._transitions(data.get("transitions"), state_names)
        self._parsed_transitions = transitions
        actions = self._actions(data.get("actions"), state_names, {t.trigger for t in transitions})
        timers = self._timers(data.get("timers"))
        facts = parse_fact_defs(data.get("facts"), self.problem)
        related = parse_related(data.get("related"), self.problem)
        self._check_graph(states, transitions, initial)
        self._check_timers(states, timers, transitions, actions)
        self._check_fact_clocks(timers, facts)
        if self.problems:
            raise InvalidDefinitionError(self.problems)
        document = self._normalised(data)
        return WorkflowDefinition(
            name=name,
            title=str(data.get("title", "")),
            initial=initial,
            states=states,
            transitions=transitions,
            actions=actions,
            timers=timers,
            version=canonical_version(document),
            document=document,
            source=self.located.file,
            facts=facts,
            related=related,
        )

    def _states(self, raw: Any) -> tuple[StateDef, ...]:
        if not isinstance(raw, dict) or not raw:
            self.problem(("states",), "'states' must be a non-empty mapping of state name to options")
            return ()
        result = []
        for state_name, options in raw.items():
            path = ("states", state_name)
            options = options or {}
            if not isinstance(options, dict):
                self.problem(path, f"state {state_name!r} options must be a mapping")
                continue
            self._unknown_keys(options, _STATE_KEYS, path, f"state {state_name!r}")
            final = options.get("final", False)
            if not isinstance(final, bool):
                self.problem((*path, "final"), "'final' must be true or false")
                final = False
            result.append(
                StateDef(
                    name=state_name,
                    final=final,
                    timers=self._names(options.get("timers"), (*path, "timers"), "timers"),
                    description=str(options.get("description", "")),
                    labels=self._labels(options.get("labels"), (*path, "labels"), state_name),
                )
            )
        return tuple(result)

    def _labels(self, raw: Any, path: tuple[str | int, ...], state: str) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not raw:
            self.problem(path, f"state {state!r}: labels must map parties to text ({', '.join(sorted(LABEL_PARTIES))})")
            return ()
        found = []
        for party, text in raw.items():
            if party not in LABEL_PARTIES:
                self.problem(
                    (*path, party),
                    f"state {state!r}: {party!r} is not a party a label speaks to ({', '.join(sorted(LABEL_PARTIES))})",
                )
            elif not isinstance(text, str) or not text.strip():
                self.problem((*path, party), f"state {state!r}: the {party}'s label must be text")
            else:
                found.append((party, text.strip()))
        return tuple(found)

    def _transitions(self, raw: Any, state_names: set[str]) -> tuple[TransitionDef, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem(("transitions",), "'transitions' must be a non-empty list")
            return ()
        result: list[TransitionDef] = []
        seen: dict[tuple[str, str], int] = {}
        for index, item in enumerate(raw):
            path: tuple[str | int, ...] = ("transitions", index)
            if not isinstance(item, dict):
                self.problem(path, "each transition must be a mapping with trigger, source, dest")
                continue
            self._unknown_keys(item, _TRANSITION_KEYS, path, "transition")
            trigger = item.get("trigger")
            if not isinstance(trigger, str) or not trigger.isidentifier():
                self.problem((*path, "trigger"), f"trigger {trigger!r} must be an identifier")
                continue
            sources = self._names(item.get("source"), (*path, "source"), "source")
            if not sources:
                self.problem((*path, "source"), f"transition {trigger!r} needs at least one source state")
            for source in sources:
                if source not in state_names:
                    self.problem((*path, "source"), f"transition {trigger!r}: unknown source state {source!r}")
                key = (source, trigger)
                if key in seen:
                    self.problem(
                        (*path, "trigger"),
                        f"duplicate trigger {trigger!r} from state {source!r} (also at line {seen[key]})",
                    )
                else:
                    seen[key] = self.located.line((*path, "trigger"))
            dest = item.get("dest")
            if not isinstance(dest, str) or dest not in state_names:
                self.problem((*path, "dest"), f"transition {trigger!r}: unknown dest state {dest!r}")
                continue
            outcome = item.get("outcome")
            if outcome is not None and outcome not in OUTCOMES:
                self.problem(
                    (*path, "outcome"), f"unknown outcome rule {outcome!r} (one of {', '.join(sorted(OUTCOMES))})"
                )
                outcome = None
            flags = {}
            for flag in ("assigns_mediator", "requires_reason", "counts_reopen"):
                value = item.get(flag, False)
                if not isinstance(value, bool):
                    self.problem((*path, flag), f"{flag!r} must be true or false")
                    value = False
                flags[flag] = value
            result.append(
                TransitionDef(
                    trigger=trigger,
                    sources=sources,
                    dest=dest,
                    outcome=outcome,
                    description=str(item.get("description", "")),
                    **flags,
                )
            )
        return tuple(result)

    def _actions(self, raw: Any, state_names: set[str], triggers: set[str]) -> tuple[ActionDef, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.problem(("actions",), "'actions' must be a mapping of action name to options")
            return ()
        result = []
        for action_name, options in raw.items():
            path = ("actions", action_name)
            options = options or {}
            if not isinstance(options, dict):
                self.problem(path, f"action {action_name!r} options must be a mapping")
                continue
            self._unknown_keys(options, _ACTION_KEYS, path, f"action {action_name!r}")
            if action_name in triggers:
                self.problem(path, f"action {action_name!r} has the same name as a trigger")
            if action_name in READ_ACTIONS:
                self.problem(path, f"{action_name!r} is a read action and is always defined")
            kind = options.get("kind", action_name)
            if kind not in ACTION_KINDS:
                self.problem(
                    (*path, "kind") if "kind" in options else path,
                    f"action {action_name!r}: unknown kind {kind!r} (one of {', '.join(sorted(ACTION_KINDS))})",
                )
                continue
            states_raw = options.get("states", "*")
            if states_raw == "*":
                states = tuple(sorted(state_names))
            else:
                states = self._names(states_raw, (*path, "states"), "states")
                for state in states:
                    if state not in state_names:
                        self.problem((*path, "states"), f"action {action_name!r}: unknown state {state!r}")
            then = options.get("then")
            if then is not None and (not isinstance(then, str) or then not in triggers):
                self.problem((*path, "then"), f"action {action_name!r}: then names {then!r}, which is not a trigger")
                then = None
            elif then is not None and not any(
                t.trigger == then and set(t.sources) & set(states) for t in self._parsed_transitions
            ):
                self.problem(
                    (*path, "then"),
                    f"action {action_name!r}: trigger {then!r} is possible from none of the action's states",
                )
                then = None
            result.append(
                ActionDef(
                    name=action_name,
                    kind=kind,
                    states=states,
                    description=str(options.get("description", "")),
                    then=then,
                )
            )
        return tuple(result)

    def _timers(self, raw: Any) -> tuple[TimerDef, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.problem(("timers",), "'timers' must be a mapping of timer name to options")
            return ()
        result = []
        for timer_name, options in raw.items():
            path = ("timers", timer_name)
            if not isinstance(options, dict):
                self.problem(path, f"timer {timer_name!r} options must be a mapping")
                continue
            self._unknown_keys(options, _TIMER_KEYS, path, f"timer {timer_name!r}")
            try:
                goal = parse_duration(options.get("goal"))  # type: ignore[arg-type]
            except DurationError as exc:
                self.problem((*path, "goal"), f"timer {timer_name!r}: {exc}")
                continue
            warn_at = options.get("warn_at")
            if warn_at is not None and (
                isinstance(warn_at, bool) or not isinstance(warn_at, (int, float)) or not 0 < warn_at < 1
            ):
                self.problem((*path, "warn_at"), f"timer {timer_name!r}: warn_at must be a fraction between 0 and 1")
                warn_at = None
            pause_while = self._names(options.get("pause_while"), (*path, "pause_while"), "pause_while")
            for condition in pause_while:
                if condition not in PAUSE_CONDITIONS:
                    self.problem(
                        (*path, "pause_while"),
                        f"timer {timer_name!r}: unknown pause condition {condition!r} "
                        f"(one of {', '.join(sorted(PAUSE_CONDITIONS))})",
                    )
            breach_raw = options.get("on_breach") or {}
            breach = BreachRule()
            if (
                not isinstance(breach_raw, dict)
                or set(breach_raw) - {"trigger", "flag", "triggers"}
                or len(breach_raw) != 1
            ):
                self.problem(
                    (*path, "on_breach"),
                    f"timer {timer_name!r}: on_breach needs exactly one of trigger, triggers (tried in order) or flag",
                )
            elif "triggers" in breach_raw:
                listed = breach_raw["triggers"]
                if not isinstance(listed, list) or not listed or not all(isinstance(t, str) for t in listed):
                    self.problem(
                        (*path, "on_breach", "triggers"),
                        f"timer {timer_name!r}: on_breach triggers must be a non-empty list of trigger names, "
                        "tried in order",
                    )
                elif len(set(listed)) != len(listed):
                    self.problem((*path, "on_breach", "triggers"), f"timer {timer_name!r}: on_breach triggers repeat")
                else:
                    breach = BreachRule(triggers=tuple(listed))
            else:
                breach = BreachRule(trigger=breach_raw.get("trigger"), flag=breach_raw.get("flag"))
            calendar = options.get("calendar", "default")
            if not isinstance(calendar, str):
                self.problem((*path, "calendar"), f"timer {timer_name!r}: calendar must be a name")
                calendar = "default"
            from_facts = {}
            for key in ("start_from", "due_from"):
                value = options.get(key)
                if value is not None and not isinstance(value, str):
                    self.problem((*path, key), f"timer {timer_name!r}: {key} must name a case fact")
                    value = None
                from_facts[key] = value
            result.append(
                TimerDef(
                    name=timer_name,
                    goal=goal,
                    calendar=calendar,
                    warn_at=float(warn_at) if warn_at is not None else None,
                    pause_while=pause_while,
                    stop_on=self._names(options.get("stop_on"), (*path, "stop_on"), "stop_on"),
                    on_breach=breach,
                    start_on=self._names(options.get("start_on"), (*path, "start_on"), "start_on"),
                    **from_facts,
                )
            )
        return tuple(result)

    def _check_graph(self, states: tuple[StateDef, ...], transitions: tuple[TransitionDef, ...], initial: str) -> None:
        if not states or not initial:
            return
        outgoing: dict[str, set[str]] = {s.name: set() for s in states}
        for transition in transitions:
            for source in transition.sources:
                if source in outgoing:
                    outgoing[source].add(transition.dest)
        reached = {initial}
        queue = deque([initial])
        while queue:
            for nxt in outgoing.get(queue.popleft(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    queue.append(nxt)
        for state in states:
            path = ("states", state.name)
            if state.name not in reached:
                self.problem(path, f"state {state.name!r} is unreachable from the initial state {initial!r}")
            if not outgoing[state.name] and not state.final:
                self.problem(path, f"state {state.name!r} is a dead end: no transition leaves it and it is not final")

    def _check_timers(
        self,
        states: tuple[StateDef, ...],
        timers: tuple[TimerDef, ...],
        transitions: tuple[TransitionDef, ...],
        actions: tuple[ActionDef, ...],
    ) -> None:
        by_name = {t.name: t for t in timers}
        names = {t.trigger for t in transitions} | {a.name for a in actions}
        triggers = {t.trigger for t in transitions}
        listed = {name for state in states for name in state.timers}
        for timer in timers:
            for start in timer.start_on:
                if start not in names:
                    self.problem(
                        ("timers", timer.name, "start_on"),
                        f"timer {timer.name!r}: start_on names {start!r}, which is neither a trigger nor an action",
                    )
            if timer.start_on and timer.name in listed:
                self.problem(
                    ("timers", timer.name, "start_on"),
                    f"timer {timer.name!r} starts on a command (start_on), so no state may list it in its timers",
                )
            if timer.start_on:
                for trigger in timer.on_breach.candidates:
                    if trigger not in triggers:
                        self.problem(
                            ("timers", timer.name, "on_breach"),
                            f"timer {timer.name!r}: breach trigger {trigger!r} is not a trigger of the workflow",
                        )
            for stop in timer.stop_on:
                if stop not in names:
                    self.problem(
                        ("timers", timer.name, "stop_on"),
                        f"timer {timer.name!r}: stop_on names {stop!r}, which is neither a trigger nor an action",
                    )
        for state in states:
            for timer_name in state.timers:
                found = by_name.get(timer_name)
                if found is None:
                    self.problem(
                        ("states", state.name, "timers"), f"state {state.name!r}: unknown timer {timer_name!r}"
                    )
                    continue
                for trigger in found.on_breach.candidates:
                    valid = any(t.trigger == trigger and state.name in t.sources for t in transitions)
                    if not valid:
                        self.problem(
                            ("timers", found.name, "on_breach"),
                            f"timer {found.name!r}: breach trigger {trigger!r} is not valid from state {state.name!r}",
                        )

    def _check_fact_clocks(self, timers: tuple[TimerDef, ...], facts: tuple[FactDef, ...]) -> None:
        """A clock starting or due at a fact names a declared instant or date fact."""
        kinds = {f.name: f.type for f in facts}
        for timer in timers:
            for key, name in (("start_from", timer.start_from), ("due_from", timer.due_from)):
                if name is None:
                    continue
                kind = kinds.get(name)
                if kind is None:
                    known = ", ".join(kinds) or "none"
                    self.problem(
                        ("timers", timer.name, key),
                        f"timer {timer.name!r}: {key} names {name!r}, which is not a declared fact (facts: {known})",
                    )
                elif kind not in ("instant", "date"):
                    self.problem(
                        ("timers", timer.name, key),
                        f"timer {timer.name!r}: {key} names fact {name!r}, a {kind}; a clock needs an instant or date",
                    )

    @staticmethod
    def _normalised(data: dict[str, Any]) -> dict[str, Any]:
        """The document as hashed: plain JSON types, sources always lists."""

        def norm(value: Any) -> Any:
            if isinstance(value, dict):
                return {str(k): norm(v) for k, v in value.items()}
            if isinstance(value, list):
                return [norm(v) for v in value]
            return value

        doc: dict[str, Any] = norm(data)
        for transition in doc.get("transitions", []):
            if isinstance(transition.get("source"), str):
                transition["source"] = [transition["source"]]
        return doc
