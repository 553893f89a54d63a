"""A desk: one configuration directory holding everything a dispute desk runs on.

A desk directory (``DISPUTES_CONFIG_DIR`` or ``--config``) is a list of named parts,
:data:`PARTS`, each a relative path with its loader::

    desk.yaml          settings: name, title, description, default_workflow, zone,
                       workflow_rules, retention_years (personal data kept after closing)
    workflows/*.yaml   workflow definitions (several per desk; new cases use the default one)
    policies/          Cedar policies, their schema and settings.json
    calendars.yaml     business calendars the timers name
    notifications.yaml what is sent to whom on which event, reminders, the rules cited (notify/)
    intake/*.yaml      classification rules, priority rules, supervision thresholds
    rulebook.yaml      the provisions and platform rules rulings cite
    triage/            the learned triage: labelled set, frozen evaluation split, shipped model
    scenarios/*.yaml   scenario tests (``disputes scenario run``; never loaded by the server)

Loading validates every part on its own, then the cross-references between parts
(a policy naming a trigger no workflow has, a timer naming a calendar that does not
exist, ...), and reports every problem with file and line. A desk is all-or-nothing:
either every part and every cross-reference is sound, or it is not used.

Why here: a desk composes the pure packages (workflow, policies, sla) and nothing
else, which is what ``cases`` may import; this module touches no database, so the
CLI's checks and the scenario runner (``scenarios/``) build on it, and the
composition root (``api/app.py``) wires a loaded desk into the running service.

The packaged default desk is the same list of parts pointing at the packaged files
(``workflow/definitions``, ``policies/default``, ``sla/calendars.yaml`` and
``desk/default``); ``disputes config init DIR`` writes it out as a directory.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from cedarpy import pst

from desk.choice import WorkflowRule, choose_workflow, parse_rules
from intake.classify import ClassificationRules, default_classification_path, load_classification
from intake.learning import TriageSet, load_triage_set
from intake.priority import default_priority_path, load_priority
from intake.review import default_review_path, load_review
from intake.rulebook import Rulebook, load_rulebook
from intake.supervision import default_supervision_path, load_supervision
from notify.rules import NotificationRules, default_notifications_path, load_notifications
from policies import facts
from policies.cedar import DEFAULT_POLICY_DIR, CedarAuthorizer
from policies.lint import REVIEW_ACTIONS, lint
from policies.loader import LoadedPolicies, try_load
from sla.calendar import Calendar
from sla.config import load_calendars
from workflow.categories import DEFAULT_CATEGORIES, Categories, parse_categories
from workflow.definition import (
    DEFAULT_WORKFLOW,
    PACKAGED_DEFINITIONS,
    InvalidDefinitionError,
    WorkflowDefinition,
    load_definition_file,
)
from workflow.errors import ConfigError, Problem
from workflow.facts import desk_fact_types, desk_related_names
from workflow.model import Actor, CaseSnapshot, Offer
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

ROOT = Path(__file__).resolve().parent.parent
PACKAGED_CALENDARS = ROOT / "sla" / "calendars.yaml"
PACKAGED_DESK_FILES = Path(__file__).resolve().parent / "default"
SCENARIOS = "scenarios"
SETTINGS_FILE = "desk.yaml"
SETTINGS_KEYS = frozenset(
    {"name", "title", "description", "default_workflow", "zone", "workflow_rules", "categories", "retention_years"}
)
_TEXT_SETTINGS = SETTINGS_KEYS - {"workflow_rules", "categories", "retention_years"}
# Years a closed case's personal data is kept before the retention sweep erases it (the
# E-Commerce Law's minimum for transaction records is 3; docs/privacy.md).
DEFAULT_RETENTION_YEARS = 3
MAX_RETENTION_YEARS = 100


def retention_period(years: int) -> timedelta:
    """``years`` as a period the sweep subtracts from now (a year of 365.25 days, so leap days count)."""
    return timedelta(days=round(365.25 * years))


class InvalidDeskError(ConfigError):
    """A desk that cannot be used; ``problems`` lists every problem of every part."""


@dataclass(frozen=True, slots=True)
class DeskManifest:
    """``desk.yaml``: what the desk is called and which workflow new cases use."""

    name: str = "default"
    title: str = ""
    description: str = ""
    default_workflow: str | None = None
    # The zone case facts' local days are counted in (``days_since`` for policies).
    zone: str = "UTC"
    # Which workflow a filing uses, by its facts (desk/choice.py); none: the default.
    workflow_rules: tuple[WorkflowRule, ...] = ()
    # The complaint categories (workflow/categories.py); none declared: the engine's seven.
    categories: Categories = DEFAULT_CATEGORIES
    # Whole years after a case closes that its personal data is kept, unless a legal hold is set.
    retention_years: int = DEFAULT_RETENTION_YEARS
    file: str = ""
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def retention(self) -> timedelta:
        """How long personal data is kept after a case closes (``retention_years``)."""
        return retention_period(self.retention_years)


# A part's loader reads its path and returns the part, or raises an error carrying
# ``problems`` (every loader of the pure packages does: InvalidDefinitionError,
# PolicyLoadError, InvalidCalendarError). A cross-check looks at the loaded desk.
PartLoader = Callable[[Path], Any]
# A part that needs parts loaded before it (the policies need the workflows' case facts).
PartLoaderWith = Callable[[Path, Mapping[str, Any]], Any]
CrossCheck = Callable[["Desk"], list[Problem]]


@dataclass(frozen=True, slots=True)
class DeskPart:
    """One part of a desk directory.

    ``packaged``: where the packaged default desk keeps this part (None: it has none).
    ``inherit``: a desk directory without the part uses the packaged one (so a desk can
    override only its policies, say); otherwise the part is simply absent (None).
    ``required``: a desk directory without the part is an error.
    ``check``: cross-references against the other parts, run once every part loaded.
    """

    name: str
    path: str
    load: PartLoader
    packaged: Path | None = None
    inherit: bool = False
    required: bool = False
    check: CrossCheck | None = None
    load_with: PartLoaderWith | None = None
    # Parts ``load_with`` reads: when one of them failed, this part is not loaded (its problems
    # would only repeat the other's; the policies cannot be checked without the declared facts).
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Desk:
    """A loaded, validated desk. ``parts`` holds every part by name (None when absent)."""

    directory: Path | None
    parts: Mapping[str, Any]
    sources: Mapping[str, Path | None]

    @property
    def manifest(self) -> DeskManifest:
        found = self.parts.get("settings")
        if isinstance(found, DeskManifest):
            return found
        return DeskManifest(name=self.directory.name if self.directory is not None else "default")

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def workflows(self) -> tuple[WorkflowDefinition, ...]:
        workflows: tuple[WorkflowDefinition, ...] = self.parts["workflows"]
        return workflows

    @property
    def policies(self) -> CedarAuthorizer:
        authorizer: CedarAuthorizer = self.parts["policies"]
        return authorizer

    @property
    def calendars(self) -> dict[str, Calendar]:
        calendars: dict[str, Calendar] = self.parts["calendars"]
        return dict(calendars)

    @property
    def notifications(self) -> NotificationRules:
        rules: NotificationRules = self.parts["notifications"]
        return rules

    @property
    def categories(self) -> Categories:
        """The desk's complaint categories (the engine's seven when desk.yaml declares none)."""
        return self.manifest.categories

    @property
    def default_workflow(self) -> str:
        return default_workflow_name(self.manifest, self.workflows)

    def workflow_for(self, facts: Mapping[str, Any]) -> WorkflowDefinition:
        """The workflow a filing with ``facts`` uses: the first matching rule's, else the default."""
        return self.workflow(choose_workflow(self.manifest.workflow_rules, facts))

    def workflow(self, name: str | None = None) -> WorkflowDefinition:
        wanted = name or self.default_workflow
        for definition in self.workflows:
            if definition.name == wanted:
                return definition
        raise KeyError(wanted)

    @property
    def scenario_dir(self) -> Path | None:
        """Where the desk's scenario files are (a directory of ``*.yaml``), if it has any."""
        root = self.directory if self.directory is not None else PACKAGED_DESK_FILES
        found = root / SCENARIOS
        return found if found.is_dir() else None

    @property
    def version(self) -> str:
        """A short identity of what is loaded: workflow versions and the policy version."""
        workflows = ",".join(f"{w.name}@{w.version[:12]}" for w in self.workflows)
        categories = f"; categories@{self.categories.version[:12]}" if self.categories.declared else ""
        return f"{workflows}; policies@{self.policies.version[:12]}{categories}"


