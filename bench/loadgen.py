"""The HTTP load generator, run as its own process: ``python -m bench.loadgen < phases.json``.

Standard library only (asyncio, raw HTTP/1.1 on keep-alive connections), so that it
costs the shared CPUs as little as possible and the same for both servers.

Every case runs the B1 cycle over HTTP (file, assign, respond, start_mediation,
comment, request_info, provide_info, propose_offer, accept_offer, settle, close),
each command with the If-Match of the previous answer's ETag.

Phases:
- ``closed``: ``concurrency`` connections, each driving its own cases back to back;
  reports completed commands per second (peak throughput). With ``steps`` (e.g. 1: the
  filing alone) each case stops after that many commands and a new one is filed.
- ``open``: commands arrive at ``rate`` per second (Poisson), whatever the server's
  pace; each arrival advances a case that is ready, or files a new one. Latency is
  measured from the scheduled arrival, so a slow server cannot hide its queue.
- ``junk``: a flood of filings with junk bearer tokens (well formed, each one different,
  signed with a key the server does not know; each with an Idempotency-Key) on
  ``connections`` connections back to back, ignoring 429s as an attacker would; reports
  the answers by status.

Input (stdin, JSON): a list of phases, run one after the other (each names its server's
port and mode). Result (stdout, JSON): per phase, completed, seconds, errors by status, a
few error samples, and the latencies in ms of the commands in the measured window.

A connection the server closes or resets under a request (``IncompleteReadError``,
``ConnectionResetError``, ...) fails that request: it is counted under the error key
``"connection"`` (no answer, so no latency), the connection is dropped and the next
request opens a new one. The generator itself never stops for it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

STEPS = 11
# What a server closing or resetting a keep-alive connection looks like to this side:
# EOF mid-answer (IncompleteReadError), ConnectionResetError, BrokenPipeError, a refused reconnect.
DROPPED = (asyncio.IncompleteReadError, OSError)
FILE_BODY = {
    "merchant_id": "m-1",
    "order_ref": "ORD-1001",
    "category": "product_quality",
    "subject": "电水壶两天就坏了",
    "description": "The kettle stopped heating after two days; the shop does not answer.",
    "claim": {"amount": 29900, "currency": "CNY"},
}


@dataclass
class CaseState:
    step: int = 0
    case_id: str = ""
    version: int = 0
    ids: dict[str, str] = field(default_factory=dict)


def engine_request(state: CaseState) -> tuple[str, str, Any]:
    """(role, path, body) of the engine's API for the case's next command."""
    base = f"/v1/cases/{state.case_id}"
    step = state.step
    if step == 0:
        return "consumer", "/v1/cases", FILE_BODY
    if step == 1:
        return "mediator", f"{base}/transitions", {"trigger": "assign"}
    if step == 2:
        return "merchant", f"{base}/responses", {"statement": "We will check the kettle and come back."}
    if step == 3:
        return "mediator", f"{base}/transitions", {"trigger": "start_mediation"}
    if step == 4:
        return "consumer", f"{base}/messages", {"body": "Any news? The kettle is still broken."}
    if step == 5:
        state.ids["rq"] = f"rq{state.version + 1}"
        return "mediator", f"{base}/info-requests", {"party": "merchant", "question": "Which batch was it?"}
    if step == 6:
        return "merchant", f"{base}/info-requests/{state.ids['rq']}/answer", {"answer": "Batch 2026-02."}
    if step == 7:
        state.ids["off"] = f"off{state.version + 1}"
        return "merchant", f"{base}/offers", {"amount": 15000, "currency": "CNY"}
    if step == 8:
        return "consumer", f"{base}/offers/{state.ids['off']}/accept", {}
    if step == 9:
        return "mediator", f"{base}/transitions", {"trigger": "settle"}
    return "mediator", f"{base}/transitions", {"trigger": "close"}


def bare_request(state: CaseState) -> tuple[str, str, Any]:
    if state.step == 0:
        return "consumer", "/bare/cases", FILE_BODY
    return "mediator", f"/bare/cases/{state.case_id}/steps/{state.step}", {"data": {"step": state.step}}


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            body = b"".join(chunks)
        else:
            body = b""
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


class Driver:
    def __init__(self, config: dict[str, Any]) -> None:
        self.port = int(config["port"])
        self.tokens: dict[str, str] = config["tokens"]
        self.build = engine_request if config["mode"] == "engine" else bare_request
        self.errors: collections.Counter[int | str] = collections.Counter()
        self.samples: list[str] = []
        self.connections = 0  # opened, reopenings included

    def raw(self, state: CaseState) -> bytes:
        role, path, body = self.build(state)
        payload = json.dumps(body).encode()
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            f"Authorization: Bearer {self.tokens[role]}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        if state.step > 0:
            lines.append(f'If-Match: "{state.version}"')
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    def report(self) -> dict[str, Any]:
        return {
            "errors": {str(k): v for k, v in self.errors.items()},
            "samples": self.samples,
            "dropped": self.errors["connection"],
            "opened": self.connections,
        }

    async def open(self) -> Connection:
        self.connections += 1
        return await Connection.open(self.port)

    def dropped(self, state: CaseState, exc: BaseException) -> None:
        """The server closed the connection under this request: a failed request."""
        self.errors["connection"] += 1
        if len(self.samples) < 5:
            self.samples.append(f"step {state.step}: connection lost: {type(exc).__name__}: {exc}"[:300])

    async def command(self, conn: Connection, state: CaseState) -> bool:
        """Send the case's next command; advance the case on success."""
        status, headers, body = await conn.send(self.raw(state))
        if not 200 <= status < 300:
            self.errors[status] += 1
            if len(self.samples) < 5:
                self.samples.append(f"step {state.step}: {status} {body[:300].decode(errors='replace')}")
            return False
        etag = headers.get("etag", "").strip('W/"')
        state.version = int(etag) if etag.isdigit() else state.version + 1
        if state.step == 0:
            state.case_id = headers["location"].rsplit("/", 1)[-1]
        state.step += 1
        return True


