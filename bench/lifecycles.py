"""Many disputes driven concurrently through whole lifecycles over HTTP, every answer recorded.

Each case follows a :class:`Plan` (file, assign, ..., settled or closed), one command at a
time with the If-Match of the version it last saw, while all cases run at once on a pool
of keep-alive connections. The client keeps books the way a careful real client would:

- a 2xx answer is an *acknowledgement*: :class:`Ack` records the versions before and after;
- no answer (connection reset by a killed worker, timeout) or a 5xx is *unacknowledged*:
  the client re-reads the case and its log to learn whether the command happened (its
  event is the one right after the version it sent), records an :class:`Unacked` with
  that finding, and either moves on or sends the command again;
- a filing without an answer is looked up by its consumer, who files exactly one case.

tests/deploy/ then checks the database against these books. Standard library plus the
engine's token minting; the HTTP connection is bench.loadgen's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api.auth import mint_token
from bench.loadgen import Connection
from runtime.settings import Settings

MERCHANTS = 10
KEEP_ALIVE_SECONDS = 3.0  # below uvicorn's default keep-alive timeout (5 s)
MEDIATORS = 8


@dataclass(frozen=True)
class Step:
    """One command: who sends it where, and the event that shows it happened."""

    name: str
    role: str  # consumer, merchant, mediator, senior_mediator
    path: str  # under /v1/cases/{id}; "{offer}" is the open offer's id
    body: dict[str, Any]
    event: str  # type of the command's first event
    trigger: str | None = None
    # A step that may lose a race to the ticker: refused because the case already
    # reached ``race_state`` is done, not an error.
    race_state: str | None = None


def _move(role: str, trigger: str, **extra: Any) -> Step:
    return Step(trigger, role, "/transitions", {"trigger": trigger, **extra}, "transitioned", trigger)


RESPOND = Step("respond", "merchant", "/responses", {"statement": "We will look into it."}, "merchant_responded")
# The full claim: so many complaints against so few merchants get them flagged by the
# tickers' supervision runs, and a flagged merchant may offer nothing less (supervision.cedar).
OFFER = Step("propose_offer", "merchant", "/offers", {"amount": 29900, "currency": "CNY"}, "offer_proposed")
ACCEPT = Step("accept_offer", "consumer", "/offers/{offer}/accept", {}, "offer_accepted")


def _message(role: str, text: str) -> Step:
    return Step(f"message:{role}", role, "/messages", {"body": text}, "message")


# The ways a dispute goes (the default workflow, docs/operators.md), as command sequences after filing.
PLANS: dict[str, tuple[Step, ...]] = {
    "mediated": (
        _move("mediator", "assign"),
        RESPOND,
        _move("mediator", "start_mediation"),
        _message("consumer", "Any news? It is still broken."),
        OFFER,
        ACCEPT,
        _move("mediator", "settle"),
        _move("mediator", "close"),
    ),
    # The merchant concedes; the case waits in `settled` for its fulfilment clock,
    # which a ticker fires (close as system) unless the mediator closes first.
    "conceded": (_move("mediator", "assign"), _move("merchant", "accept_claim")),
    "withdrawn": (
        _move("mediator", "assign"),
        _message("merchant", "We sent a replacement yesterday."),
        _move("consumer", "withdraw", reason="The replacement arrived."),
    ),
    "escalated": (
        _move("mediator", "assign"),
        RESPOND,
        _move("mediator", "escalate", reason="The parties are far apart."),
        _move(
            "senior_mediator",
            "rule",
            data={"decision": "partial", "awarded_amount": 20000, "citations": ["crpl-24"]},
            reason="Photos.",
        ),
        _move("mediator", "close"),
    ),
    "rejected": (_move("mediator", "reject", reason="Outside the desk's remit."),),
}
MIX = ("mediated", "conceded", "mediated", "withdrawn", "escalated", "mediated", "conceded", "rejected")
# The mediator closing a conceded case while a ticker may be closing it too.
CLOSE_RACE = Step("close", "mediator", "/transitions", {"trigger": "close"}, "transitioned", "close", "closed")


@dataclass
class CaseRun:
    """One case's identities, plan and progress."""

    index: int
    plan: str
    consumer: str
    merchant_id: str
    mediator: str
    senior: str
    case_id: str = ""
    version: int = 0
    offer: str = ""
    done: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, index: int, tag: str, plan: str | None = None) -> CaseRun:
        return cls(
            index=index,
            plan=plan or MIX[index % len(MIX)],
            consumer=f"c-{tag}-{index}",
            merchant_id=f"m-{index % MERCHANTS}",
            mediator=f"med-{index % MEDIATORS}",
            senior=f"sen-{index % 3}",
        )

    @property
    def steps(self) -> tuple[Step, ...]:
        return PLANS[self.plan]

    def actor(self, role: str) -> tuple[str, str, str | None]:
        if role == "consumer":
            return self.consumer, role, None
        if role == "merchant":
            return f"mu-{self.merchant_id}", role, self.merchant_id
        if role == "mediator":
            return self.mediator, role, None
        return self.senior, role, None

    def filing(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "order_ref": f"ORD-{self.consumer}",
            "category": "product_quality",
            "subject": "电水壶两天就坏了",
            "description": "The kettle stopped heating after two days; the shop does not answer.",
            "claim": {"amount": 29900, "currency": "CNY"},
        }