def default_workflow_name(manifest: DeskManifest, workflows: Sequence[WorkflowDefinition]) -> str:
    names = [w.name for w in workflows]
    if manifest.default_workflow:
        return manifest.default_workflow
    if len(names) == 1:
        return names[0]
    # Several workflows and none named: consumer_dispute if there is one (check_settings
    # reports a desk that has several, none named and no consumer_dispute).
    return DEFAULT_WORKFLOW


# --- the parts' loaders -------------------------------------------------------------


def load_manifest(path: Path) -> DeskManifest:
    file = str(path)
    try:
        located = load_located(path.read_text(encoding="utf-8"), file)
    except OSError as exc:
        raise InvalidDeskError([Problem(file, 1, f"cannot read file: {exc.strerror}")]) from exc
    except YamlError as exc:
        raise InvalidDeskError([Problem(exc.file, exc.line, exc.message)]) from exc
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise InvalidDeskError([Problem(file, 1, "desk.yaml must be a mapping (name, title, default_workflow)")])
    allowed = ", ".join(sorted(SETTINGS_KEYS))
    problems = [
        Problem(file, located.line((key,)), f"unknown key {key!r} in desk.yaml (allowed: {allowed})")
        for key in data
        if key not in SETTINGS_KEYS
    ]
    values: dict[str, str | None] = {}
    for key in sorted(_TEXT_SETTINGS):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(Problem(file, located.line((key,)), f"{key!r} must be text"))
            value = None
        values[key] = value
    rules = parse_rules(
        data.get("workflow_rules"),
        lambda where, message: problems.append(Problem(file, located.line(where), message)),
        located.line,
    )
    categories = parse_categories(
        data.get("categories"), lambda where, message: problems.append(Problem(file, located.line(where), message))
    )
    zone = values["zone"] or "UTC"
    if zone not in available_timezones():
        problems.append(Problem(file, located.line(("zone",)), f"zone {zone!r} is not an IANA time zone"))
    retention = data.get("retention_years", DEFAULT_RETENTION_YEARS)
    # bool is an int to Python; `retention_years: yes` is a mistake, not one year.
    if isinstance(retention, bool) or not isinstance(retention, int) or not 0 <= retention <= MAX_RETENTION_YEARS:
        problems.append(
            Problem(
                file,
                located.line(("retention_years",)),
                f"retention_years must be a whole number of years from 0 to {MAX_RETENTION_YEARS}, "
                f"got {retention!r} (default {DEFAULT_RETENTION_YEARS})",
            )
        )
    if problems:
        raise InvalidDeskError(problems)
    return DeskManifest(
        categories=categories,
        zone=zone,
        workflow_rules=rules,
        retention_years=retention,
        name=values["name"] or path.parent.name,
        title=values["title"] or "",
        description=values["description"] or "",
        default_workflow=values["default_workflow"],
        file=file,
        lines={key: located.line((key,)) for key in data},
    )


