"""Database engines: SQLite (default, WAL, BEGIN IMMEDIATE for writes) or PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from store.errors import DatabaseUnavailableError

DEFAULT_URL = "sqlite:///./disputes.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
    echo: bool = False,
) -> Engine:
    """Create an engine with the per-backend settings the engine relies on.

    A PostgreSQL connection that sat in the pool for more than ``IDLE_PING_SECONDS`` is
    pinged at checkout, so one the server dropped meanwhile (restart, failover, idle
    timeout) is replaced instead of failing the next request (see :func:`_ping_after_idle`)."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine, memory=memory)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
    )
    _ping_after_idle(engine)
    return engine


# A connection used this recently is taken as alive without asking the server.
IDLE_PING_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle.

    Pinging at every checkout cost a round trip per transaction, a few percent of a
    command (bench B1; bench/results.md). A connection that served a
    request seconds ago is as alive as a ping would show, and if the server died since,
    the statement fails with the connection invalidated: SQLAlchemy then recycles every
    connection of the pool older than the failure, ``Database.run_write`` retries the
    write on a fresh one, and a read answers 503 once. After a quiet spell (when restarts
    and idle timeouts happen) the ping runs as before.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            alive = False
        if not alive:
            # The pool discards this connection and checks out another (up to 3 tries).
            raise DisconnectionError("pooled connection dropped while idle")


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers start with BEGIN IMMEDIATE so two of them queue on the busy
        # timeout instead of failing on a read-to-write lock upgrade.
        # Straight to the driver: this runs once per transaction, and exec_driver_sql's
        # execution context cost as much as the statement (bench B1).
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine plus the two ways in: a write transaction and a read transaction."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout: float = 30.0,
        echo: bool = False,
        retries: int = 3,
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, echo=echo
        )
        self.dialect = self.engine.dialect.name
        self._write_engine = (
            self.engine.execution_options(sqlite_immediate=True) if self.dialect == "sqlite" else self.engine
        )
        self.retries = retries
        # SQLite has one writer at a time. Left to the busy timeout, a thread that finds the
        # write lock taken sleeps in SQLite's back-off steps (up to 100 ms each) however soon
        # the lock frees, which was most of the HTTP tail at load (bench B2: p99 in the
        # hundreds of ms). Writers of this process queue on a lock instead and start the
        # moment the previous one commits; other processes still meet the busy timeout.
        # Re-entrant, so a write begun inside another on the same thread behaves as before.
        self._writers: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def truncate_wal(self) -> bool:
        """SQLite: copy the WAL into the database file and truncate it to nothing (after an
        erasure: the WAL's old page images are gone with it). False when a reader kept it
        from completing. Outside any transaction, as the pragma must be; PostgreSQL: True."""
        if self.dialect != "sqlite":
            return True
        with self._writers, self.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            busy, _frames, _done = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any error."""
        with self._writers, Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """One read transaction; a connection lost under it becomes :class:`DatabaseUnavailableError`."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            if not _is_transient(exc):
                raise
            raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc

    def run_write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction, retrying when the database is busy or the
        connection drops; after the last try raise :class:`DatabaseUnavailableError`.

        A failure before COMMIT leaves nothing behind (the server rolls back a transaction
        whose connection died), so ``work`` runs again on a fresh connection. A connection
        lost *during* COMMIT is different: the transaction may or may not have committed,
        and running ``work`` again could apply a command twice (a filing has no version to
        stop it), so that is reported as unavailable at once, for the client to re-read.
        """
        delay = 0.05
        for attempt in range(self.retries + 1):
            committing = False
            try:
                with self._writers, Session(self._write_engine, expire_on_commit=False) as session:
                    transaction = session.begin()
                    try:
                        result = work(session)
                        session.flush()
                    except BaseException:
                        transaction.rollback()
                        raise
                    committing = True
                    transaction.commit()
                    return result
            except OperationalError as exc:
                if committing and _is_transient(exc):
                    raise DatabaseUnavailableError(
                        f"database connection lost while committing; the outcome is unknown: {exc.orig}"
                    ) from exc
                if attempt == self.retries or not _is_transient(exc):
                    raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from exc
            except DBAPIError as exc:
                if committing and exc.connection_invalidated:
                    raise DatabaseUnavailableError(
                        f"database connection lost while committing; the outcome is unknown: {exc.orig}"
                    ) from exc
                if not exc.connection_invalidated or attempt == self.retries:
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """One round trip to the database (readiness); raises if it does not answer."""
        with self.read() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


# PostgreSQL's SQLSTATEs for a transaction it aborted to let others go on (a deadlock, a
# serialisation failure): the work itself was fine, and running it again is what the server asks.
_RETRY_STATES = frozenset({"40P01", "40001"})


def _is_transient(exc: OperationalError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in _RETRY_STATES:
        return True
    text = str(exc.orig).lower()
    return exc.connection_invalidated or any(
        marker in text for marker in ("locked", "busy", "connection", "server closed", "terminating")
    )
