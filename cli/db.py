"""`disputes db ...`: the database schema (Alembic migrations), backups and restores."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from audit.backups import RestoreRequest, erasure_replay, manifest_path, restore_backup, take_backup
from audit.keys import public_key_hex
from cases.personal import PersonalData
from cases.registry import WorkflowRegistry
from cli.common import desk_or_exit, err, open_engine, out, settings
from cli.plural import quantity
from cli.terminal import shown
from runtime.settings import key_provider, signing_key
from sla.clock import SystemClock
from store import schema
from store.backup import POSTGRESQL, kind_of

db_app = typer.Typer(help="Database schema (Alembic migrations), backups and restores.", no_args_is_help=True)


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


@contextlib.contextmanager
def stages(watched: Path | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner on standard error naming the stage a long command is in, with the time taken
    and, while ``watched`` grows (the copy being written), its size."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", size="")
        done = threading.Event()

        def watch() -> None:
            while watched is not None and not done.wait(0.25):
                with contextlib.suppress(OSError):
                    bar.update(task, size=f"{watched.stat().st_size / 1e6:,.1f} MB")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield lambda step: bar.update(task, description=shown(step))
        finally:
            done.set()
            watcher.join()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="The backup file to write (must not exist), or a directory for it "
            "(default: disputes-backup-<time>.sqlite or .pgdump in the current directory).",
        ),
    ] = None,
    checkpoint: Annotated[
        bool,
        typer.Option(
            "--checkpoint",
            help="Write a checkpoint first even if one exists (it holds up writers for a time that "
            "grows with the number of cases; without it, a database with no checkpoint gets one).",
        ),
    ] = False,
) -> None:
    """Copy the database at one instant while it serves (SQLite: VACUUM INTO; PostgreSQL:
    pg_dump -Fc), with a manifest beside the copy: its sha256 and size, the engine version, the
    latest checkpoint it holds and the number of chains."""
    found = settings(ctx)
    suffix = ".pgdump" if kind_of(found.database_url) == POSTGRESQL else ".sqlite"
    default_name = f"disputes-backup-{_stamp()}{suffix}"
    target = (to / default_name if to.is_dir() else to) if to is not None else Path(default_name)
    with open_engine(ctx) as engine, stages(target) as step:
        manifest = take_backup(
            engine.db,
            target,
            signing_key=engine.signing_key,
            clock=engine.clock.now,
            checkpoint=checkpoint,
            on_step=step,
        )
    latest = manifest.contents.checkpoint
    chains = manifest.contents
    out.print(
        f"backup {shown(target)}: {manifest.size / 1e6:,.1f} MB, sha256 {manifest.sha256[:16]}..., "
        f"{quantity(chains.cases, 'case chain')} ({quantity(chains.events, 'event')}), "
        f"{quantity(chains.merchants, 'merchant chain')}, "
        + (f"latest checkpoint #{latest.number}" if latest else "no checkpoint"),
        soft_wrap=True,
    )
    out.print(f"manifest {shown(manifest_path(target))}", soft_wrap=True)


@db_app.command("restore")
def db_restore(
    ctx: typer.Context,
    backup: Annotated[Path, typer.Argument(help="The backup file (written by `disputes db backup`).")],
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="Its manifest (default: BACKUP.manifest.json).")
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            help="Where the copy goes. SQLite: a new file (default: beside the database, named "
            "<file>.restore-<time>); PostgreSQL: a new database's name or URL (default: "
            "<database>_restore_<time> on the same server).",
        ),
    ] = None,
    swap: Annotated[
        bool,
        typer.Option(
            "--swap",
            help="Once every check passed, put the copy in place of the configured database (the old "
            "one is kept: SQLite <file>.pre-restore-<time>, PostgreSQL schema <schema>_pre_restore_<time>). "
            "Stop the server and workers first.",
        ),
    ] = False,
    without_live: Annotated[
        bool,
        typer.Option(
            "--without-live",
            help="Restore even though the configured database cannot be read (lost, unreachable): "
            "the erasures it recorded after the backup are then NOT re-applied.",
        ),
    ] = False,
) -> None:
    """Restore a backup into a new copy, and refuse it (exit 2, nothing swapped) unless its
    sha256 is the manifest's, every chain and checkpoint verifies, and its checkpoints agree
    with the manifest's and the live database's; erasures made after the backup are applied
    to the copy again before it can be swapped in."""
    found = settings(ctx)
    desk = desk_or_exit(ctx, None, code=2)
    registry = WorkflowRegistry(list(desk.workflows), default=desk.default_workflow)
    trusted = list(found.audit_trusted_keys) or [public_key_hex(signing_key(found))]
    request = RestoreRequest(
        backup=backup,
        live_url=found.database_url,
        manifest=manifest,
        into=into,
        swap=swap,
        without_live=without_live,
    )
    clock = SystemClock()
    # The live engine's keys: the copy's data keys are wrapped by the same key-encryption keys.
    # Never generated here: new keys would open nothing the backup holds (a missing key file is
    # named, with what to do); the copy is refused unless they open its case keys.
    keys = key_provider(found, create=False)
    replay = erasure_replay(registry=registry, privacy=PersonalData(keys), clock=clock)
    with stages() as step:
        result = restore_backup(
            request,
            registry=registry,
            trusted_keys=trusted,
            now=clock.now(),
            reapply_erasures=replay,
            on_step=step,
            keys=keys,
        )
    out.print(
        f"restored {shown(backup)}: sha256 matches its manifest; {quantity(result.cases, 'case')} "
        f"({quantity(result.events, 'event')}) and {quantity(result.checkpoints, 'checkpoint')} verify",
        soft_wrap=True,
    )
    live = "agree with the live database's" if result.live_checked else "not compared with the live database"
    out.print(f"checkpoints {live}" + (f" ({shown(result.live_note)})" if result.live_note else ""), soft_wrap=True)
    out.print(f"erasures re-applied: {result.erasures_reapplied}", soft_wrap=True)
    for note in result.notes:
        out.print(shown(note), soft_wrap=True)
    if result.swapped:
        out.print(f"swapped in; the old database is kept as {shown(result.kept)}", soft_wrap=True)
    else:
        out.print(f"verified copy: {shown(result.copy)} (not swapped in: give --swap to do so)", soft_wrap=True)
