"""What every command group shares: the consoles, the settings with the global ``--config``
applied, :func:`open_engine`, and small parsers and printers.

Every value from a case, a mediator, a desk file or an error is printed through ``shown()`` or
``plain()`` (cli/terminal.py): stored text is displayed, never obeyed by the terminal or by rich.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import make_url

from cli.plural import quantity
from cli.terminal import SafeConsole, shown
from desk.loader import Desk, try_load_desk
from runtime.bootstrap import build_engine
from runtime.engine import Engine
from runtime.settings import Settings, get_settings
from sla.clock import Clock
from store import schema
from store.errors import SchemaBehindError
from workflow.errors import Problem
from workflow.model import from_iso
from workflow.text import normalise_identifier

out = SafeConsole()
err = SafeConsole(stderr=True)


@dataclass(frozen=True)
class CliOptions:
    """The global options of one ``disputes`` invocation, kept in Typer's context (``ctx.obj``)."""

    config_dir: Path | None = None  # --config DIR: wins over DISPUTES_CONFIG_DIR


def options(ctx: typer.Context) -> CliOptions:
    found = ctx.find_root().obj
    return found if isinstance(found, CliOptions) else CliOptions()


def settings(ctx: typer.Context) -> Settings:
    """The settings in force, with the global ``--config`` applied."""
    try:
        found = get_settings()
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/red] {shown(exc)}", soft_wrap=True)
        raise typer.Exit(2) from None
    config_dir = options(ctx).config_dir
    return found.model_copy(update={"config_dir": config_dir}) if config_dir is not None else found


def database(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def require_schema(settings: Settings, *, create_if_empty: bool = False, refusal: str = "") -> None:
    """Exit 2 unless the database's schema is the code's (``refusal`` prefixes the message).

    With ``create_if_empty``, an empty SQLite file (the embedded default, or a new one) first
    gets the schema, so that a newcomer's ``disputes serve`` or ``disputes demo`` just works.
    PostgreSQL, and SQLite files that hold tables, keep the explicit ``disputes db upgrade``:
    changing a schema in use is the operator's decision."""
    try:
        created = schema.ensure_current(settings.database_url, create_if_empty=create_if_empty)
    except SchemaBehindError as exc:
        err.print(f"[red]{shown(exc)}[/red]" if not refusal else f"[red]{refusal}[/red] {shown(exc)}")
        raise typer.Exit(2) from None
    if created is not None:
        err.print(f"database schema: empty -> {created} (created in {database(settings)})")


@contextlib.contextmanager
def open_engine(ctx: typer.Context, *, clock: Clock | None = None, create_schema: bool = False) -> Iterator[Engine]:
    """The engine of the configured desk on the configured database, for one command: the schema
    checked first (exit 2 if behind), the engine disposed however the command ends."""
    found = settings(ctx)
    require_schema(found, create_if_empty=create_schema)
    engine = build_engine(found, clock=clock)
    try:
        yield engine
    finally:
        engine.dispose()


def desk_or_exit(ctx: typer.Context, directory: Path | None, *, code: int = 1) -> Desk:
    """Load the desk at ``directory`` (None: the one configured); print every problem and exit if unsound."""
    target = directory if directory is not None else settings(ctx).config_dir
    desk, problems = try_load_desk(target)
    if desk is None:
        print_problems(problems)
        if len(problems) > 1:  # one problem is its own line; several get a count
            err.print(
                f"{quantity(len(problems), 'problem')} in the desk {target or '(packaged default)'}", soft_wrap=True
            )
        raise typer.Exit(code)
    return desk


def print_problems(problems: Sequence[Problem], *, prefix: str = "") -> None:
    """One line per problem, file and line first (as editors jump to them); ``prefix`` says what
    the problem means for the command (``not reloaded: ``, say)."""
    for problem in problems:
        err.print(
            f"{prefix}{shown(problem.file)}:{problem.line}: [red]error[/red]: {shown(problem.message)}", soft_wrap=True
        )


def identifier(value: str | None) -> str | None:
    """A command-line argument naming a case, a person or a merchant: the identifier rule of
    workflow/text.py (NFKC form; whitespace, controls and invisible characters refused)."""
    if value is None:
        return None
    try:
        return normalise_identifier(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant given on the command line; without a zone it is taken as UTC."""
    try:
        moment = from_iso(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def progress() -> Progress:
    """A progress bar on standard error that is gone once the work ends (the command's own line
    then says what was done, or what went wrong)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
