"""Pure ASGI middleware: body-size caps, per-identity rate limits, Idempotency-Key replay."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from anyio.to_thread import run_sync

from api.auth import VERIFIED_ACTOR, UnauthenticatedError, actor_from_token
from api.problems import BodyTooLargeError, problem
from api.settings import Settings
from cases import idempotency
from cases.db import Database, DatabaseUnavailableError
from sla.clock import Clock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_KEY_LENGTH = 255
# Responses worth replaying; 401 and 429 say nothing about the request itself.
_NOT_STORED = {401, 429}
_REPLAYED_HEADERS = {"content-type", "etag", "location", "retry-after"}


class TokenBuckets:
    """A token bucket per identity, refilled continuously (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: str, now: float) -> float:
        """0.0 if allowed, else the seconds until a token is available."""
        with self._lock:
            tokens, stamp = self._buckets.get(identity, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens >= 1.0:
                self._buckets[identity] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:
                    self._buckets.clear()  # bounded memory; a reset only ever helps callers
                return 0.0
            self._buckets[identity] = (tokens, now)
            return (1.0 - tokens) / self.rate


class GuardMiddleware:
    def __init__(
        self, app: ASGIApp, *, settings: Settings, get_db: Callable[[], Database], clock: Callable[[], Clock]
    ) -> None:
        self.app = app
        self.settings = settings
        self.get_db = get_db
        self.clock = clock
        self.buckets = TokenBuckets(settings.rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path: str = scope.get("path", "")
        identity = self._identity(headers.get("authorization"), scope)
        if path.startswith("/v1/"):
            wait = self.buckets.take(identity, time.monotonic())
            if wait > 0:
                retry = str(max(1, int(wait + 0.999)))
                await problem(
                    429,
                    "rate-limited",
                    f"too many requests; retry in {retry} s",
                    instance=path,
                    headers={"Retry-After": retry},
                )(scope, receive, send)
                return
        limit = self.settings.max_body_bytes
        if path.endswith("/evidence") and scope.get("method") == "POST":
            limit = self.settings.max_upload_bytes + 64 * 1024  # multipart framing
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        key = headers.get("idempotency-key")
        if scope.get("method") != "POST" or key is None:
            await self.app(scope, _capped(receive, limit), send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await problem(
                422, "validation", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", instance=path
            )(scope, receive, send)
            return
        try:
            body = await _read_all(receive, limit)
        except _TooLarge:
            await self._too_large(scope, receive, send, limit)
            return
        await self._idempotent(scope, send, identity, key, body, path)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await problem(
            413, "payload-too-large", f"the request body exceeds {limit} bytes", instance=scope["path"], limit=limit
        )(scope, receive, send)

    def _identity(self, authorization: str | None, scope: Scope) -> str:
        if authorization and authorization.lower().startswith("bearer "):
            try:
                actor = actor_from_token(authorization[7:].strip(), self.settings)
                # Verified once here; the CurrentActor dependency reuses it (request.state).
                scope.setdefault("state", {})[VERIFIED_ACTOR] = (authorization, actor)
                return f"{actor.role}:{actor.id}"
            except UnauthenticatedError:
                pass
        return "anonymous:" + hashlib.sha256((authorization or "").encode()).hexdigest()[:16]

    async def _idempotent(self, scope: Scope, send: Send, identity: str, key: str, body: bytes, path: str) -> None:
        db = self.get_db()
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        deadline = time.monotonic() + self.settings.idempotency_wait_seconds
        while True:
            try:
                claim = await run_sync(
                    lambda: idempotency.claim(
                        db, scope=identity, key=key, fingerprint=fingerprint, now=self.clock().now()
                    )
                )
            except DatabaseUnavailableError:
                await problem(
                    503,
                    "unavailable",
                    "the database is busy; retry shortly",
                    instance=path,
                    headers={"Retry-After": "1"},
                )(scope, _empty_receive, send)
                return
            if claim.outcome == "mismatch":
                await problem(
                    422,
                    "idempotency-key-reuse",
                    "this Idempotency-Key was used with a different request",
                    instance=path,
                )(scope, _empty_receive, send)
                return
            if claim.outcome == "done" and claim.response is not None:
                await _replay(send, claim.response)
                return
            if claim.outcome == "owned":
                break
            if time.monotonic() > deadline:
                await problem(
                    409,
                    "idempotency-key-in-flight",
                    "a request with this Idempotency-Key is still being processed",
                    instance=path,
                    headers={"Retry-After": "1"},
                )(scope, _empty_receive, send)
                return
            await anyio.sleep(0.05)
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, _replaying(body), capture)
        finally:
            status = captured["status"]
            if status >= 500 or status in _NOT_STORED:
                await run_sync(lambda: idempotency.release(db, scope=identity, key=key))
            else:
                stored_headers = {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in captured["headers"]
                    if k.decode("latin-1").lower() in _REPLAYED_HEADERS
                }
                response = idempotency.StoredResponse(status, json.dumps(stored_headers), bytes(captured["body"]))
                await run_sync(lambda: idempotency.complete(db, scope=identity, key=key, response=response))


class _TooLarge(Exception):
    pass


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise _TooLarge
        if not message.get("more_body", False):
            break
    return bytes(chunks)


def _capped(receive: Receive, limit: int) -> Receive:
    """Count streamed bytes (a missing or lying Content-Length) and stop past the cap."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLargeError(limit)
        return message

    return wrapped


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


async def _replay(send: Send, stored: idempotency.StoredResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(stored.headers).items()]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
