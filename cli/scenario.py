"""`disputes scenario run`: a desk's scenario tests, each on a throw-away database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import desk_or_exit, err, out, print_problems
from cli.desk import describe, relative
from cli.plural import quantity
from cli.terminal import escape_controls, plain, shown
from scenarios.files import ScenarioFileError, load_scenarios
from scenarios.runner import run_scenarios

scenario_app = typer.Typer(help="Scenario tests of a desk's rules.", no_args_is_help=True)


@scenario_app.command("run")
def scenario_run(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or directories (default: the desk's scenarios/).")
    ] = None,
    desk_dir: Annotated[Path | None, typer.Option("--desk", help="Desk directory (default: the one in force).")] = None,
) -> None:
    """Run scenario files against a desk on a throw-away database with a manual clock; print a
    pass/fail table with the first difference of each failure. Exits 1 on any failure."""
    desk = desk_or_exit(ctx, desk_dir)
    targets = list(paths or [])
    if not targets:
        if desk.scenario_dir is None:
            err.print(f"{describe(desk)} has no scenarios/ directory; name scenario files to run", soft_wrap=True)
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
            plain(f"{relative(scenario.file)}:{scenario.line}"),
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
                    f"{relative(scenario.file)}:{scenario.line}: FAIL {scenario.name}: {result.difference}"
                ),
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
    failed = sum(1 for r in results if not r.passed)
    out.print(
        f"{len(results) - failed} of {quantity(len(results), 'scenario')} passed against {describe(desk)}",
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(1)