def load_workflows(directory: Path) -> tuple[WorkflowDefinition, ...]:
    """Every ``*.yaml`` / ``*.yml`` file of ``directory``, in name order; names must be unique."""
    if not directory.is_dir():
        raise InvalidDeskError([Problem(str(directory), 1, "workflows must be a directory of *.yaml files")])
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise InvalidDeskError([Problem(str(directory), 1, "no workflow files (*.yaml) in the workflows directory")])
    problems: list[Problem] = []
    definitions: list[WorkflowDefinition] = []
    for path in files:
        try:
            definitions.append(load_definition_file(path))
        except InvalidDefinitionError as exc:
            problems.extend(exc.problems)
    seen: dict[str, WorkflowDefinition] = {}
    for definition in definitions:
        first = seen.setdefault(definition.name, definition)
        if first is not definition:
            file, line = _workflow_line(definition, ("name",))
            problems.append(Problem(file, line, f"workflow name {definition.name!r} is also used by {first.source}"))
    if problems:
        raise InvalidDeskError(problems)
    return tuple(definitions)


def load_policies(directory: Path) -> CedarAuthorizer:
    return load_policies_with(directory, {})


def load_policies_with(directory: Path, parts: Mapping[str, Any]) -> CedarAuthorizer:
    """The policies, their schema's ``Case`` given the case facts the desk's workflows declare
    (a clash between two workflows is reported by :func:`check_facts`)."""
    workflows = parts.get("workflows") or ()
    settings = parts.get("settings")
    zone = settings.zone if isinstance(settings, DeskManifest) else "UTC"
    types, _clashes = desk_fact_types(workflows)
    loaded, problems = try_load(directory, fact_types=types, fact_zone=zone, related=desk_related_names(workflows))
    if loaded is None:
        raise InvalidDeskError(problems)
    return CedarAuthorizer(loaded)


