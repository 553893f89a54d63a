"""Open-loop load against a real deployment with 1, 2 and 4 API worker processes on PostgreSQL.

    python -m bench.load --postgres postgresql+psycopg://USER@HOST:5432/DB [--workers 1,2,4]
        [--rates 20,40,80] [--duration 20] [--warmup 4] [--write-results]

For each worker count: a fresh schema of its own (dropped afterwards), `disputes db
upgrade`, `disputes serve --workers N` (bench/cluster.py), a few hundred cases filed
first so that reads and lists have something to find, then for each offered rate an
open-loop run: requests are scheduled on a fixed-rate timeline (request k at
start + k/rate) whatever the server's pace, and each latency is measured from its
*scheduled* instant, so a server that falls behind shows its queue instead of hiding it.

The mix, like a desk's day: filings, lifecycle commands with If-Match (assign, respond,
start_mediation, offers, settle, close: bench/lifecycles.py's "mediated" plan), messages,
reads of one case, and filtered lists. Printed: achieved throughput and p50/p99 per
operation per worker count and rate; ``--write-results`` also puts the table in
bench/results.md under its own heading (the rest of the file is kept).

The client runs in this process on the same 2 cores as the server and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.cluster import deployment_env, prepare_database, serve
from bench.lifecycles import CaseRun, LifecycleClient, Step, Transport

RESULTS = Path(__file__).resolve().parent / "results.md"
HEADING = "## Load: open-loop mix against 1, 2 and 4 API workers on PostgreSQL (issue #7)"
OPERATIONS = ("file", "command", "message", "read", "list")
# One slot per 1/20 of the requests: 3 filings, 7 lifecycle commands, 2 messages, 5 reads, 3 lists.
MIX = ("file",) * 3 + ("command",) * 7 + ("message",) * 2 + ("read",) * 5 + ("list",) * 3
PRELOAD = 300


@dataclass
class Run:
    """One open-loop run: latencies (ms from the scheduled instant) and failures by operation."""

    workers: int
    rate: float
    duration: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)  # a few failures, to say what they were
    late_start_ms: float = 0.0  # how far the generator itself fell behind its timeline, at most
    answered_in_window: int = 0  # answers that *arrived* within the measured window
    load_average: float = 0.0  # the machine's 1-minute load average right after the run (shared machine)

    def throughput(self) -> float:
        """Answers per second that arrived in the window (not the offered rate: a server
        that falls behind answers fewer than it was sent)."""
        return self.answered_in_window / self.duration


class Desk:
    """The cases the load works on: those ready for their next command (not in flight)
    and every case filed, for reads and messages."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.counter = itertools.count()
        self.ready: deque[CaseRun] = deque()
        self.filed: list[CaseRun] = []
        self.busy: set[str] = set()

    def new_case(self) -> CaseRun:
        return CaseRun.make(next(self.counter), self.tag, plan="mediated")

    def take_ready(self) -> CaseRun | None:
        for _ in range(len(self.ready)):
            case = self.ready.popleft()
            if case.case_id not in self.busy:
                return case
            self.ready.append(case)  # a message is being written on it; later
        return None

    def take_any(self, index: int) -> CaseRun | None:
        for offset in range(min(len(self.filed), 20)):
            case = self.filed[(index * 7919 + offset) % len(self.filed)]
            if case.case_id not in self.busy:
                return case
        return None


