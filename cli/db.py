"""`disputes db upgrade` and `disputes db current`: the database schema (Alembic migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import err, out, settings
from store import schema

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database to the code's head (creates it if empty)."""
    before, after = schema.upgrade_url(settings(ctx).database_url, revision)
    err.print(f"database schema: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's revision and the code's head."""
    current, head = schema.revisions(settings(ctx).database_url)
    out.print(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(1)
