"""Pure ASGI middleware: authentication first, rate limits, body-size caps, Idempotency-Key.

The checks on an ``/v1/`` request, cheapest refusal first, and nothing touches the
database before the caller is known:

1. The bearer token is verified in memory. A request without a usable one is answered
   ``401`` here, before its body is read or anything is looked up; failed
   authentications are throttled per client address (``429``, answered after a short
   delay), so a flood of junk tokens costs one bucket per address, never one per token.
2. The caller's own rate bucket (``429``).
3. Body caps: a declared ``Content-Length`` over the cap is ``413`` at once; a streamed
   body (chunked, or a lying length) is counted as the app reads it, and passing the cap
   answers ``413`` as well, whatever the app made of the interrupted read.
4. ``Idempotency-Key``: a stored answer is replayed (a read); otherwise the request runs
   with its key in context, and the command it performs stores the key and its answer in
   its own transaction (cases/idempotency.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import anyio
from anyio.to_thread import run_sync

from api.answers import REPLAYED_HEADERS
from api.auth import VERIFIED_ACTOR, UnauthenticatedError, actor_from_token
from api.problems import BodyTooLargeError, error_problem, problem
from cases import idempotency
from runtime.settings import Settings
from sla.clock import Clock
from store.db import Database
from store.errors import DatabaseUnavailableError
from workflow.model import Actor

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_KEY_LENGTH = 255


class TokenBuckets:
    """A token bucket per key (a caller's identity, a client address), refilled continuously
    (per process). At most ``max_keys`` buckets are kept: the least recently used is
    forgotten first, and a forgotten bucket starts full again, which only favours its owner."""

    def __init__(self, per_minute: int, max_keys: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        # Insertion-ordered: every use moves a key to the end, so the first is the stalest.
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """0.0 if allowed, else the seconds until a token is available."""
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: Scope) -> str:
    """Whom failed authentications are counted against: the client's IP address (as the
    server saw it, or as its proxy reported it when uvicorn trusts the proxy's headers),
    an IPv6 client by its /64 network, which one subscriber usually holds whole."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _retry_after(wait: float) -> str:
    return str(max(1, int(wait + 0.999)))


class GuardMiddleware:
    def __init__(
        self, app: ASGIApp, *, settings: Settings, get_db: Callable[[], Database], clock: Callable[[], Clock]
    ) -> None:
        self.app = app
        self.settings = settings
        self.get_db = get_db
        self.clock = clock
        self.buckets = TokenBuckets(settings.rate_limit_per_minute)
        self.auth_failures = TokenBuckets(settings.auth_failures_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path: str = scope.get("path", "")
        actor: Actor | None = None
        if path.startswith("/v1/"):
            try:
                actor = self._authenticate(headers.get("authorization"), scope)
            except UnauthenticatedError as exc:
                await self._refuse_unauthenticated(scope, send, exc)
                return
            wait = self.buckets.take(f"{actor.role}:{actor.id}", time.monotonic())
            if wait > 0:
                retry = _retry_after(wait)
                await problem(
                    429,
                    "rate-limited",
                    f"too many requests; retry in {retry} s",
                    instance=path,
                    headers={"Retry-After": retry},
                )(scope, _empty_receive, send)
                return
        limit = self.settings.max_body_bytes
        if path.endswith("/evidence") and scope.get("method") == "POST":
            limit = self.settings.max_upload_bytes + 64 * 1024  # multipart framing
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, send, limit)
            return
        key = headers.get("idempotency-key")
        if scope.get("method") != "POST" or key is None or actor is None:
            await _capped(self.app, scope, receive, send, limit)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await problem(
                422, "validation", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", instance=path
            )(scope, _empty_receive, send)
            return
        try:
            body = await _read_all(receive, limit)
        except _TooLargeError:
            await _too_large(scope, send, limit)
            return
        await self._idempotent(scope, send, f"{actor.role}:{actor.id}", key, body, path)

    def _authenticate(self, authorization: str | None, scope: Scope) -> Actor:
        """The caller of a bearer token, verified in memory (the CurrentActor dependency
        reuses it from request.state); :class:`UnauthenticatedError` otherwise."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("a bearer token is required")
        actor = actor_from_token(token.strip(), self.settings)
        scope.setdefault("state", {})[VERIFIED_ACTOR] = (authorization, actor)
        return actor

    async def _refuse_unauthenticated(self, scope: Scope, send: Send, exc: UnauthenticatedError) -> None:
        """401, or 429 once the client's address used up its failed authentications.

        The 429 is held back a moment (``auth_failure_delay_seconds``, at most until the
        bucket refills): a client flooding junk tokens back to back on a connection then
        gets one answer per connection per delay instead of as many as the server can
        write, so the flood stops taking the server's time from real callers (bench B8).
        Holding an answer costs a sleeping coroutine, no thread and no database work."""
        wait = self.auth_failures.take(client_address(scope), time.monotonic())
        if wait > 0:
            await anyio.sleep(min(wait, self.settings.auth_failure_delay_seconds))
            retry = _retry_after(wait)
            response = problem(
                429,
                "rate-limited",
                f"too many failed authentications from your address; retry in {retry} s",
                instance=scope.get("path"),
                headers={"Retry-After": retry},
            )
        else:
            response = error_problem(exc, scope.get("path", ""))
        await response(scope, _empty_receive, send)

    async def _idempotent(self, scope: Scope, send: Send, identity: str, key: str, body: bytes, path: str) -> None:
        db = self.get_db()
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        try:
            stored = await run_sync(
                lambda: idempotency.lookup(db, scope=identity, key=key, fingerprint=fingerprint, now=self.clock().now())
            )
        except (idempotency.KeyReusedError, DatabaseUnavailableError) as exc:
            await error_problem(exc, path)(scope, _empty_receive, send)
            return
        if stored is not None:
            await _send_stored(send, stored, replayed=True)
            return
        request = idempotency.IdempotentRequest(
            scope=identity, key=key, fingerprint=fingerprint, wait_seconds=self.settings.idempotency_wait_seconds
        )
        answer = _Captured()
        with idempotency.handling(request):
            await self.app(scope, _replaying(body), answer.send)
        recorded = request.recorded
        if recorded is not None and 200 <= answer.status < 300:
            # The command committed this answer with its events: send exactly those bytes, so
            # the first answer and every replay are the same (plus the app's other headers).
            await _send_stored(send, recorded, replayed=False, extra=answer.other_headers())
        else:
            await answer.forward(send)


class _Captured:
    """The app's answer, held back until we know whether a stored answer replaces it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        self.messages.append(message)

    def other_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (k, v)
            for k, v in self.headers
            if k.lower() != b"content-length" and k.decode("latin-1").lower() not in REPLAYED_HEADERS
        ]

    async def forward(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


class _TooLargeError(Exception):
    pass


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    await problem(
        413, "payload-too-large", f"the request body exceeds {limit} bytes", instance=scope["path"], limit=limit
    )(scope, _empty_receive, send)


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise _TooLargeError
        if not message.get("more_body", False):
            break
    return bytes(chunks)


async def _capped(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """Run ``app`` counting the body bytes it reads (a chunked body has no Content-Length, and a
    declared one may lie). Past the cap the read fails, and whatever the app answers to that
    (a framework answers a failed body read with 400) is replaced by a 413."""
    seen = 0
    over = False
    answered = False

    async def counted() -> Message:
        nonlocal seen, over
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                over = True
                raise BodyTooLargeError(limit)
        return message

    async def answer(message: Message) -> None:
        nonlocal answered
        if not over:
            await send(message)
        elif not answered and message["type"] == "http.response.start":
            answered = True
            await _too_large(scope, send, limit)

    try:
        await app(scope, counted, answer)
    except Exception:
        if not over:
            raise
        # The interrupted read surfaced as an error (re-raised after any 500 was sent): answered below.
    if over and not answered:
        await _too_large(scope, send, limit)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return receive


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send_stored(
    send: Send, stored: idempotency.StoredResponse, *, replayed: bool, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(stored.headers).items()]
    headers += extra
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
