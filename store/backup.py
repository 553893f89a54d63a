"""Copies of a whole database, and swapping a copy in: the storage half of `disputes db backup`
and `disputes db restore` (audit/backups.py adds the manifest and the checks).

SQLite is copied with ``VACUUM INTO``: one read transaction, so the copy is the database at one
instant while the server goes on writing (WAL readers do not block writers). The stepwise backup
API (``sqlite3.Connection.backup``) is never used: it restarts whenever another connection
writes, so under a steady load it never ends. PostgreSQL is copied with ``pg_dump -Fc`` of the
desk's schema in a snapshot exported by a transaction of ours, so what the caller reads in that
transaction (counts, the latest checkpoint) is exactly what the dump holds.

A restore never writes into the live database: the backup becomes a new SQLite file or a new
PostgreSQL database, and only a copy that passed every check is swapped in (:func:`swap_sqlite`,
:func:`swap_postgres`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from store.db import SQLITE_BUSY_TIMEOUT_MS, Database
from store.errors import BackupError, DatabaseUnavailableError

T = TypeVar("T")

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# How long a swap waits for the live database's last connections to close.
SWAP_LOCK_TIMEOUT_S = 2.0
# How many bytes a digest reads at a time.
_CHUNK = 1 << 20


def kind_of(url: str) -> str:
    """``sqlite`` or ``postgresql``: the kinds of database a backup can be taken of."""
    backend = make_url(url).get_backend_name()
    if backend not in (SQLITE, POSTGRESQL):
        raise BackupError(f"cannot back up a {backend} database: only SQLite and PostgreSQL")
    return backend


def sqlite_file(url: str) -> Path:
    """The file of a SQLite URL (an in-memory database has none to back up or restore over)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to back up or restore")
    return Path(database)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """The file's sha256 (hex), read in chunks; ``on_bytes`` hears how many bytes were read so far."""
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(done)
    return digest.hexdigest()


def flush(path: Path) -> None:
    """fsync a file (or a directory, after a rename in it): ``VACUUM INTO`` and ``pg_dump`` leave
    their output in the page cache, and a backup that a power cut can take back is no backup."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def refuse_existing(path: Path) -> None:
    if path.exists():
        raise BackupError(f"{path} exists already: name a new file")
    if not path.parent.is_dir():
        raise BackupError(f"the directory {path.parent} does not exist")


# --- taking a copy -----------------------------------------------------------------------------


def copy_sqlite(db: Database, target: Path, inspect: Callable[[Session], T]) -> T:
    """``VACUUM INTO`` ``target`` (which must not exist), then ``inspect`` the copy in a read
    transaction: what it returns describes the copy, not the live database."""
    refuse_existing(target)
    source = sqlite_file(db.url)
    if not source.exists():
        raise BackupError(f"the database file {source} does not exist")
    # A connection of its own, outside the pool: VACUUM cannot run in a transaction, and the
    # pool's connections start one on every use.
    connection = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error as exc:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise BackupError(f"VACUUM INTO {target} failed: {exc}") from exc
    finally:
        connection.close()
    copy = Database(sqlite_url(target), pool_size=1)
    try:
        with copy.read() as session:
            return inspect(session)
    finally:
        copy.dispose()
        _drop_sidecars(target)


def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``; a clear error when the client is not installed."""
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client programs (Debian: postgresql-client) "
            "of the server's major version or newer"
        )
    return found