def desk_categories(directory: Path | None) -> Categories:
    """The categories ``directory``'s desk.yaml declares (the defaults when it has none or cannot
    be read: the part's own check reports that), for checking one intake file on its own."""
    manifest = directory / SETTINGS_FILE if directory is not None else None
    if manifest is None or not manifest.is_file():
        return DEFAULT_CATEGORIES
    try:
        return load_manifest(manifest).categories
    except InvalidDeskError:
        return DEFAULT_CATEGORIES


def _categories_for(source: Path, parts: Mapping[str, Any], packaged: Path) -> Categories | None:
    """The categories a part's file may name: the desk's for a file of its own; the engine's
    seven for the packaged file a desk inherits (it was written for them: its rules for
    categories the desk lacks never apply). None: the desk declares its own categories and
    inherits the packaged file."""
    settings = parts.get("settings")
    categories = settings.categories if isinstance(settings, DeskManifest) else DEFAULT_CATEGORIES
    if source.resolve() != packaged.resolve():
        return categories
    return None if categories.declared else DEFAULT_CATEGORIES


# A desk that declares its own categories and brings no classification of its own classifies
# nothing: no keyword rule, so filing suggests no category and the filer must choose one (the
# packaged rules would suggest categories the desk does not have).
NO_CLASSIFICATION = ClassificationRules(categories=(), default_category="", source="<no classification rules>")


def load_classification_with(path: Path, parts: Mapping[str, Any]) -> ClassificationRules:
    categories = _categories_for(path, parts, default_classification_path())
    return NO_CLASSIFICATION if categories is None else load_classification(path, categories)


def load_triage_with(path: Path, parts: Mapping[str, Any]) -> TriageSet | None:
    """The learned triage; absent when the desk declares its own categories and inherits the
    packaged set (its labels and model are the engine's seven)."""
    categories = _categories_for(path, parts, PACKAGED_DESK_FILES / "triage")
    return None if categories is None else load_triage_set(path, categories.ids)


def _inherits_defaults(load: Callable[[Path, Categories], Any], packaged: Path) -> PartLoaderWith:
    """A loader whose file names categories: the desk's own, or the packaged one (validated against
    the engine's seven, whose rules for categories the desk lacks never apply)."""

    def load_with(path: Path, parts: Mapping[str, Any]) -> Any:
        return load(path, _categories_for(path, parts, packaged) or DEFAULT_CATEGORIES)

    return load_with


# --- cross-references ---------------------------------------------------------------


def check_settings(desk: Desk) -> list[Problem]:
    if desk.parts.get("workflows") is None:
        return []
    manifest = desk.manifest
    names = [w.name for w in desk.workflows]
    wanted = default_workflow_name(manifest, desk.workflows)
    file = manifest.file or str(desk.directory or "") + "/" + SETTINGS_FILE
    problems = _check_rules(desk, file)
    if wanted in names:
        return problems
    line = manifest.lines.get("default_workflow", 1)
    if manifest.default_workflow:
        message = f"default_workflow {wanted!r} is not a workflow of this desk (workflows: {', '.join(names)})"
    else:
        message = f"name the workflow new cases use with default_workflow (workflows: {', '.join(names)})"
    return [*problems, Problem(file, line, message)]


def _check_rules(desk: Desk, file: str) -> list[Problem]:
    """Each workflow rule names a workflow of the desk, and facts that workflow declares as text
    (string or enum), compared with values an enum has."""
    problems = []
    by_name = {w.name: w for w in desk.workflows}
    for rule in desk.manifest.workflow_rules:
        workflow = by_name.get(rule.workflow)
        if workflow is None:
            names = ", ".join(by_name)
            problems.append(
                Problem(file, rule.line, f"workflow rule names {rule.workflow!r}, not a workflow of the desk ({names})")
            )
            continue
        for name, values in rule.when:
            spec = workflow.fact(name)
            if spec is None or spec.type not in ("string", "enum"):
                what = "does not declare" if spec is None else f"declares as a {spec.type}, not text,"
                problems.append(
                    Problem(file, rule.line, f"workflow rule: workflow {rule.workflow!r} {what} fact {name!r}")
                )
                continue
            unknown = [v for v in values if spec.type == "enum" and v not in spec.values]
            if unknown:
                problems.append(
                    Problem(
                        file,
                        rule.line,
                        f"workflow rule: {', '.join(map(repr, unknown))} is not a value of fact {name!r} "
                        f"({', '.join(spec.values)})",
                    )
                )
    return problems


