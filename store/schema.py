"""Schema management through Alembic: upgrade to head, report the current revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from store.db import make_engine
from store.errors import DatabaseUnavailableError, SchemaBehindError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """Is ``revision`` one of the code's migrations (a database from a newer engine is not)?"""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def require_current(engine: Engine) -> None:
    """Refuse to serve on a database behind the code (run `disputes db upgrade`)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaBehindError(
            f"the database schema is at revision {current or 'none (empty database)'}, the code needs {head}: "
            "run `disputes db upgrade` first"
        )


def autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new revision from the models' difference to ``engine``."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)


def ensure_current(url: str, *, create_if_empty: bool = False) -> str | None:
    """Check that the database at ``url`` is at the code's head (else :class:`SchemaBehindError`);
    with ``create_if_empty``, first give an empty SQLite database the schema and return the
    revision it got (None when nothing was created). A database that does not answer is
    :class:`DatabaseUnavailableError`."""
    engine = make_engine(url)
    try:
        created = None
        if create_if_empty and engine.dialect.name == "sqlite" and not inspect(engine).get_table_names():
            upgrade(engine)
            created = current_revision(engine)
        require_current(engine)
        return created
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
    finally:
        engine.dispose()


def upgrade_url(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database at ``url`` to ``revision``; its revision before and after."""
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        return before, current_revision(engine)
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
    finally:
        engine.dispose()


def revisions(url: str) -> tuple[str | None, str | None]:
    """The revision of the database at ``url`` and the code's head."""
    engine = make_engine(url)
    try:
        return current_revision(engine), head_revision()
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
    finally:
        engine.dispose()
