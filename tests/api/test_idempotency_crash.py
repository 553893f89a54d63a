"""An Idempotency-Key survives a crash at any point: a retry returns the first answer, or
does the work exactly once. Faults are injected at every database step of a request (each
statement about to run, each commit about to happen, each commit just done: the window
between a command's commit and its answer) through SQLAlchemy's events on the real
database, on both backends, for a filing, an action on a case and an admin's registration."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from store.tables import CASES, MEDIATORS
from tests.support.actors import AUDITOR
from tests.support.api import Api

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "category": "not_received",
    "subject": "没收到货",
    "description": "物流一直没有更新。",
    "claim": {"amount": 9900, "currency": "CNY"},
}


class SimulatedCrash(Exception):
    """The process 'dies' here: whatever was not committed is lost, the client gets no answer."""


class Fault:
    """Raise :class:`SimulatedCrash` at the ``at``-th database step of the engine's next work:
    a statement about to execute, a commit about to happen, or a commit just made."""

    def __init__(self, engine: Engine, at: int) -> None:
        self.engine = engine
        self.at = at
        self.steps = 0
        self.where: str | None = None

    def step(self, where: str) -> None:
        self.steps += 1
        if self.steps - 1 == self.at and self.where is None:
            self.where = where
            raise SimulatedCrash(where)

    def before_statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.step(f"before {statement.split()[0]}")

    def ours(self, session: Session) -> bool:
        return getattr(session.get_bind(), "pool", None) is self.engine.pool

    def before_commit(self, session: Session) -> None:
        if self.ours(session):
            self.step("before savepoint release" if session.in_nested_transaction() else "before commit")

    def after_commit(self, session: Session) -> None:
        if self.ours(session):
            self.step("after savepoint release" if session.in_nested_transaction() else "after commit")


@contextmanager
def fault_at(engine: Engine, at: int) -> Iterator[Fault]:
    fault = Fault(engine, at)
    listeners: list[tuple[Any, str, Any]] = [
        (engine, "before_cursor_execute", fault.before_statement),
        (Session, "before_commit", fault.before_commit),
        (Session, "after_commit", fault.after_commit),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield fault
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)


def _count(api: Api, stmt: Any) -> int:
    with api.service.db.read() as session:
        return int(session.execute(stmt).scalar_one())


def _request(
    api: Api, kind: str, tag: str, case_id: str
) -> tuple[str, dict[str, Any], dict[str, str], Callable[[], int]]:
    """(path, JSON body, headers, a count of this request's effects in the database). The log
    holds markers for texts: the effects are counted on what the service reveals."""
    consumer = {**api.token("c-1", "consumer"), "Idempotency-Key": tag}
    if kind == "file":
        filed = lambda: sum(c.order_ref == tag for c in api.service.list_cases(actor=AUDITOR, limit=200).data)  # noqa: E731
        return "/v1/cases", {**FILING, "order_ref": tag}, consumer, filed
    if kind == "message":
        version = _count(api, select(CASES.c.version).where(CASES.c.id == case_id))
        headers = {**consumer, "If-Match": f'"{version}"'}
        path = f"/v1/cases/{case_id}/messages"
        said = lambda: sum(m.body == tag for m in api.service.messages(actor=AUDITOR, case_id=case_id, limit=200).data)  # noqa: E731
        return path, {"body": tag}, headers, said
    mediator = {"id": tag, "display_name": tag, "categories": ["*"], "languages": ["*"], "capacity": 0}
    admin = {**api.token("adm-1", "admin"), "Idempotency-Key": tag}
    registered = select(func.count()).select_from(MEDIATORS).where(MEDIATORS.c.id == tag)
    return "/v1/mediators", mediator, admin, lambda: _count(api, registered)


def _crash_and_retry(api: Api, kind: str, at: int, case_id: str) -> str | None:
    """Send one request with a fault at its ``at``-th database step, then retry it twice with
    the same key; check the answers and the effects. The fault's place, or None if the
    request had fewer steps."""
    tag = f"{kind}-{at}"
    path, body, headers, effects = _request(api, kind, tag, case_id)
    with fault_at(api.service.db.engine, at) as fault:
        first = api.client.post(path, json=body, headers=headers)
    crashed = fault.where
    assert crashed or first.status_code in (200, 201), first.text
    # Long after any lease a claim-based scheme would give the crashed request.
    api.clock.advance(timedelta(minutes=5))

    retry = api.client.post(path, json=body, headers=headers)
    assert retry.status_code in (200, 201), (crashed, retry.text)
    if first.status_code in (200, 201):
        assert retry.content == first.content, crashed
    again = api.client.post(path, json=body, headers=headers)
    assert (again.status_code, again.content) == (retry.status_code, retry.content), crashed
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers.get("etag") == retry.headers.get("etag")
    assert again.headers.get("location") == retry.headers.get("location")
    assert effects() == 1, f"{kind} crashed {crashed}: the work was done {effects()} times"
    return crashed


@pytest.mark.parametrize("kind", ["file", "message", "mediator"])
def test_a_retry_after_a_crash_at_any_step_returns_the_first_answer_or_acts_once(api: Api, kind: str) -> None:
    consumer = api.token("c-1", "consumer")
    case_id = api.client.post("/v1/cases", json={**FILING, "order_ref": "base"}, headers=consumer).json()["id"]
    places = []
    for at in itertools.count():  # every step of the request in turn, until it runs to the end
        crashed = _crash_and_retry(api, kind, at, case_id)
        if crashed is None:
            break
        places.append(crashed)
    # The window of the bug this guards against: the command committed, its answer not yet sent.
    assert places[-2:] == ["before commit", "after commit"] and len(places) >= 8, places