def check_policies(desk: Desk) -> list[Problem]:
    """The lint of ``policies/lint.py`` (every trigger and action reachable by a permit, every
    permit naming a known action), then what it leaves out: forbids naming actions no workflow
    has, and states and timers a policy names that no workflow of the desk has."""
    if desk.parts.get("policies") is None or desk.parts.get("workflows") is None:
        return []
    loaded = desk.policies.loaded
    problems = lint(loaded, desk.workflows)
    names = {n for w in desk.workflows for n in (*w.trigger_names, *w.action_names)}
    info = loaded.schema_info
    case_actions = info.applies_to("Case")
    states = {s.name for w in desk.workflows for s in w.states}
    timers = {t.name for w in desk.workflows for t in w.timers}
    workflows = ", ".join(w.name for w in desk.workflows)
    problems.extend(_undelivered_facts(loaded))
    trees = loaded.policy_set.to_pst().static_policies
    for policy in loaded.policies:
        if policy.effect == "forbid" and policy.actions is not None:
            for action in sorted(policy.actions):
                if action in case_actions and action not in names and action not in _ALWAYS_THERE:
                    if info.descendants(action) == {action}:
                        problems.append(
                            Problem(
                                policy.file,
                                policy.line,
                                f"forbid {policy.id!r} names action {action!r}, which no workflow "
                                f"of the desk defines (workflows: {workflows}): it never applies",
                            )
                        )
        tree = trees.get(policy.cedar_id)
        if tree is None:
            continue
        for kind, value in sorted(set(_named_literals(tree.clauses))):
            if kind == "category":
                if value not in desk.categories:
                    problems.append(
                        Problem(
                            policy.file,
                            policy.line,
                            f"policy {policy.id!r} names category {value!r}, which the desk does not have "
                            f"(categories: {desk.categories.listing()})",
                        )
                    )
                continue
            known = states if kind == "state" else timers
            if value not in known:
                problems.append(
                    Problem(
                        policy.file,
                        policy.line,
                        f"policy {policy.id!r} names {kind} {value!r}, which no workflow of the desk "
                        f"has (workflows: {workflows})",
                    )
                )
    return problems


def check_notifications(desk: Desk) -> list[Problem]:
    """Every clock ``acting`` names in the desk's own ``notifications.yaml`` is a clock of some
    workflow of the desk (the inherited packaged file names the default workflow's clocks; a
    desk with other clocks and no file of its own simply gets no reminders for them)."""
    if desk.parts.get("notifications") is None or desk.parts.get("workflows") is None:
        return []
    if desk.sources.get("notifications") == default_notifications_path():
        return []
    rules = desk.notifications
    timers = {t.name for w in desk.workflows for t in w.timers}
    return [
        Problem(rules.file, 1, f"notifications: acting names clock {name!r}, which no workflow of the desk has")
        for name in sorted(rules.acting)
        if name not in timers
    ]


def check_calendars(desk: Desk) -> list[Problem]:
    """Every calendar a timer names exists (a wall-clock goal never uses one, but a named
    calendar that does not exist is still a mistake, so it is reported too)."""
    if desk.parts.get("calendars") is None or desk.parts.get("workflows") is None:
        return []
    calendars = desk.calendars
    problems = []
    for workflow in desk.workflows:
        raw_timers = workflow.document.get("timers") or {}
        for timer in workflow.timers:
            named = isinstance(raw_timers.get(timer.name), dict) and "calendar" in raw_timers[timer.name]
            if timer.calendar in calendars or not (timer.goal.business or timer.goal.calendar_days or named):
                continue
            file, line = _workflow_line(
                workflow, ("timers", timer.name, "calendar") if named else ("timers", timer.name)
            )
            problems.append(
                Problem(
                    file,
                    line,
                    f"timer {timer.name!r} uses calendar {timer.calendar!r}, which "
                    f"calendars.yaml does not define (known: {', '.join(sorted(calendars))})",
                )
            )
    return problems


