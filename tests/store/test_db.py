"""store.db and store.fastpath below the service: SQLite writers, driver-level statements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.db import Database, UTCDateTime
from store.fastpath import Prepared
from tests.support.database import postgres_schema_url

METADATA = MetaData()
ROWS = Table(
    "rows",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("label", String(40), nullable=False, unique=True),
    Column("at", UTCDateTime(), nullable=False),
)
INSERT_ROW = Prepared(insert(ROWS), ["label", "at"])
SELECT_ID = Prepared(select(ROWS.c.id).where(ROWS.c.label == bindparam("label")))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}", retries=0)
    METADATA.create_all(db.engine)
    yield db
    db.dispose()


def test_sqlite_writers_of_one_process_queue_instead_of_meeting_the_busy_timeout(sqlite_db: Database) -> None:
    """With SQLite's busy timeout at zero, a writer that found the lock taken would fail at
    once ("database is locked"); the process's writers queue on the Database's own lock, so
    eight threads writing at once all succeed, without retries."""

    @event.listens_for(sqlite_db.engine, "connect")
    def _no_busy_wait(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[attr-defined]

    sqlite_db.engine.dispose()  # new connections get the listener
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(index: int) -> None:
        start.wait()
        for n in range(25):
            try:
                row = {"label": f"{index}-{n}", "at": datetime.now(UTC)}

                def insert_row(session: Session, row: dict[str, object] = row) -> None:
                    INSERT_ROW.execute(session.connection(), row)

                sqlite_db.run_write(insert_row)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sqlite_db.read() as session:
        assert len(session.execute(select(ROWS.c.id)).all()) == 200


def test_prepared_statements_convert_types_and_raise_sqlalchemy_errors(db_url: str) -> None:
    """A datetime goes in and comes back as the same instant (SQLite stores text), and a
    duplicate key is SQLAlchemy's IntegrityError, as through Connection.execute."""
    db = Database(db_url, retries=0)
    try:
        METADATA.drop_all(db.engine)
        METADATA.create_all(db.engine)
        at = datetime(2026, 3, 2, 2, 0, 0, 12, tzinfo=UTC)
        db.run_write(lambda s: INSERT_ROW.execute_many(s.connection(), [{"label": "a", "at": at}]))
        with db.read() as session:
            # Read back through SQLAlchemy's own result processing: the same instant.
            assert session.execute(select(ROWS.c.at)).scalar_one() == at
            assert SELECT_ID.scalar(session.connection(), {"label": "a"}) == 1
            assert SELECT_ID.scalar(session.connection(), {"label": "missing"}) is None
        with pytest.raises(IntegrityError):
            db.run_write(lambda s: INSERT_ROW.execute(s.connection(), {"label": "a", "at": at}))
        with db.read() as session:
            assert len(session.execute(select(ROWS.c.id)).all()) == 1
    finally:
        METADATA.drop_all(db.engine)
        db.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


def test_a_postgresql_deadlock_is_run_again(pg_url: str) -> None:
    """Two writers (two engines, as two processes) lock the same two rows in opposite orders;
    PostgreSQL aborts one of them (SQLSTATE 40P01) and ``run_write`` runs its work again, so
    both commit and the work ran three times in all."""
    setup = Database(pg_url, retries=0)
    first, second = Database(pg_url, retries=2), Database(pg_url, retries=2)
    at = datetime(2026, 3, 2, tzinfo=UTC)
    both_hold_one = threading.Barrier(2, timeout=10)
    runs: list[str] = []

    def lock_in_order(labels: tuple[str, str], db: Database) -> None:
        def work(session: Session) -> None:
            runs.append(labels[0])
            lock = select(ROWS.c.id).where(ROWS.c.label == bindparam("label")).with_for_update()
            session.execute(lock, {"label": labels[0]})
            if len(runs) <= 2:  # the first run of each: both hold one row, then want the other
                both_hold_one.wait()
            session.execute(lock, {"label": labels[1]})
            session.execute(ROWS.update().where(ROWS.c.label == labels[1]).values(at=at))

        db.run_write(work)

    try:
        METADATA.create_all(setup.engine)
        rows = [{"label": "a", "at": at}, {"label": "b", "at": at}]
        setup.run_write(lambda s: INSERT_ROW.execute_many(s.connection(), rows))
        threads = [
            threading.Thread(target=lock_in_order, args=(("a", "b"), first)),
            threading.Thread(target=lock_in_order, args=(("b", "a"), second)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])  # one of the two ran again
    finally:
        METADATA.drop_all(setup.engine)
        for db in (setup, first, second):
            db.dispose()
