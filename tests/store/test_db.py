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