def check_facts(desk: Desk) -> list[Problem]:
    """One type per fact name across the desk's workflows: policies see one ``Case`` schema."""
    if desk.parts.get("workflows") is None:
        return []
    problems = []
    seen: dict[str, tuple[str, WorkflowDefinition]] = {}
    for workflow in desk.workflows:
        for spec in workflow.facts:
            first = seen.setdefault(spec.name, (spec.type, workflow))
            if first[0] != spec.type:
                file, line = _workflow_line(workflow, ("facts", spec.name, "type"))
                problems.append(
                    Problem(
                        file,
                        line,
                        f"fact {spec.name!r} is a {spec.type} here but a {first[0]} in workflow "
                        f"{first[1].name!r} ({first[1].source}): policies see one type per fact",
                    )
                )
    return problems


def check_rulebook(desk: Desk) -> list[Problem]:
    """Each entry concerns known categories and triggers some workflow has; every citation a
    scenario's step makes (``data.citations``) names an entry that exists."""
    rulebook: Rulebook | None = desk.parts.get("rulebook")
    if rulebook is None:
        return []
    problems: list[Problem] = []
    categories = desk.categories
    triggers = {t for w in desk.workflows for t in w.trigger_names} if desk.parts.get("workflows") else set()
    for entry in rulebook.entries:
        where = (rulebook.file, entry.line)
        for category in entry.categories:
            if category not in categories:
                problems.append(
                    Problem(
                        *where,
                        f"entry {entry.id!r}: unknown category {category!r} "
                        f"(the desk's categories: {categories.listing()})",
                    )
                )
        for trigger in entry.triggers:
            if triggers and trigger not in triggers:
                problems.append(Problem(*where, f"entry {entry.id!r}: no workflow has trigger {trigger!r}"))
    scenarios = desk.scenario_dir
    for path in sorted(scenarios.glob("*.yaml")) if scenarios is not None else ():
        try:
            located = load_located(path.read_text(encoding="utf-8"), str(path))
        except (OSError, YamlError):
            continue  # the scenario runner reports unreadable files itself
        for step, cited in _citations_in(located.data, ()):
            for entry_id in rulebook.missing(cited):
                problems.append(
                    Problem(str(path), located.line(step), f"cites {entry_id!r}, which the rulebook does not have")
                )
    return problems


