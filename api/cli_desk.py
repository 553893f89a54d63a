"""`disputes config ...` and `disputes scenario run`: check, reload and start desks; run scenarios.

Kept apart from ``api/cli.py`` (which registers these sub-commands) so the desk commands
change in one file. The global ``--config DIR`` option of ``disputes`` is kept here too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.plural import quantity
from api.settings import Settings, get_settings
from api.terminal import SafeConsole, escape_controls, plain, shown
from desk.loader import Desk, try_load_desk, write_packaged_desk
from intake.classify import ClassificationRules
from intake.priority import PriorityRules
from intake.supervision import SupervisionRules
from scenarios.files import ScenarioFileError, check_scenarios, load_scenarios
from scenarios.runner import run_scenarios
from workflow.definition import Problem

config_app = typer.Typer(help="Desk configuration directories: check, reload, start one.", no_args_is_help=True)
scenario_app = typer.Typer(help="Scenario tests of a desk's rules.", no_args_is_help=True)

# Desk files and the cases of a scenario are printed through shown() / plain() (api/terminal.py).
out = SafeConsole()
err = SafeConsole(stderr=True)

# Set by `disputes --config DIR ...` for this invocation; wins over DISPUTES_CONFIG_DIR.
_config_override: list[Path] = []


def set_config_override(directory: Path | None) -> None:
    _config_override.clear()
    if directory is not None:
        _config_override.append(directory.resolve())


def config_override() -> Path | None:
    return _config_override[0] if _config_override else None


def settings() -> Settings:
    """The settings in force, with ``--config`` applied."""
    try:
        found = get_settings()
    except ValueError as exc:
        err.print(f"[red]invalid settings:[/red] {shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from None
    if _config_override:
        return found.model_copy(update={"config_dir": _config_override[0]})
    return found


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        err.print(f"{shown(problem.file)}:{problem.line}: [red]error[/red]: {shown(problem.message)}", soft_wrap=True)


def desk_or_exit(directory: Path | None, *, code: int = 1) -> Desk:
    """Load the desk at ``directory`` (None: the one configured); print every problem and exit if unsound."""
    target = directory if directory is not None else settings().config_dir
    desk, problems = try_load_desk(target)
    if desk is None:
        print_problems(problems)
        err.print(f"{quantity(len(problems), 'problem')} in the desk {target or '(packaged default)'}", soft_wrap=True)
        raise typer.Exit(code)
    return desk


def _relative(file: str) -> str:
    try:
        return os.path.relpath(file)
    except ValueError:  # another drive
        return file


def _describe(desk: Desk) -> str:
    return str(desk.directory) if desk.directory is not None else "the packaged default desk"


@config_app.command("check")
def config_check(
    directory: Annotated[Path | None, typer.Argument(help="Desk directory (default: the one in force).")] = None,
) -> None:
    """Validate a whole desk: every part on its own (workflows, policies, calendars, settings,
    scenario files), then the cross-references between them. Prints every problem with file and line."""
    desk = desk_or_exit(directory)
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
        err.print(f"{quantity(len(problems), 'problem')} in the scenario files of {_describe(desk)}", soft_wrap=True)
        raise typer.Exit(1)
    table = Table("part", "from", "what", title=f"desk {shown(repr(desk.name))}: ok")
    for name, source in desk.sources.items():
        table.add_row(*(plain(cell) for cell in (name, source if source is not None else "-", _summary(desk, name))))
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
        return quantity(len(value.categories), "category", "categories")
    if isinstance(value, PriorityRules):
        return quantity(len(value.rules), "rule")
    if isinstance(value, SupervisionRules):
        return quantity(len(value.thresholds), "threshold")
    return part


@config_app.command("reload")
def config_reload(
    pid: Annotated[int | None, typer.Option(help="Server process to signal (default: validate only).")] = None,
) -> None:
    """Validate the desk in force, then ask a running server to reload it (SIGHUP). A server
    keeps serving its current desk if the new one has any problem."""
    desk, problems = try_load_desk(settings().config_dir)
    if desk is None:
        print_problems(problems)
        err.print("not reloaded: the running server keeps its current desk", soft_wrap=True)
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


@scenario_app.command("run")
def scenario_run(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or directories (default: the desk's scenarios/).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Desk directory (default: the one in force).")] = None,
) -> None:
    """Run scenario files against a desk on a throw-away database with a manual clock; print a
    pass/fail table with the first difference of each failure. Exits 1 on any failure."""
    desk = desk_or_exit(config)
    targets = list(paths or [])
    if not targets:
        if desk.scenario_dir is None:
            err.print(f"{_describe(desk)} has no scenarios/ directory; name scenario files to run", soft_wrap=True)
            raise typer.Exit(2)
        targets = [desk.scenario_dir]
    try:
        results = run_scenarios(load_scenarios(targets), desk)
    except ScenarioFileError as exc:
        print_problems(exc.problems)
        err.print(f"{quantity(len(exc.problems), 'problem')} in the scenario files; nothing was run", soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table("scenario", "file", "steps", "result", "first difference", title=f"desk {shown(repr(desk.name))}")
    table.columns[1].overflow = "fold"
    for result in results:
        scenario = result.scenario
        steps = f"{result.steps_passed}/{len(scenario.steps)}"
        verdict = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        table.add_row(
            plain(scenario.name),
            plain(f"{_relative(scenario.file)}:{scenario.line}"),
            steps,
            verdict,
            plain(result.difference),
        )
    out.print(table)
    # Each failure once more on a line of its own, whole: file:line first, as editors jump to it.
    for result in results:
        if not result.passed:
            scenario = result.scenario
            out.print(
                escape_controls(
                    f"{_relative(scenario.file)}:{scenario.line}: FAIL {scenario.name}: {result.difference}"
                ),
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
    failed = sum(1 for r in results if not r.passed)
    out.print(
        f"{len(results) - failed} of {quantity(len(results), 'scenario')} passed against {_describe(desk)}",
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(1)
