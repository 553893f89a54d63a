"""A PostgreSQL connection killed in the middle of a command: the client gets 503 with
Retry-After and nothing of the command is written; the next request works.

The server side of the request's own connection is ended with ``pg_terminate_backend``
from another connection, at a chosen point inside the transaction (an engine event
hook), as a database restart, failover or network cut would end it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.auth import mint_token
from audit.verify import verify_database
from cases.service import CaseService
from runtime.settings import Settings
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store import db as db_module
from store import schema
from store.db import make_engine
from store.tables import CASES, EVENTS
from tests.support.builders import engine_of, make_service

pytestmark = pytest.mark.postgres

FILING = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "product_quality",
    "subject": "Kettle broke",
    "description": "It stopped heating after two days.",
    "claim": {"amount": 29900, "currency": "CNY"},
}


@dataclass
class Killer:
    """Ends the server backend of the connection that is about to run a matching
    statement (or to commit), ``times`` times; counts what it did."""

    admin: Engine
    times: int = 0
    statement_prefix: str | None = None  # kill before this statement; None with at_commit
    at_commit: bool = False
    killed: list[int] = field(default_factory=list)

    def arm(self, times: int, *, before: str | None = None, at_commit: bool = False) -> None:
        self.times, self.statement_prefix, self.at_commit = times, before, at_commit

    def maybe_kill(self, conn: Connection) -> None:
        if self.times <= 0:
            return
        self.times -= 1
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with self.admin.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
            # Wait until the backend is gone, so the next statement surely meets a dead connection.
            deadline = time.monotonic() + 10
            while admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar():
                assert time.monotonic() < deadline, "backend did not terminate"
                time.sleep(0.01)
        self.killed.append(pid)


@dataclass
class Rig:
    client: TestClient
    service: CaseService
    killer: Killer
    headers: Callable[[str, str, str | None], dict[str, str]]

    def snapshot(self, case_id: str) -> tuple[Any, ...]:
        """Everything a command could have written for the case: row and log."""
        with self.service.db.read() as session:
            row = session.execute(select(CASES).where(CASES.c.id == case_id)).one()
            events = session.execute(
                select(EVENTS.c.seq, EVENTS.c.type, EVENTS.c.hash).where(EVENTS.c.case_id == case_id)
            ).all()
        return tuple(row), tuple(events)

    def event_count(self) -> int:
        with self.service.db.read() as session:
            return int(session.execute(select(func.count()).select_from(EVENTS)).scalar_one())


@pytest.fixture
def rig(pg_empty_url: str) -> Iterator[Rig]:
    engine = make_engine(pg_empty_url)
    schema.upgrade(engine)
    engine.dispose()
    service = make_service(pg_empty_url, sla=SlaPlanner(default_calendars()))
    # Autocommit: pg_stat_activity is a snapshot held for the whole transaction, and the
    # killer polls it until the backend is gone.
    admin = create_engine(pg_empty_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    killer = Killer(admin)

    @event.listens_for(service.db.engine, "before_cursor_execute")
    def _before(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if killer.statement_prefix and statement.lstrip().upper().startswith(killer.statement_prefix):
            killer.maybe_kill(conn)

    @event.listens_for(service.db.engine, "commit")
    def _commit(conn: Connection) -> None:
        if killer.at_commit:
            killer.maybe_kill(conn)

    settings = Settings(environment="test", database_url=pg_empty_url, run_ticker=False)

    def headers(sub: str, role: str, merchant_id: str | None = None) -> dict[str, str]:
        token = mint_token(
            settings, sub=sub, role=role, merchant_id=merchant_id, now=service.clock.now(), ttl=timedelta(days=3650)
        )
        return {"Authorization": f"Bearer {token}"}

    with TestClient(create_app(engine=engine_of(service, settings)), raise_server_exceptions=False) as client:
        yield Rig(client, service, killer, headers)
    service.db.dispose()
    admin.dispose()


def _file(rig: Rig) -> tuple[str, str]:
    created = rig.client.post("/v1/cases", json=FILING, headers=rig.headers("c-1", "consumer", None))
    assert created.status_code == 201, created.text
    return created.json()["id"], created.headers["ETag"]


def _assign(rig: Rig, case_id: str, etag: str) -> Any:
    return rig.client.post(
        f"/v1/cases/{case_id}/transitions",
        json={"trigger": "assign"},
        headers={**rig.headers("med-1", "mediator", None), "If-Match": etag},
    )


def _assert_intact(rig: Rig) -> None:
    report = verify_database(rig.service.db, rig.service.registry)
    assert report.intact, report.to_dict()


def test_connection_lost_on_every_try_is_503_and_nothing_is_written(rig: Rig) -> None:
    case_id, etag = _file(rig)
    before = rig.snapshot(case_id)
    # The case row is updated first, then the events are inserted: kill between the two,
    # on the first try and on every retry.
    rig.killer.arm(rig.service.db.retries + 1, before="INSERT INTO EVENTS")
    refused = _assign(rig, case_id, etag)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "urn:dispute-engine:problem:unavailable"
    assert len(rig.killer.killed) == rig.service.db.retries + 1
    assert rig.snapshot(case_id) == before  # no half-applied command: same row, same log
    _assert_intact(rig)
    # The pool threw the dead connections away: the same command now simply works.
    again = _assign(rig, case_id, etag)
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "assigned"
    assert [e[1] for e in rig.snapshot(case_id)[1]].count("transitioned") == 1
    _assert_intact(rig)


def test_connection_lost_once_is_retried_on_a_fresh_connection(rig: Rig) -> None:
    case_id, etag = _file(rig)
    events_before = rig.event_count()
    rig.killer.arm(1, before="INSERT INTO EVENTS")
    moved = _assign(rig, case_id, etag)
    assert moved.status_code == 200, moved.text
    assert len(rig.killer.killed) == 1
    # Exactly the events of one assignment (transitioned, timer met, timer started), not two.
    with rig.service.db.read() as session:
        types = (
            session.execute(select(EVENTS.c.type).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq))
            .scalars()
            .all()
        )
    assert types.count("transitioned") == 1
    assert rig.event_count() == events_before + len(types) - 2  # filed + its timer_started were there
    _assert_intact(rig)


def test_connection_lost_during_commit_is_503_without_a_blind_retry(rig: Rig) -> None:
    case_id, etag = _file(rig)
    before = rig.snapshot(case_id)
    rig.killer.arm(1, at_commit=True)
    refused = _assign(rig, case_id, etag)
    # COMMIT never reached the server here, but a client cannot know that in general:
    # 503, and the command is not run a second time behind the client's back.
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert len(rig.killer.killed) == 1
    assert rig.snapshot(case_id) == before
    _assert_intact(rig)
    again = _assign(rig, case_id, etag)
    assert again.status_code == 200, again.text


def test_filing_with_a_lost_connection_files_nothing(rig: Rig) -> None:
    rig.killer.arm(10, before="INSERT INTO EVENTS")
    refused = rig.client.post("/v1/cases", json=FILING, headers=rig.headers("c-1", "consumer", None))
    assert refused.status_code == 503, refused.text
    with rig.service.db.read() as session:
        assert session.execute(select(func.count()).select_from(CASES)).scalar_one() == 0
    assert rig.event_count() == 0
    rig.killer.arm(0)
    case_id, _ = _file(rig)
    assert rig.snapshot(case_id)[1][0][1] == "filed"
    _assert_intact(rig)


def test_a_read_whose_connection_dies_is_503_and_the_next_read_works(rig: Rig) -> None:
    case_id, _ = _file(rig)
    rig.killer.arm(1, before="SELECT CASES")
    reader = rig.headers("c-1", "consumer", None)
    failed = rig.client.get(f"/v1/cases/{case_id}", headers=reader)
    assert failed.status_code == 503, failed.text
    assert failed.headers["Retry-After"] == "1"
    ok = rig.client.get(f"/v1/cases/{case_id}", headers=reader)
    assert ok.status_code == 200 and ok.json()["id"] == case_id


def _kill_pooled_connections(rig: Rig) -> list[int]:
    """End the server side of every connection idle in the service's pool, as a database
    restart would, and wait until they are gone."""
    pool = rig.service.db.engine.pool
    pids: list[int] = []
    # At least three in the pool, as after concurrent requests: a failure must recycle them all.
    warm = [pool.connect() for _ in range(max(3, pool.checkedin()))]  # type: ignore[attr-defined]
    for proxy in warm:
        proxy.close()
    held = [pool.connect() for _ in range(pool.checkedin())]  # type: ignore[attr-defined]
    for proxy in held:
        pids.append(proxy.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]
    for proxy in held:
        proxy.close()
    with rig.killer.admin.connect() as admin:
        for pid in pids:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
        while admin.execute(alive, {"pids": pids}).scalar():
            assert time.monotonic() < deadline, "backends did not terminate"
            time.sleep(0.01)
    return pids


def test_connections_dropped_while_idle_are_replaced_before_use(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart while the pool sat idle: the connections that idled past the ping threshold
    are pinged at checkout and replaced, so no request sees the dead ones."""
    case_id, _ = _file(rig)
    assert _kill_pooled_connections(rig)
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    reader = rig.headers("c-1", "consumer", None)
    for _ in range(3):
        ok = rig.client.get(f"/v1/cases/{case_id}", headers=reader)
        assert ok.status_code == 200, ok.text


def test_a_busy_connection_is_not_pinged_and_a_dead_one_costs_one_503(rig: Rig) -> None:
    """Within the ping threshold a checkout asks the server nothing; if the server died
    meanwhile the read fails once (503) and the failure recycles the pool."""
    case_id, _ = _file(rig)
    assert _kill_pooled_connections(rig)
    reader = rig.headers("c-1", "consumer", None)
    failed = rig.client.get(f"/v1/cases/{case_id}", headers=reader)
    assert failed.status_code == 503, failed.text
    for _ in range(3):
        ok = rig.client.get(f"/v1/cases/{case_id}", headers=reader)
        assert ok.status_code == 200, ok.text