async def operation(client: LifecycleClient, desk: Desk, kind: str, index: int) -> str:
    """Send one request of ``kind``; return the operation it became (a command or message
    with no idle case to work on becomes a filing) or raise :class:`Failed`."""
    if kind in ("command", "message", "read"):
        case = desk.take_ready() if kind == "command" else desk.take_any(index)
        if case is None:
            kind = "file"
    if kind == "file":
        case = desk.new_case()
        sub = case.consumer
        status, headers, body = await client.call("POST", "/v1/cases", client.token(sub, "consumer"), case.filing())
        _expect(status, 201, body)
        case.case_id, case.version = json.loads(body)["id"], int(headers["etag"].strip('W/"'))
        case.done.append("file")
        desk.filed.append(case)
        desk.ready.append(case)
        return "file"
    if kind == "list":
        role = ("mediator", "merchant", "consumer")[index % 3]
        if role == "mediator":
            status, _, body = await client.call(
                "GET", "/v1/cases?state=assigned&limit=20", client.token(f"med-{index % 8}", "mediator")
            )
        elif role == "merchant":
            m = f"m-{index % 10}"
            status, _, body = await client.call("GET", "/v1/cases?limit=20", client.token(f"mu-{m}", "merchant", m))
        else:
            owner = desk.filed[index % len(desk.filed)].consumer
            status, _, body = await client.call("GET", "/v1/cases?limit=20", client.token(owner, "consumer"))
        _expect(status, 200, body)
        return "list"
    assert case is not None
    if kind == "read":
        status, _, body = await client.call("GET", f"/v1/cases/{case.case_id}", client.token(case.consumer, "consumer"))
        _expect(status, 200, body)
        return "read"
    desk.busy.add(case.case_id)
    try:
        if kind == "message":
            step = Step("message", "consumer", "/messages", {"body": f"Any news? ({index})"}, "message")
        else:
            step = case.steps[len(case.done) - 1]
        sub, role, merchant = case.actor(step.role)
        path = f"/v1/cases/{case.case_id}" + step.path.replace("{offer}", case.offer)
        status, headers, body = await client.call(
            "POST", path, client.token(sub, role, merchant), step.body, if_match=case.version
        )
        _expect(status, 201 if step.path in ("/messages", "/offers", "/responses") else 200, body)
        before, case.version = case.version, int(headers["etag"].strip('W/"'))
        if kind == "command":
            if step.name == "propose_offer":
                case.offer = f"off{before + 1}"
            case.done.append(step.name)
        return kind
    finally:
        desk.busy.discard(case.case_id)
        if kind == "command" and len(case.done) <= len(case.steps):
            desk.ready.append(case)


class Failed(Exception):
    pass


def _expect(status: int, wanted: int, body: bytes) -> None:
    if status != wanted and not (wanted in (200, 201) and status in (200, 201)):
        raise Failed(f"{status} {body[:200]!r}")


