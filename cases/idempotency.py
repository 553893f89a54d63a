"""Idempotency keys: a POST's answer is stored in the transaction of the command it answers.

A key's row is written only by the transaction that performs the request's command,
together with the HTTP answer rendered from that command's result. So a committed key
is always complete: after a crash at any point a key is either absent (nothing was
done, and a retry does it once) or holds the first answer (and a retry gets it back).
An earlier design claimed the key in one transaction, ran the command in a second and
stored the answer in a third, after the answer was sent; a kill -9 between the second
and the third left a claim that a later retry took over and ran the command again.

How a request gets here: the API's guard middleware wraps a request that carries an
``Idempotency-Key`` into an :class:`IdempotentRequest` held in a context variable
(:func:`handling`); the route says how it answers (``render``); the command path runs
its work through :func:`command`, which takes the key first thing in the command's
transaction (:func:`reserve`) and stores the rendered answer last (:func:`record`).

Duplicates wait on the database itself: the first request's insert of the key holds the
key's unique index entry until it commits, so a concurrent duplicate's insert waits
for it (PostgreSQL; on SQLite writers take turns anyway), then finds the stored answer
and replays it. Requests that never reach a command (401, 403, 404, 409, 412, 422...)
changed nothing and store nothing: a retry simply runs them again.

Keys are unique per (scope, key) across every worker because the row's primary key is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, insert, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from store.db import Database
from store.tables import IDEMPOTENCY_KEYS
from workflow.errors import DisputeError

KEEP_FOR = timedelta(hours=24)
# Rows only an older version of this engine left behind: it committed an ``in_flight``
# claim before acting. Such a claim older than this is presumed dead and cleared.
STALE_CLAIM = timedelta(seconds=60)
# Expired keys each command transaction clears on its way (bounded, so no one pays for a backlog).
PURGE_BATCH = 100
T = TypeVar("T")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: str  # JSON object of the headers a replay repeats
    body: bytes


@dataclass
class IdempotentRequest:
    """One HTTP request that carries an ``Idempotency-Key``, while it is handled."""

    scope: str  # whose key: the caller's identity
    key: str
    fingerprint: str  # sha256 of method, path, query and body
    # How long a duplicate waits for the request holding the key before 409 (PostgreSQL).
    wait_seconds: float = 15.0
    # Set by the route before it runs its command: the answer built from the command's result.
    render: Callable[[Any], StoredResponse] | None = None
    # The answer the command's transaction stored (valid once the command returned: the
    # transaction committed; a retried transaction records again).
    recorded: StoredResponse | None = None


_CURRENT: ContextVar[IdempotentRequest | None] = ContextVar("idempotent_request", default=None)


@contextlib.contextmanager
def handling(request: IdempotentRequest) -> Iterator[IdempotentRequest]:
    """Make ``request`` the current one for the code run inside (threads started with a copy
    of the context, such as the API's thread pool, see it too)."""
    token = _CURRENT.set(request)
    try:
        yield request
    finally:
        _CURRENT.reset(token)


def current() -> IdempotentRequest | None:
    return _CURRENT.get()


class AnsweredError(Exception):
    """The key was already used for this very request and its answer is stored: replay it."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("this Idempotency-Key has already been answered")
        self.response = response


class KeyReusedError(DisputeError):
    """The key was used with a different request (HTTP 422)."""

    type_slug = "idempotency-key-reuse"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request")


class KeyInFlightError(DisputeError):
    """Another request with the key is still running after the wait (HTTP 409)."""

    type_slug = "idempotency-key-in-flight"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed")


def lookup(db: Database, *, scope: str, key: str, fingerprint: str, now: datetime) -> StoredResponse | None:
    """The stored answer for this key, if a command stored one (a read; writes nothing).
    Raises :class:`KeyReusedError` if the key answered a different request."""
    with db.read() as session:
        row = session.execute(
            select(IDEMPOTENCY_KEYS).where(IDEMPOTENCY_KEYS.c.scope == scope, IDEMPOTENCY_KEYS.c.key == key)
        ).first()
    if row is None or row.expires_at < now or row.status != "done":
        return None
    if row.fingerprint != fingerprint:
        raise KeyReusedError()
    return _stored(row)


def command(session: Session, now: datetime, work: Callable[[], T]) -> T:
    """Run ``work``, one command in ``session``'s transaction, under the current request's key:
    the key is taken before the command acts and its answer stored after, in the same
    transaction. Without an idempotent request (or a route that renders an answer) this is
    just ``work()``."""
    request = current()
    if request is None or request.render is None:
        return work()
    reserve(session, request, now)
    result = work()
    record(session, request, result)
    return result


def reserve(session: Session, request: IdempotentRequest, now: datetime) -> None:
    """Take the key in this transaction. Raises :class:`AnsweredError` if the same request was
    answered meanwhile, :class:`KeyReusedError` for another request, :class:`KeyInFlightError`
    if the request holding the key did not finish within the wait."""
    _purge(session, request, now)
    if session.get_bind().dialect.name == "postgresql":
        # The insert below waits for a concurrent holder of the key; bound that wait. The
        # bound stays for the rest of this command's transaction, where it only turns a
        # pathological lock wait into an error. (0 would mean "wait forever".)
        wait_ms = max(1, int(request.wait_seconds * 1000))
        session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
    try:
        with session.begin_nested():
            session.execute(
                insert(IDEMPOTENCY_KEYS).values(
                    scope=request.scope,
                    key=request.key,
                    fingerprint=request.fingerprint,
                    status="done",  # committed only with its answer (record), so never seen without one
                    created_at=now,
                    expires_at=now + KEEP_FOR,
                )
            )
    except IntegrityError:
        row = session.execute(
            select(IDEMPOTENCY_KEYS).where(
                IDEMPOTENCY_KEYS.c.scope == request.scope, IDEMPOTENCY_KEYS.c.key == request.key
            )
        ).first()
        if row is None or row.status != "done":
            raise KeyInFlightError() from None  # a claim of an older version, or gone meanwhile: retry
        if row.fingerprint != request.fingerprint:
            raise KeyReusedError() from None
        raise AnsweredError(_stored(row)) from None
    except OperationalError as exc:
        if "lock timeout" in str(exc.orig):
            raise KeyInFlightError() from None
        raise


def record(session: Session, request: IdempotentRequest, result: Any) -> None:
    """Store the answer rendered from the command's ``result`` with the key taken by :func:`reserve`."""
    assert request.render is not None
    response = request.render(result)
    session.execute(
        update(IDEMPOTENCY_KEYS)
        .where(IDEMPOTENCY_KEYS.c.scope == request.scope, IDEMPOTENCY_KEYS.c.key == request.key)
        .values(response_status=response.status, response_headers=response.headers, response_body=response.body)
    )
    request.recorded = response


def _purge(session: Session, request: IdempotentRequest, now: datetime) -> None:
    """Clear this key if it expired (or is an older version's dead claim), and a batch of other
    expired keys, skipping rows another transaction holds (PostgreSQL) so no one waits here."""
    expired = or_(
        IDEMPOTENCY_KEYS.c.expires_at < now,
        and_(IDEMPOTENCY_KEYS.c.status != "done", IDEMPOTENCY_KEYS.c.created_at < now - STALE_CLAIM),
    )
    session.execute(
        delete(IDEMPOTENCY_KEYS).where(
            IDEMPOTENCY_KEYS.c.scope == request.scope, IDEMPOTENCY_KEYS.c.key == request.key, expired
        )
    )
    batch = (
        select(IDEMPOTENCY_KEYS.c.scope, IDEMPOTENCY_KEYS.c.key)
        .where(IDEMPOTENCY_KEYS.c.expires_at < now)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(IDEMPOTENCY_KEYS).where(tuple_(IDEMPOTENCY_KEYS.c.scope, IDEMPOTENCY_KEYS.c.key).in_(batch)))


def _stored(row: Any) -> StoredResponse:
    return StoredResponse(row.response_status, row.response_headers or "{}", bytes(row.response_body or b""))
