"""The command line's edge of the error model: every error a user's mistake or the environment
can cause becomes one readable line on standard error and an exit code, never a traceback.

The counterpart of api/problems.py: the same classes, looked up along the MRO in one table
(:data:`EXIT_CODES`), so that a new error class needs one row here or inherits its parent's.
Exit codes: 0 done; 1 a check ran and found problems (``audit verify``, ``config check``, a
failing scenario: the command's own report says what); 2 the command could not do its job
(the line says why: an unknown case, an unusable desk, an unreachable database, ...).
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from cli.common import err
from cli.terminal import shown
from store.errors import StorageError
from workflow.errors import ConfigError, DisputeError

# Error class -> exit code. Looked up along the class's MRO: the most specific row wins.
EXIT_CODES: dict[type[BaseException], int] = {
    DisputeError: 2,  # a refusal: unknown case or mediator, invalid value, not allowed
    ConfigError: 2,  # a configuration file (the desk, a workflow, policies...) cannot be used
    StorageError: 2,  # the database is unavailable or its schema is behind the code
    DBAPIError: 2,  # the driver's own error, where no room turned it into a StorageError
}


def exit_code(exc: BaseException) -> int | None:
    """The exit code of ``exc``'s class (its nearest mapped ancestor), or None when unmapped."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return None


def describe(exc: BaseException) -> list[str]:
    """The line (markup, escaped) that names what went wrong: for configuration, one line per
    problem, each with its file and line, as editors and ``config check`` print them."""
    if isinstance(exc, ConfigError):
        return [
            f"{shown(p.file)}:{p.line}: [red]error[/red]: {shown(p.message)}"
            if p.file
            else f"[red]error[/red]: {shown(p.message)}"
            for p in exc.problems
        ]
    return [_line(exc)]


def _line(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError):
        return f"[red]error[/red]: database unavailable: {shown(str(exc.orig).strip().splitlines()[0])}"
    return f"[red]error[/red]: {shown(exc)}"


class MappedErrorsGroup(TyperGroup):
    """The root command: runs every sub-command and turns a mapped error into its line and code."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except Exception as exc:  # typer.Exit and click's usage errors are not mapped: they pass
            code = exit_code(exc)
            if code is None:
                raise
            for line in describe(exc):
                err.print(line, soft_wrap=True)
            raise typer.Exit(code) from None