async def closed_loop(config: dict[str, Any]) -> dict[str, Any]:
    driver = Driver(config)
    warmup, duration = float(config.get("warmup", 0)), float(config["duration"])
    steps = int(config.get("steps", STEPS))
    start = time.perf_counter()
    measure_from, deadline = start + warmup, start + warmup + duration
    latencies: list[float] = []

    async def worker() -> None:
        conn: Connection | None = None
        try:
            state = CaseState()
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    conn = conn or await driver.open()
                    ok = await driver.command(conn, state)
                except DROPPED as exc:
                    driver.dropped(state, exc)
                    if conn is not None:
                        conn.close()
                    conn, ok = None, False
                done = time.perf_counter()
                if sent >= measure_from and done <= deadline and ok:
                    latencies.append((done - sent) * 1000)
                if not ok or state.step == steps:
                    state = CaseState()
        finally:
            if conn is not None:
                conn.close()

    await asyncio.gather(*(worker() for _ in range(int(config["concurrency"]))))
    return {"completed": len(latencies), "seconds": duration, "latencies_ms": latencies, **driver.report()}


async def open_loop(config: dict[str, Any]) -> dict[str, Any]:
    driver = Driver(config)
    rate, warmup, duration = float(config["rate"]), float(config.get("warmup", 0)), float(config["duration"])
    rng = random.Random(int(config.get("seed", 1)))
    idle: list[Connection] = []
    ready: collections.deque[CaseState] = collections.deque()
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + duration
    in_flight = 0
    peak_in_flight = 0

    async def one(state: CaseState, scheduled: float) -> None:
        nonlocal in_flight, peak_in_flight
        in_flight += 1
        peak_in_flight = max(peak_in_flight, in_flight)
        conn = idle.pop() if idle else None
        try:
            conn = conn or await driver.open()
            ok = await driver.command(conn, state)
        except DROPPED as exc:
            # No answer: a failed request, not a latency. The connection is done; the next
            # request that finds no idle one opens a new one. The case is dropped too (its
            # command may or may not have been applied).
            driver.dropped(state, exc)
            if conn is not None:
                conn.close()
            return
        finally:
            in_flight -= 1
        idle.append(conn)
        if scheduled >= measure_from:
            latencies.append((time.perf_counter() - scheduled) * 1000)
        if ok and state.step < STEPS:
            ready.append(state)

    arrival = start
    while True:
        arrival += rng.expovariate(rate)
        if arrival > end:
            break
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(ready.popleft() if ready else CaseState(), arrival))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return {
        "completed": len(latencies),
        "seconds": duration,
        "latencies_ms": latencies,
        "connections": len(idle),
        "peak_in_flight": peak_in_flight,
        **driver.report(),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def junk_token(index: int) -> str:
    """A well-formed HS256 JWT the server cannot verify: a fresh subject, a foreign key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": f"junk-{index}", "role": "consumer", "exp": 4_000_000_000}).encode())
    signature = hmac.new(b"not-the-server-secret", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


async def junk_flood(config: dict[str, Any]) -> dict[str, Any]:
    port, duration = int(config["port"]), float(config["duration"])
    payload = json.dumps(FILE_BODY).encode()
    answers: collections.Counter[int | str] = collections.Counter()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + duration

    def raw() -> bytes:
        index = next(counter)
        lines = [
            "POST /v1/cases HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Authorization: Bearer {junk_token(index)}",
            f"Idempotency-Key: junk-{index}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def worker() -> None:
        conn: Connection | None = None
        while time.perf_counter() < deadline:
            try:
                conn = conn or await Connection.open(port)
                status, _, _ = await conn.send(raw())
                answers[status] += 1
            except DROPPED:
                answers["connection"] += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(int(config["connections"]))))
    return {"answers": {str(k): v for k, v in answers.items()}, "seconds": duration}


async def phases(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runners = {"closed": closed_loop, "open": open_loop, "junk": junk_flood}
    results = []
    for config in configs:
        results.append(await runners[config["phase"]](config))
    return results


def main() -> None:
    """stdin: a list of phase configurations, run one after the other; stdout: their results."""
    configs = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(phases(configs))))


if __name__ == "__main__":
    main()