def libpq_uri(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the libpq URI ``pg_dump`` and ``pg_restore`` take
    (the driver name dropped; ``options=-csearch_path=...`` and the rest of the query kept)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def current_schema(db: Database) -> str:
    """The schema the desk's tables are in (the URL's search_path, or ``public``)."""
    with db.read() as session:
        found = session.execute(text("SELECT current_schema()")).scalar()
    if not found:
        raise BackupError("the database has no current schema (is the search_path valid?)")
    return str(found)


def dump_postgres(db: Database, target: Path, schema: str, inspect: Callable[[Session], T]) -> T:
    """``pg_dump -Fc`` of ``schema`` into ``target`` from a snapshot this function exports,
    with ``inspect`` run in the same snapshot (so it describes exactly what was dumped)."""
    refuse_existing(target)
    program = pg_tool("pg_dump")
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            found = inspect(Session(bind=connection))
            result = subprocess.run(
                [
                    program,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--schema={schema}",
                    f"--file={target}",
                    f"--dbname={libpq_uri(db.url)}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
    if result.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise BackupError(f"pg_dump failed: {_first_line(result.stderr)}")
    return found


# --- restoring a copy --------------------------------------------------------------------------


def restore_sqlite(backup: Path, target: Path) -> str:
    """Copy the backup to ``target`` (a new file); its URL."""
    refuse_existing(target)
    shutil.copyfile(backup, target)
    return sqlite_url(target)


@dataclass(frozen=True)
class PostgresCopy:
    """A restored PostgreSQL copy: a database of its own on the live database's server."""

    database: str
    url: str  # the copy's URL, with the live URL's search_path


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise BackupError("the PostgreSQL URL names no database")
    return name


def restore_postgres(backup: Path, server_url: str, database: str) -> PostgresCopy:
    """Create ``database`` on ``server_url``'s server and ``pg_restore`` the backup into it."""
    program = pg_tool("pg_restore")
    _create_database(server_url, database)
    copy_url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    result = _pg_restore(program, backup, copy_url)
    if result.returncode != 0:
        drop_database(server_url, database)
        raise BackupError(f"pg_restore into {database} failed: {_first_line(result.stderr)}")
    return PostgresCopy(database, copy_url)


def _pg_restore(program: str, backup: Path, url: str) -> subprocess.CompletedProcess[str]:
    # --clean --if-exists: a new database already has a `public` schema, which a dump of
    # `public` creates again; on a database without the dumped objects it drops nothing.
    return subprocess.run(
        [
            program,
            "--no-owner",
            "--no-privileges",
            "--clean",
            "--if-exists",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq_uri(url)}",
            str(backup),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _maintenance_url(server_url: str) -> URL:
    """The server's ``postgres`` database, where databases are created and dropped (without the
    search_path option, which names a schema of the desk's database)."""
    parsed = make_url(server_url)
    query = {k: v for k, v in parsed.query.items() if k != "options"}
    return parsed.set(database="postgres", query=query)


def _create_database(server_url: str, database: str) -> None:
    admin = create_engine(_maintenance_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            ).first()
            if exists is not None:
                raise BackupError(f"the database {database} exists already: name a new one")
            connection.execute(text(f"CREATE DATABASE {_quoted(database)}"))
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
    finally:
        admin.dispose()


def drop_database(server_url: str, database: str) -> None:
    """Drop a copy this module created (a refused restore leaves nothing behind)."""
    admin = create_engine(_maintenance_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {_quoted(database)} WITH (FORCE)"))
    finally:
        admin.dispose()


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# --- swapping a verified copy in ---------------------------------------------------------------


def swap_sqlite(copy: Path, live: Path, kept: Path) -> None:
    """Put the verified ``copy`` in place of ``live``, keeping the old file as ``kept``.

    The live database's WAL is folded into its file first (so ``kept`` is whole on its own),
    the old file is hard-linked to ``kept`` (copied where links are not possible), and the copy
    is renamed over ``live`` in one atomic step: at every instant ``live`` is one whole database.
    The old WAL and shared-memory files are then removed, so no one replays them onto the copy.
    Refused while any other connection has the live database open (a server or worker would
    go on writing to the old file)."""
    refuse_existing(kept)
    _drop_sidecars(copy)
    if not live.exists():
        os.replace(copy, live)
        _drop_sidecars(live)
        return
    # An exclusive lock in WAL mode is refused while any other connection, of this process or
    # another, has the database open: no server or worker is left writing to the old file.
    connection = sqlite3.connect(live, timeout=SWAP_LOCK_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            connection.execute("BEGIN EXCLUSIVE")
            connection.execute("COMMIT")  # the lock stays: exclusive mode keeps it until close
        except sqlite3.OperationalError:
            raise BackupError(
                f"{live} is open in another process or connection: stop the server and workers first"
            ) from None
        busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise BackupError(f"the WAL of {live} could not be folded into it: stop the server and workers first")
        try:
            os.link(live, kept)
        except OSError:
            shutil.copy2(live, kept)
        os.replace(copy, live)  # still holding the old file's lock: no one opened it in between
    finally:
        connection.close()
    _drop_sidecars(live)


def _drop_sidecars(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def swap_postgres(
    live_url: str, schema: str, kept: str, *, backup: Path, check: Callable[[], None] = lambda: None
) -> None:
    """Put the verified copy in place of the live schema: the live schema is renamed to ``kept``
    (kept, never dropped) and ``backup`` (a dump of the verified copy) is restored into the live
    database in one transaction, then ``check`` runs on it; if either fails, the restored schema
    is dropped and the old one gets its name back.

    A schema cannot move between databases, and one database may hold several desks (one
    schema each), so renaming databases is not the general swap: docs/operators.md gives it
    as the faster manual route for a database that holds one desk."""
    program = pg_tool("pg_restore")
    live = Database(live_url, pool_size=1)
    try:
        with live.engine.connect() as connection, connection.begin():
            found = connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": kept}).first()
            if found is not None:
                raise BackupError(f"the schema {kept} exists already")
            connection.execute(text(f"ALTER SCHEMA {_quoted(schema)} RENAME TO {_quoted(kept)}"))
    finally:
        live.dispose()
    # The live URL's search_path names the schema, which no longer exists: restore through a
    # URL without it (the dump names its schema itself).
    result = _pg_restore(program, backup, _without_search_path(live_url))
    try:
        if result.returncode != 0:
            raise BackupError(f"pg_restore into the live database failed: {_first_line(result.stderr)}")
        check()
    except BaseException:
        live = Database(live_url, pool_size=1)
        try:
            with live.engine.connect() as connection, connection.begin():
                connection.execute(text(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE"))
                connection.execute(text(f"ALTER SCHEMA {_quoted(kept)} RENAME TO {_quoted(schema)}"))
        finally:
            live.dispose()
        raise


def _without_search_path(url: str) -> str:
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k != "options"}
    return parsed.set(query=query).render_as_string(hide_password=False)


def dump_copy(copy: PostgresCopy, schema: str, target: Path) -> None:
    """``pg_dump -Fc`` of a restored copy (what :func:`swap_postgres` restores into the live database)."""
    result = subprocess.run(
        [
            pg_tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--schema={schema}",
            f"--file={target}",
            f"--dbname={libpq_uri(copy.url)}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump of the verified copy failed: {_first_line(result.stderr)}")


@contextlib.contextmanager
def opened(url: str) -> Iterator[Database]:
    """A database for one step of a restore, disposed afterwards."""
    db = Database(url, pool_size=2)
    try:
        yield db
    finally:
        db.dispose()


def _first_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"
