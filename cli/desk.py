"""`disputes config ...`, `workflow check`, `policies check|reload` and `intake check|classify`:
a desk's files checked, reloaded, started from the packaged one, and tried out."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cases.triage import IntakePaths
from cli.common import desk_or_exit, err, out, print_problems, settings
from cli.plural import quantity
from cli.terminal import plain, shown
from desk.loader import Desk, desk_categories, load_workflows, part_path, try_load_desk, write_packaged_desk
from intake.classify import ClassificationRules, Classifier, load_classification
from intake.classify import summary as classification_summary
from intake.priority import PriorityRules, load_priority
from intake.review import load_review
from intake.supervision import SupervisionRules, load_supervision
from policies.cedar import DEFAULT_POLICY_DIR, load_policy_dir
from policies.lint import check_policies
from runtime.settings import Settings
from scenarios.files import ScenarioFileError, check_scenarios, load_scenarios
from workflow.categories import DEFAULT_CATEGORIES
from workflow.definition import PACKAGED_DEFINITIONS, WorkflowDefinition, load_definition_file
from workflow.errors import ConfigError, Problem

config_app = typer.Typer(help="Desk configuration directories: check, reload, start one.", no_args_is_help=True)
workflow_app = typer.Typer(help="Workflow definition files.", no_args_is_help=True)
policies_app = typer.Typer(help="Cedar policy sets.", no_args_is_help=True)
intake_app = typer.Typer(help="Classification, priority and supervision rule files.", no_args_is_help=True)


def _relative(file: str) -> str:
    try:
        return os.path.relpath(file)
    except ValueError:  # another drive
        return file


def _describe(desk: Desk) -> str:
    return str(desk.directory) if desk.directory is not None else "the packaged default desk"


@config_app.command("check")
def config_check(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(help="Desk directory (default: the one in force).")] = None,
) -> None:
    """Validate a whole desk: every part on its own (workflows, policies, calendars, settings,
    scenario files), then the cross-references between them. Prints every problem with file and line."""
    desk = desk_or_exit(ctx, directory)
    problems: list[Problem] = []
    scenario_count = 0
    if desk.scenario_dir is not None:
        try:
            scenarios = load_scenarios([desk.scenario_dir])
            scenario_count = len(scenarios)
            problems = check_scenarios(scenarios, desk)
        except ScenarioFileError as exc:
            problems = exc.problems
    if problems:
        print_problems(problems)
        if len(problems) > 1:
            err.print(
                f"{quantity(len(problems), 'problem')} in the scenario files of {_describe(desk)}", soft_wrap=True
            )
        raise typer.Exit(1)
    table = Table("part", "from", "what", title=f"desk {shown(repr(desk.name))}: ok")
    for name, source in desk.sources.items():
        table.add_row(*(plain(cell) for cell in (name, source if source is not None else "-", _summary(desk, name))))
    categories = desk.categories
    declared = "declared in desk.yaml" if categories.declared else "the engine's default"
    table.add_row("categories", "-", plain(f"{quantity(len(categories), 'category', 'categories')} ({declared})"))
    checked = f"{quantity(scenario_count, 'scenario')} (checked, not run)"
    table.add_row(*(plain(cell) for cell in ("scenarios", desk.scenario_dir or "-", checked)))
    out.print(table)
    out.print(
        f"{shown(_describe(desk))}: ok; new cases use workflow {shown(repr(desk.default_workflow))}", soft_wrap=True
    )


def _summary(desk: Desk, part: str) -> str:
    value = desk.parts.get(part)
    if value is None:
        return "none"
    if part == "workflows":
        return ", ".join(
            f"{w.name} ({quantity(len(w.states), 'state')}, {quantity(len(w.trigger_names), 'trigger')}, "
            f"version {w.version[:12]})"
            for w in desk.workflows
        )
    if part == "policies":
        return f"{quantity(len(desk.policies.policies), 'policy', 'policies')}, version {desk.policies.version[:12]}"
    if part == "calendars":
        return ", ".join(sorted(desk.calendars))
    if part == "settings":
        manifest = desk.manifest
        return f"{manifest.name}: {manifest.title}" if manifest.title else manifest.name
    if isinstance(value, ClassificationRules):
        if not value.categories:
            return "none: the desk declares its own categories; filing suggests none"
        return quantity(len(value.categories), "category", "categories")
    if isinstance(value, PriorityRules):
        return quantity(len(value.rules), "rule")
    if isinstance(value, SupervisionRules):
        return quantity(len(value.thresholds), "threshold")
    return part


@config_app.command("reload")
def config_reload(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option(help="Server process to signal (default: validate only).")] = None,
) -> None:
    """Validate the desk in force, then ask a running server to reload it (SIGHUP). A server
    keeps serving its current desk if the new one has any problem."""
    desk, problems = try_load_desk(settings(ctx).config_dir)
    if desk is None:
        # The running server keeps its current desk: every problem says so on its own line.
        print_problems(problems, prefix="not reloaded: ")
        raise typer.Exit(1)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        out.print(f"{_describe(desk)}: valid ({desk.version}); sent SIGHUP to {pid}", soft_wrap=True)
    else:
        out.print(f"{_describe(desk)}: valid ({desk.version}); pass --pid to signal a running server", soft_wrap=True)


@config_app.command("init")
def config_init(directory: Annotated[Path, typer.Argument(help="New desk directory (must be empty).")]) -> None:
    """Write the packaged default desk out as a directory to start a desk of your own from."""
    try:
        written = write_packaged_desk(directory)
    except FileExistsError as exc:
        err.print(f"[red]{shown(exc)}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    for path in written:
        out.print(f"wrote {path}", soft_wrap=True)
    out.print(f"check it with: disputes config check {directory}", soft_wrap=True)


def describe(desk: Desk) -> str:
    """How messages name a desk: its directory, or the packaged default."""
    return _describe(desk)


def relative(file: str) -> str:
    """A file as messages name it: relative to the working directory where it can be."""
    return _relative(file)


# --- workflows ----------------------------------------------------------------------------------


@workflow_app.command("check")
def workflow_check(files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.")]) -> None:
    """Validate workflow files; print every problem with its file and line."""
    failed = False
    for path in files:
        try:
            definition = load_definition_file(path)
        except ConfigError as exc:
            failed = True
            print_problems(exc.problems)
            continue
        out.print(
            f"{path}: ok  ({definition.name}, {quantity(len(definition.states), 'state')}, "
            f"{quantity(len(definition.trigger_names), 'trigger')}, version {definition.version[:12]})"
        )
    if failed:
        raise typer.Exit(1)


# --- policies -----------------------------------------------------------------------------------


def policy_dir(found: Settings) -> Path:
    """The policy directory of the configured desk (the packaged one if the desk has none)."""
    return part_path(found.config_dir, "policies") or DEFAULT_POLICY_DIR


def _desk_workflows(found: Settings) -> tuple[WorkflowDefinition, ...]:
    """The workflows of the configured desk (its workflows/, or the packaged ones)."""
    return load_workflows(part_path(found.config_dir, "workflows") or PACKAGED_DEFINITIONS)


@policies_app.command("check")
def policies_check(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(help="Policy directory (default: the one in force).")] = None,
    workflows: Annotated[list[Path] | None, typer.Option("--workflow", help="Workflow files to lint against.")] = None,
) -> None:
    """Validate syntax and schema, and lint that every workflow trigger and action is reachable
    by a permit and that no permit names an action the workflows lack."""
    found = settings(ctx)
    target = directory or policy_dir(found)
    try:
        definitions = [load_definition_file(w) for w in workflows] if workflows else list(_desk_workflows(found))
    except ConfigError as exc:
        print_problems(exc.problems)
        raise typer.Exit(1) from None
    problems = check_policies(target, definitions)
    if problems:
        print_problems(problems)
        if len(problems) > 1:
            err.print(f"{quantity(len(problems), 'problem')} in {target}")
        raise typer.Exit(1)
    authorizer = load_policy_dir(target)
    out.print(
        f"{target}: ok  ({quantity(len(authorizer.policies), 'policy', 'policies')}, "
        f"version {authorizer.version[:12]}, "
        f"linted against {', '.join(d.name for d in definitions)})"
    )


@policies_app.command("reload")
def policies_reload(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option(help="Server process to signal (default: validate only).")] = None,
) -> None:
    """Validate the policy directory in force, then ask a running server to reload it (SIGHUP).
    A server keeps its previous set if the new one fails to load."""
    found = settings(ctx)
    target = policy_dir(found)
    try:
        problems = check_policies(target, _desk_workflows(found))
    except ConfigError as exc:
        problems = exc.problems
    if problems:
        # The running server keeps its current policies: every problem says so on its own line.
        print_problems(problems, prefix="not reloaded: ")
        raise typer.Exit(1)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        out.print(f"{target}: valid; sent SIGHUP to {pid}")
    else:
        out.print(f"{target}: valid (pass --pid to signal a running server, or restart it)")


# --- intake rule files --------------------------------------------------------------------------


@intake_app.command("check")
def intake_check(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Desk directory with intake/*.yaml (default: the configured one, else the packaged rules)."
        ),
    ] = None,
) -> None:
    """Validate the classification, priority, supervision and review files; print every problem with file:line."""
    root = directory or settings(ctx).config_dir
    paths = IntakePaths.for_directory(root)
    # A desk's own files name its categories; the packaged ones the engine's seven.
    declared = desk_categories(root)
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}
    for name, loader, path in (
        ("classification", load_classification, paths.classification),
        ("priority", load_priority, paths.priority),
        ("supervision", load_supervision, paths.supervision),
        ("review", lambda path, categories: load_review(path), paths.review),
    ):
        own = getattr(IntakePaths(), name) != path
        try:
            loaded[name] = loader(path, declared if own else DEFAULT_CATEGORIES)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        print_problems(problems)
        raise typer.Exit(1)
    classification = loaded["classification"]
    terms = sum(classification_summary(classification).values())
    out.print(
        f"{paths.classification}: ok ({quantity(len(classification.categories), 'category', 'categories')}, "
        f"{quantity(terms, 'term or pattern', 'terms and patterns')})"
    )
    out.print(f"{paths.priority}: ok ({quantity(len(loaded['priority'].rules), 'rule')})")
    out.print(f"{paths.supervision}: ok ({quantity(len(loaded['supervision'].thresholds), 'threshold')})")
    review = loaded["review"]
    out.print(
        f"{paths.review}: ok ({quantity(len(review.reviewers), 'reviewer')}, "
        f"{quantity(len(review.redaction.patterns), 'redaction pattern')}, "
        f"{quantity(len(review.rubric.items), 'rubric item')})"
    )


@intake_app.command("classify")
def intake_classify(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="The complaint's subject.")],
    description: Annotated[str, typer.Option(help="The complaint's description.")] = "",
    rules: Annotated[Path | None, typer.Option(help="A classification file (default: the desk's).")] = None,
) -> None:
    """Classify a complaint as filing would, and show the words and patterns that decided it."""
    path = rules or IntakePaths.for_directory(settings(ctx).config_dir).classification
    try:
        # A desk's own rules name its categories; the packaged ones the engine's seven.
        own = path != IntakePaths().classification
        categories = desk_categories(settings(ctx).config_dir) if own else DEFAULT_CATEGORIES
        classifier = Classifier(load_classification(path, categories))
    except ConfigError as exc:
        print_problems(exc.problems)
        raise typer.Exit(1) from None
    result = classifier.classify(subject, description)
    scores = ", ".join(f"{name} {points}" for name, points in result.scores) or "-"
    out.print(
        f"category [bold]{shown(result.category)}[/bold]  score {result.score}  language {result.language}  "
        f"scores {shown(scores)}"
    )
    table = Table("rule", "kind", "term", "matched", "field", "points")
    for match in result.evidence:
        cells = (match.rule, match.kind, match.term, match.matched, match.field, match.points)
        table.add_row(*(plain(cell) for cell in cells))
    out.print(table)
    if result.negated:
        out.print("negated: " + ", ".join(f"{shown(m.term)} ({shown(m.field)})" for m in result.negated))