@dataclass(frozen=True)
class Ack:
    case_id: str
    step: str
    actor_id: str
    event: str
    trigger: str | None
    before: int  # the If-Match sent (0 for a filing)
    after: int  # the ETag answered


@dataclass(frozen=True)
class Unacked:
    case_id: str  # "" for a filing never found
    step: str
    actor_id: str
    event: str
    trigger: str | None
    before: int
    why: str  # "connection", "timeout" or the status
    happened: bool  # what the client found on re-reading


@dataclass
class Books:
    """Everything the client was told, and what it found out about the rest."""

    acks: list[Ack] = field(default_factory=list)
    unacked: list[Unacked] = field(default_factory=list)
    refused: list[tuple[str, str, int, str]] = field(default_factory=list)  # case, step, status, detail
    lost_races: list[str] = field(default_factory=list)  # cases a ticker closed first
    statuses: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0


class Transport(Exception):
    """No HTTP answer: the connection failed or timed out."""


class LifecycleClient:
    """Drives :class:`CaseRun`\\ s against one server port with ``concurrency`` connections."""

    def __init__(
        self, port: int, secret: str, *, concurrency: int = 32, timeout: float = 60, per_connection: int = 20
    ) -> None:
        self.port = port
        # Keep-alive connections stay with the worker process that accepted them; opening
        # them all at once would pin the load on whichever workers were accepting then.
        # Like many short-lived clients, each connection is closed after a few requests.
        self.per_connection = per_connection
        self.used: dict[int, int] = {}
        self.settings = Settings(environment="test", jwt_secret=secret)  # only the secret matters for minting
        self.timeout = timeout
        self.slots = asyncio.Semaphore(concurrency)
        # Idle keep-alive connections with the instant each was last used.
        self.idle: list[tuple[Connection, float]] = []
        self.tokens: dict[tuple[str, str, str | None], str] = {}
        self.books = Books()

    def token(self, sub: str, role: str, merchant_id: str | None = None) -> str:
        key = (sub, role, merchant_id)
        if key not in self.tokens:
            self.tokens[key] = mint_token(
                self.settings,
                sub=sub,
                role=role,
                merchant_id=merchant_id,
                now=datetime.now(UTC),
                ttl=timedelta(days=1),
            )
        return self.tokens[key]

    async def call(
        self, method: str, path: str, token: str, body: Any = None, if_match: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a pooled keep-alive connection; :class:`Transport` if no answer."""
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Authorization: Bearer {token}"]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        if if_match is not None:
            lines.append(f'If-Match: "{if_match}"')
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        async with self.slots:
            self.books.requests += 1
            conn: Connection | None = None
            try:
                conn = await self._connection()
                answer = await asyncio.wait_for(conn.send(raw), self.timeout)
            except TimeoutError as exc:
                if conn is not None:
                    self.used.pop(id(conn), None)
                    conn.close()
                self.books.statuses["timeout"] += 1
                raise Transport("timeout") from exc
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                if conn is not None:
                    self.used.pop(id(conn), None)
                    conn.close()
                self.books.statuses["connection"] += 1
                raise Transport("connection") from exc
            uses = self.used.pop(id(conn), 0) + 1
            if answer[1].get("connection", "").lower() == "close" or uses >= self.per_connection:
                conn.close()
            else:
                self.used[id(conn)] = uses
                self.idle.append((conn, time.monotonic()))
            self.books.statuses[str(answer[0])] += 1
            return answer

    async def _connection(self) -> Connection:
        """An idle connection, unless the server may have closed it meanwhile (uvicorn ends
        keep-alive connections idle for 5 s); then a new one."""
        while self.idle:
            conn, last_used = self.idle.pop()
            if time.monotonic() - last_used < KEEP_ALIVE_SECONDS:
                return conn
            self.used.pop(id(conn), None)
            conn.close()
        return await Connection.open(self.port)

    def close(self) -> None:
        for conn, _ in self.idle:
            conn.close()
        self.idle.clear()

    async def read(self, path: str) -> Any:
        """GET as an auditor until it answers 200 (workers may be restarting)."""
        token = self.token("aud-load", "auditor")
        for attempt in range(60):
            try:
                status, _, body = await self.call("GET", path, token)
                if status == 200:
                    return json.loads(body)
            except Transport:
                pass
            await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))
        raise RuntimeError(f"GET {path} kept failing")

    async def run(self, cases: list[CaseRun], extra: dict[str, tuple[Step, ...]] | None = None) -> Books:
        """Drive every case through its plan (or through ``extra[case_id]`` if given) at once."""
        await asyncio.gather(*(self.drive(case, extra.get(case.case_id) if extra else None) for case in cases))
        return self.books

    async def drive(self, case: CaseRun, steps: tuple[Step, ...] | None = None) -> None:
        if not case.case_id:
            await self.file(case)
        for step in steps if steps is not None else case.steps:
            await self.command(case, step)

    async def file(self, case: CaseRun) -> None:
        sub, role, merchant = case.actor("consumer")
        for _ in range(20):
            try:
                status, headers, body = await self.call("POST", "/v1/cases", self.token(sub, role), case.filing())
            except Transport as exc:
                status, why = 0, str(exc)
            else:
                if status == 201:
                    created = json.loads(body)
                    case.case_id, case.version = created["id"], _etag(headers)
                    self.books.acks.append(Ack(case.case_id, "file", sub, "filed", None, 0, case.version))
                    case.done.append("file")
                    return
                if status < 500:
                    raise RuntimeError(f"filing refused: {status} {body[:300]!r}")
                why = str(status)
            # Did it happen? The consumer's own cases say so: this consumer files once.
            found = await self._own_cases(case)
            happened = bool(found)
            self.books.unacked.append(
                Unacked(found[0]["id"] if found else "", "file", sub, "filed", None, 0, why, happened)
            )
            if happened:
                case.case_id, case.version = found[0]["id"], int(found[0]["version"])
                case.done.append("file")
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"case {case.index}: filing failed 20 times")

    async def _own_cases(self, case: CaseRun) -> list[dict[str, Any]]:
        token = self.token(case.consumer, "consumer")
        for attempt in range(60):
            try:
                status, _, body = await self.call("GET", "/v1/cases?limit=5", token)
                if status == 200:
                    data: list[dict[str, Any]] = json.loads(body)["data"]
                    return data
            except Transport:
                pass
            await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))
        raise RuntimeError(f"case {case.index}: cannot list the consumer's cases")

    async def command(self, case: CaseRun, step: Step) -> None:
        sub, role, merchant = case.actor(step.role)
        path = f"/v1/cases/{case.case_id}" + step.path.replace("{offer}", case.offer)
        for _ in range(20):
            before = case.version
            try:
                status, headers, body = await self.call(
                    "POST", path, self.token(sub, role, merchant), step.body, if_match=before
                )
            except Transport as exc:
                status, headers, body, why = 0, {}, b"", str(exc)
            else:
                why = str(status)
                if 200 <= status < 300:
                    case.version = _etag(headers)
                    self._done(case, step, before)
                    self.books.acks.append(
                        Ack(case.case_id, step.name, sub, step.event, step.trigger, before, case.version)
                    )
                    return
                if status < 500:
                    self.books.refused.append((case.case_id, step.name, status, body[:300].decode(errors="replace")))
            # No acknowledgement: read the case and its log to learn what became of it.
            current = await self.read(f"/v1/cases/{case.case_id}")
            happened = False
            if int(current["version"]) > before:
                events = await self.read(f"/v1/cases/{case.case_id}/events?limit=200")
                following = [e for e in events["data"] if e["seq"] == before + 1]
                happened = bool(following) and _matches(following[0], sub, step)
            case.version = int(current["version"])
            if status == 0 or status >= 500:
                self.books.unacked.append(
                    Unacked(case.case_id, step.name, sub, step.event, step.trigger, before, why, happened)
                )
            elif happened:
                # Refused because an earlier unanswered attempt of this very command landed
                # after the client had looked (its COMMIT was still on its way): it happened.
                self.books.unacked.append(
                    Unacked(case.case_id, step.name, sub, step.event, step.trigger, before, f"{why}: late", True)
                )
            if happened:
                self._done(case, step, before)
                return
            if step.race_state is not None and current["state"] == step.race_state:
                self.books.lost_races.append(case.case_id)
                return
            if 400 <= status < 500 and status not in (409, 412):
                raise RuntimeError(f"case {case.case_id} {step.name}: {status} {body[:300]!r}")
            await asyncio.sleep(0.05 if status else 0.2)
        raise RuntimeError(f"case {case.case_id}: {step.name} failed 20 times")

    def _done(self, case: CaseRun, step: Step, before: int) -> None:
        if step is OFFER:
            case.offer = f"off{before + 1}"  # an offer's id is its event's seq
        case.done.append(step.name)


def _etag(headers: dict[str, str]) -> int:
    return int(headers["etag"].strip('W/"'))


def _matches(event: dict[str, Any], actor_id: str, step: Step) -> bool:
    if event["type"] != step.event or event["actor"]["id"] != actor_id:
        return False
    return step.trigger is None or event.get("trigger") == step.trigger


def drive(port: int, secret: str, cases: list[CaseRun], *, concurrency: int = 32, **kwargs: Any) -> Books:
    """Run :meth:`LifecycleClient.run` to completion (a fresh event loop)."""

    async def main() -> Books:
        client = LifecycleClient(port, secret, concurrency=concurrency)
        try:
            return await client.run(cases, **kwargs)
        finally:
            client.close()

    started = time.perf_counter()
    books = asyncio.run(main())
    books.seconds = time.perf_counter() - started
    return books