async def open_loop(client: LifecycleClient, desk: Desk, run: Run, warmup: float) -> None:
    interval = 1.0 / run.rate
    start = time.perf_counter() + 0.1
    measure_from = start + warmup
    measure_to = measure_from + run.duration
    total = int((warmup + run.duration) * run.rate)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        kind = MIX[index % len(MIX)]
        try:
            done_as = await operation(client, desk, kind, index)
        except (Failed, Transport) as exc:
            if scheduled >= measure_from:
                run.failures[kind] += 1
                if len(run.samples) < 5:
                    run.samples.append(f"{kind}: {str(exc)[:160]}")
            return
        answered = time.perf_counter()
        if measure_from <= answered < measure_to:
            run.answered_in_window += 1
        if scheduled >= measure_from:
            run.latencies[done_as].append((answered - scheduled) * 1000)

    for index in range(total):
        scheduled = start + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif scheduled >= measure_from:
            run.late_start_ms = max(run.late_start_ms, -delay * 1000)
        task = asyncio.create_task(one(index, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def preload(client: LifecycleClient, desk: Desk, count: int) -> None:
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await operation(client, desk, "file", i)

    await asyncio.gather(*(one(i) for i in range(count)))


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema of this run's own, dropped afterwards; the URL selects it."""
    name = f"load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def measure(url: str, workers: int, rates: list[float], duration: float, warmup: float) -> list[Run]:
    runs: list[Run] = []
    with fresh_schema(url) as schema_url:
        env = deployment_env(schema_url, DISPUTES_DB_POOL_SIZE="8", DISPUTES_DB_MAX_OVERFLOW="4")
        prepare_database(env)
        with serve(env, workers) as server:

            async def main() -> None:
                client = LifecycleClient(
                    server.port, env["DISPUTES_JWT_SECRET"], concurrency=256, timeout=120, per_connection=50
                )
                desk = Desk(uuid.uuid4().hex[:6])
                try:
                    await preload(client, desk, PRELOAD)
                    for rate in rates:
                        run = Run(workers, rate, duration)
                        await open_loop(client, desk, run, warmup)
                        run.load_average = os.getloadavg()[0]
                        runs.append(run)
                        print(_line(run), flush=True)
                finally:
                    client.close()

            asyncio.run(main())
    return runs


def _pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _line(run: Run) -> str:
    parts = [f"workers={run.workers} offered={run.rate:g}/s answered={run.throughput():.1f}/s"]
    for op in OPERATIONS:
        values = run.latencies.get(op, [])
        if values:
            parts.append(f"{op} p50={_pct(values, 50):.0f} p99={_pct(values, 99):.0f} ms")
    failed = sum(run.failures.values())
    if failed:
        parts.append(f"failed={failed} {run.samples[:2]}")
    return "  ".join(parts)


def table(runs: list[Run]) -> str:
    head = (
        "| workers | offered req/s | answered req/s | failed | "
        + " | ".join(f"{op} p50 / p99 ms" for op in OPERATIONS)
        + " | load avg |"
    )
    lines = [head, "|" + "---:|" * (5 + len(OPERATIONS))]
    for run in runs:
        cells = [str(run.workers), f"{run.rate:g}", f"{run.throughput():.1f}", str(sum(run.failures.values()))]
        for op in OPERATIONS:
            values = run.latencies.get(op, [])
            cells.append(f"{_pct(values, 50):.0f} / {_pct(values, 99):.0f}" if values else "")
        cells.append(f"{run.load_average:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(runs: list[Run], args: argparse.Namespace, seconds: float, load: tuple[float, float]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{HEADING}

- command: `python -m bench.load --postgres URL --workers {args.workers} --rates {args.rates} \
--duration {args.duration:g} --warmup {args.warmup:g} --write-results`
- date: {when}; {os.cpu_count()} cores; Python {platform.python_version()}; took {seconds / 60:.1f} min
- 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (other work shared the machine)

Each row: `disputes serve --workers N` on a fresh PostgreSQL schema (pool 8 + 4 overflow per worker,
no ticker in the API workers), {PRELOAD} cases filed first, then requests on a fixed-rate timeline for
{args.duration:g} s after a {args.warmup:g} s warm-up; latency from each request's scheduled instant.
Mix per 20 requests: 3 filings, 7 lifecycle commands with If-Match (assign, respond, start_mediation,
message, offer, accept, settle, close), 2 messages, 5 case reads, 3 filtered lists. The load
generator runs on the same 2 cores. "answered" counts answers that arrived within the measured
window: below the offered rate, the server fell behind and its queue (and latency) grew. "load avg"
is the machine's 1-minute load average after the row: other work shares these 2 cores, and a row
measured under a higher load average had less CPU.

{table(runs)}
"""


def _bounds(text_: str) -> tuple[int, int] | None:
    """Where this benchmark's section starts and ends in a results file, if it has one."""
    if HEADING not in text_:
        return None
    start = text_.index(HEADING)
    end = text_.find("\n## ", start + len(HEADING))
    return start, (end + 1 if end >= 0 else len(text_))


def load_section(text_: str) -> str:
    """This benchmark's section of a results file ("" if none): bench.run keeps it when it
    rewrites the file."""
    bounds = _bounds(text_)
    return text_[bounds[0] : bounds[1]] if bounds else ""


def write_results(text_block: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of bench/results.md (or append it), keeping the rest."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    bounds = _bounds(current)
    if bounds:
        after = current[bounds[1] :]
        current = current[: bounds[0]] + text_block.rstrip("\n") + "\n" + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text_block
    path.write_text(current, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_DATABASE_URL", ""),
        help="PostgreSQL URL (a schema of its own is created and dropped per worker count)",
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--rates", default="20,40,80", help="offered request rates per second, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=4.0, help="unmeasured seconds before each rate")
    parser.add_argument("--write-results", action="store_true", help="put the table in bench/results.md")
    args = parser.parse_args(argv)
    if not args.postgres.startswith("postgresql"):
        parser.error("--postgres postgresql+psycopg://... (or DISPUTES_TEST_DATABASE_URL) is required")
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    runs: list[Run] = []
    for workers in (int(w) for w in args.workers.split(",")):
        runs += measure(args.postgres, workers, [float(r) for r in args.rates.split(",")], args.duration, args.warmup)
    block = section(runs, args, time.perf_counter() - started, (load_start, os.getloadavg()[0]))
    print()
    print(block)
    if args.write_results:
        write_results(block)


if __name__ == "__main__":
    main()