def _citations_in(node: object, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], list[str]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "citations" and isinstance(value, list):
                yield (*path, key), [str(v) for v in value]
            else:
                yield from _citations_in(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _citations_in(value, (*path, index))


# Actions every policy set has whatever the workflows (reads, filing, desk administration).
_ALWAYS_THERE = frozenset({"view", "view_history", "export", "view_internal", "file", *REVIEW_ACTIONS})


# --- the list of parts: adding a part is one line ------------------------------------

PARTS: tuple[DeskPart, ...] = (
    DeskPart(
        "settings", SETTINGS_FILE, load_manifest, packaged=PACKAGED_DESK_FILES / SETTINGS_FILE, check=check_settings
    ),
    DeskPart("workflows", "workflows", load_workflows, packaged=PACKAGED_DEFINITIONS, inherit=True, check=check_facts),
    DeskPart(
        "policies",
        "policies",
        load_policies,
        packaged=DEFAULT_POLICY_DIR,
        inherit=True,
        check=check_policies,
        load_with=load_policies_with,
        needs=("workflows",),
    ),
    DeskPart(
        "calendars", "calendars.yaml", load_calendars, packaged=PACKAGED_CALENDARS, inherit=True, check=check_calendars
    ),
    # Intake (cases/triage.py): how complaints are classified and prioritised, and when
    # merchants are flagged. A desk overrides any of them with its own intake/*.yaml.
    # Each part whose rules name categories is loaded after the settings, with the desk's.
    DeskPart(
        "classification",
        "intake/classification.yaml",
        load_classification,
        packaged=default_classification_path(),
        inherit=True,
        load_with=load_classification_with,
        needs=("settings",),
    ),
    DeskPart(
        "priority",
        "intake/priority.yaml",
        load_priority,
        packaged=default_priority_path(),
        inherit=True,
        load_with=_inherits_defaults(load_priority, default_priority_path()),
        needs=("settings",),
    ),
    DeskPart(
        "supervision",
        "intake/supervision.yaml",
        load_supervision,
        packaged=default_supervision_path(),
        inherit=True,
        load_with=_inherits_defaults(load_supervision, default_supervision_path()),
        needs=("settings",),
    ),
    # Notifications (outbox/): which notices go to whom, reminders before deadlines, the rules an
    # acknowledgement cites per category.
    DeskPart(
        "notifications",
        "notifications.yaml",
        load_notifications,
        packaged=default_notifications_path(),
        inherit=True,
        check=check_notifications,
        load_with=_inherits_defaults(load_notifications, default_notifications_path()),
        needs=("settings",),
    ),
    # Third-party review: sampling, redaction and the rubric (intake/review.py, reports/review.py).
    DeskPart("review", "intake/review.yaml", load_review, packaged=default_review_path(), inherit=True),
    # The learned triage (intake/learning.py): labelled set, frozen evaluation split, shipped model.
    DeskPart(
        "triage",
        "triage",
        load_triage_set,
        packaged=PACKAGED_DESK_FILES / "triage",
        inherit=True,
        load_with=load_triage_with,
        needs=("settings",),
    ),
    # The rules and provisions the desk's rulings cite (intake/rulebook.py). Not inherited: a
    # desk's law is its own; without one, citations are not checked.
    DeskPart(
        "rulebook",
        "rulebook.yaml",
        load_rulebook,
        packaged=PACKAGED_DESK_FILES / "rulebook.yaml",
        check=check_rulebook,
    ),
)


# --- loading ------------------------------------------------------------------------


def try_load_desk(directory: str | Path | None = None) -> tuple[Desk | None, list[Problem]]:
    """Load ``directory`` (None: the packaged default desk): the desk, or None and every problem."""
    root = Path(directory) if directory is not None else None
    if root is not None and not root.is_dir():
        return None, [Problem(str(root), 1, "desk directory does not exist or is not a directory")]
    problems: list[Problem] = []
    parts: dict[str, Any] = {}
    sources: dict[str, Path | None] = {}
    failed: set[str] = set()
    for part in PARTS:
        source = _source(root, part)
        sources[part.name] = source
        if source is None:
            if part.required:
                problems.append(
                    Problem(
                        str(root / part.path) if root else part.path, 1, f"the desk needs {part.path} ({part.name})"
                    )
                )
            parts[part.name] = None
            continue
        if any(name in failed for name in part.needs):
            parts[part.name] = None
            continue
        try:
            parts[part.name] = part.load_with(source, parts) if part.load_with else part.load(source)
        except (ValueError, OSError) as exc:
            found = getattr(exc, "problems", None)
            problems.extend(found if found else [Problem(str(source), 1, str(exc))])
            failed.add(part.name)
    if problems:
        return None, problems
    desk = Desk(directory=root, parts=parts, sources=sources)
    for part in PARTS:
        if part.check is not None:
            problems.extend(part.check(desk))
    return (None, problems) if problems else (desk, [])


def load_desk(directory: str | Path | None = None) -> Desk:
    """Load and validate a desk; raise :class:`InvalidDeskError` listing every problem."""
    desk, problems = try_load_desk(directory)
    if desk is None:
        raise InvalidDeskError(problems)
    return desk


def part_path(directory: Path | None, name: str) -> Path | None:
    """Where part ``name`` of the desk at ``directory`` comes from (None: absent)."""
    return _source(directory, next(p for p in PARTS if p.name == name))


def _source(root: Path | None, part: DeskPart) -> Path | None:
    if root is None:
        return part.packaged if part.packaged is not None and part.packaged.exists() else None
    own = root / part.path
    if own.exists():
        return own
    return part.packaged if part.inherit else None


def write_packaged_desk(target: Path) -> list[Path]:
    """Write the packaged default desk out as a desk directory (``disputes config init``)."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in PARTS:
        if part.packaged is None:
            continue
        destination = target / part.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        if part.packaged.is_dir():
            shutil.copytree(part.packaged, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(part.packaged, destination)
        written.append(destination)
    scenarios = PACKAGED_DESK_FILES / SCENARIOS
    if scenarios.is_dir():
        shutil.copytree(scenarios, target / SCENARIOS)
        written.append(target / SCENARIOS)
    return written


# --- helpers ------------------------------------------------------------------------

_ENTITY = re.compile(r"^entity (User|Case)(?: in \[[^\]]*\])? = \{(.*?)\n\}", re.MULTILINE | re.DOTALL)
_ATTRIBUTE = re.compile(r'^\s*"?([A-Za-z_][A-Za-z0-9_]*)"?\??:', re.MULTILINE)


def _undelivered_facts(loaded: LoadedPolicies) -> list[Problem]:
    """Attributes a desk's schema declares on ``User`` or ``Case`` that the engine never
    produces (``policies/facts.py``): a policy reading one would fail to evaluate."""
    produced = {
        "User": set(facts.user_entity(_FULL_ACTOR)["attrs"]),
        "Case": set(facts.case_entity(_full_case(), "desk")["attrs"]),
    }
    if loaded.fact_types or loaded.related_names:
        produced["Case"] |= {"facts", "days_since", "related"}  # the declared case facts (policies/facts.py)
    text = Path(loaded.schema_file).read_text(encoding="utf-8")
    problems = []
    for entity, body in _ENTITY.findall(str(loaded.schema)):
        for name in _ATTRIBUTE.findall(body):
            if name not in produced[entity]:
                line = next(
                    (
                        i + 1
                        for i, row in enumerate(text.split("\n"))
                        if re.search(rf"\b{name}\??\s*:", row.split("//", 1)[0])
                    ),
                    1,
                )
                problems.append(
                    Problem(
                        loaded.schema_file,
                        line,
                        f"entity {entity} declares {name!r}, which the engine does not provide "
                        f"(policies/facts.py): a policy reading it would never evaluate",
                    )
                )
    return problems


_FULL_ACTOR = Actor("u", "merchant", merchant_id="m")


def _full_case() -> CaseSnapshot:
    """A case with every optional fact present, to learn every attribute the engine produces."""
    at = "2026-01-01T00:00:00.000000Z"
    offer = Offer("o", 1, "CNY", "", "merchant", "u", status="accepted", decided_by="consumer")
    return CaseSnapshot(
        id="c",
        workflow_name="w",
        workflow_version="v",
        state="s",
        version=1,
        consumer_id="c",
        merchant_id="m",
        category="other",
        subject="",
        description="",
        order_ref="",
        claim_amount=1,
        currency="CNY",
        desired_outcome="refund",
        created_at=at,
        updated_at=at,
        mediator_id="med",
        accepted_offer_id="o",
        offers=(offer,),
        outcome="x",
        awarded_amount=1,
        closed_at=at,
    )


def _workflow_line(workflow: WorkflowDefinition, path: tuple[str | int, ...]) -> tuple[str, int]:
    file = workflow.source or f"<workflow {workflow.name}>"
    located = _located(workflow.source)
    return file, located.line(path) if located is not None else 1


def _located(source: str) -> LocatedYaml | None:
    path = Path(source) if source else None
    if path is None or not path.is_file():
        return None
    try:
        return load_located(path.read_text(encoding="utf-8"), source)
    except (OSError, UnicodeDecodeError, YamlError):
        return None


def _named_literals(node: object) -> Iterator[tuple[str, str]]:
    """("state", name), ("category", name) and ("timer", name) for every literal a policy compares
    ``resource.state`` or ``resource.category`` with or looks up in ``resource.timers.<status>``."""
    stack: list[object] = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, pst.BinaryOp):
            yield from _compared(value)
            stack.extend((value.left, value.right))
        elif isinstance(value, tuple):
            stack.extend(value)
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
            stack.extend(getattr(value, name) for name in value.__dataclass_fields__)


def _compared(op: pst.BinaryOp) -> Iterator[tuple[str, str]]:
    def strings(expr: object) -> list[str]:
        if isinstance(expr, pst.StringLit):
            return [expr.value]
        if isinstance(expr, pst.Set):
            return [e.value for e in expr.elements if isinstance(e, pst.StringLit)]
        return []

    def attribute(expr: object) -> str | None:
        """ "state" or "category" for ``resource.state`` / ``resource.category``."""
        if (
            isinstance(expr, pst.GetAttr)
            and expr.attr in ("state", "category")
            and isinstance(expr.base, pst.Var)
            and expr.base.name == "resource"
        ):
            return expr.attr
        return None

    def is_timer_set(expr: object) -> bool:
        return (
            isinstance(expr, pst.GetAttr)
            and isinstance(expr.base, pst.GetAttr)
            and expr.base.attr == "timers"
            and isinstance(expr.base.base, pst.Var)
            and expr.base.base.name == "resource"
        )

    if op.op in ("eq", "neq"):
        for side, other in ((op.left, op.right), (op.right, op.left)):
            if (kind := attribute(side)) is not None:
                yield from ((kind, s) for s in strings(other))
    elif op.op in ("contains", "containsAll", "containsAny"):
        if is_timer_set(op.left):
            yield from (("timer", s) for s in strings(op.right))
        if (kind := attribute(op.right)) is not None:
            yield from ((kind, s) for s in strings(op.left))
