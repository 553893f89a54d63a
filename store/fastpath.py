"""The command path's few statements, compiled once per dialect and sent straight to the driver.

Every command reads one case row and writes its events, the case row and a few child
rows. Through ``Connection.execute`` SQLAlchemy spends more on each of those statements
than the driver does (building an execution context, processing each parameter,
wrapping the cursor in a result): with SQLite on local disk that overhead was a fifth
of a command (bench B1). :class:`Prepared` keeps SQLAlchemy for what it is good at, the
SQL text, the parameter order and each column type's conversion, but works it out once
per dialect and then runs the driver's cursor itself, inside the transaction the
session's connection already holds.

What ``Connection.execute`` would do on the way and still must happen here:

- ``before_cursor_execute`` listeners are called (bench's write recorder, the
  connection-loss tests' killer) with the statement and parameters the driver gets;
- a driver error becomes SQLAlchemy's exception of the same kind (``IntegrityError``,
  ``OperationalError``, ...), and a lost connection is invalidated and flagged
  ``connection_invalidated``, so ``Database.run_write`` retries exactly as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Form:
    """One statement as one dialect's driver takes it."""

    sql: str
    # The bind names in the driver's order for a positional paramstyle (SQLite's "?"),
    # None for a named one (psycopg's "%(name)s"), which takes a dict.
    order: tuple[str, ...] | None
    # Conversions by bind name (SQLite datetimes to text, booleans to integers, ...).
    convert: tuple[tuple[str, Callable[[Any], Any]], ...]

    def bind(self, params: Params) -> Any:
        if self.convert:
            params = dict(params)
            for name, fn in self.convert:
                params[name] = fn(params[name])
        if self.order is None:
            return params
        return tuple([params[name] for name in self.order])


class Prepared:
    """A SQLAlchemy statement run on the driver's cursor with its compiled form cached."""

    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None) -> None:
        """``columns``: for an INSERT or UPDATE, the columns the parameters set (SQLAlchemy
        renders the VALUES or SET clause from them, as ``execute`` does from a dict's keys)."""
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._forms: dict[str, _Form] = {}
        self._lock = threading.Lock()

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            with self._lock:
                form = self._forms.get(dialect.name) or _compile(self.statement, self.columns, dialect)
                self._forms[dialect.name] = form
        return form

    def execute(self, connection: Connection, params: Params) -> Any:
        """Run once; returns the driver's cursor (``rowcount``, ``fetchone()``)."""
        form = self._form(connection.dialect)
        return _run(connection, form.sql, form.bind(params), many=False)

    def execute_many(self, connection: Connection, rows: Sequence[Params]) -> Any:
        form = self._form(connection.dialect)
        return _run(connection, form.sql, [form.bind(row) for row in rows], many=True)

    def scalar(self, connection: Connection, params: Params) -> Any:
        """The first column of the first row, or None when there is no row."""
        cursor = self.execute(connection, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else row[0]


def inserting(table: Table, omit: Sequence[str] = ()) -> Prepared:
    """An INSERT of every column of ``table`` but its autoincrementing key, the one the
    database numbers, and those in ``omit`` (left to their server defaults); rows are dicts
    with exactly those keys."""
    numbered = table.autoincrement_column
    unknown = set(omit) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    return Prepared(insert(table), [c.name for c in table.c if c is not numbered and c.name not in omit])


def _compile(statement: ClauseElement, columns: list[str] | None, dialect: Dialect) -> _Form:
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    assert isinstance(compiled, SQLCompiler)
    convert = []
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert.append((name, processor))
    order = tuple(compiled.positiontup or ()) if dialect.positional else None
    return _Form(compiled.string, order, tuple(convert))


@contextlib.contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, send the statements run inside together and read their results in one
    round trip (psycopg's pipeline mode); elsewhere, run them as they come.

    Inside, a statement's result is not there yet: read ``rowcount`` or rows after the
    block (a fetch inside forces the round trip early). A failure is raised when the
    block ends, as the same SQLAlchemy exception a lone statement would have raised, and
    the statements queued after the failing one are not run. Per command this replaces
    four round trips (events, case row, child rows, then the next one) with one, and
    the transaction's BEGIN travels with the case read (bench B1 on PostgreSQL).
    """
    driver = connection.connection.driver_connection
    pipeline = getattr(driver, "pipeline", None)
    if pipeline is None:
        yield
        return
    try:
        with pipeline():
            yield
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _translated(connection, exc, "(pipelined statements)", None, None) from exc


def _translated(connection: Connection, exc: Any, sql: str, params: Any, cursor: Any) -> StatementError:
    # What Connection.execute does with a driver error (Connection._handle_dbapi_exception): a
    # lost connection invalidates the pool, so its peers opened before the failure (dead too,
    # after a server restart) are replaced at their next checkout, not handed to the next
    # request; the connection itself is invalidated and the error flagged, so
    # Database.run_write retries and a read answers 503 once.
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection, cursor)
    if lost:
        connection.engine.pool._invalidate(connection.connection, exc)
        connection.invalidate(exc)
    translated: StatementError = DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )
    return translated


def _run(connection: Connection, sql: str, params: Any, *, many: bool) -> Any:
    # connection.connection checks the transaction out if it was not already; the
    # cursor is the driver's own, inside the transaction SQLAlchemy began.
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, params, None, many)
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _translated(connection, exc, sql, params, cursor) from exc
    return cursor
