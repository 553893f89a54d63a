"""B7: filing throughput and ``GET /v1/cases`` latency with 1,000,000 cases versus 10,000.

On the shared scale databases (bench/bulk.py; people are spread so that every
consumer has 10 cases, every merchant 100 and every mediator ~200 at both sizes, so
each query returns the same number of rows at both sizes). Filing goes through
``CaseService.file`` in-process (sequential); lists go through the real server
(uvicorn subprocess, one per database) on one keep-alive connection each, sequentially.
Both sizes are measured in turn, round by round and request by request, so that a
change of the machine's load falls on both alike. Flat is the goal:
the harness reads it as a ratio <= 1.3 (the B3 threshold); the project's targets
(docs/architecture.md) set no number.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from bench.bulk import SWEEP_AT, ScaleDb, people, scale_db
from bench.common import AUDITOR, CONSUMER, Outcome, Row, fmt_ms, fmt_rate, log, make_service, median, new_case
from bench.context import Context
from bench.server import Client, engine_env, new_secret, token_for, uvicorn_server
from cases.queries import encode_cursor
from sla.clock import ManualClock
from workflow.model import Actor

NAME = "B7"
FLAT = 1.3


def filing_rates(ctx: Context, dbs: Sequence[ScaleDb]) -> list[float]:
    """Filings per second on each database: the median of 3 x ``ctx.runs`` short rounds, taken in
    turn (A B, B A, A B, ...) so that a change in the machine's load during the run (another
    process, the disk catching up) falls on every size alike instead of on the one measured last.
    On a shared 2-core machine one round of 100 filings read anywhere from 270 to 600 cases/s on
    the same database; five rounds per size, minutes apart, made the ratio a coin toss."""
    services = [make_service(db.url, clock=ManualClock(SWEEP_AT)) for db in dbs]
    count = ctx.pick(quick=20, full=100)
    rounds = 3 * ctx.runs
    try:
        for service in services:
            for _ in range(10):
                service.file(actor=CONSUMER, new_case=new_case())
        rates: list[list[float]] = [[] for _ in services]
        for run in range(rounds):
            turn = list(range(len(services)))
            for index in turn if run % 2 == 0 else reversed(turn):
                start = time.perf_counter()
                for _ in range(count):
                    services[index].file(actor=CONSUMER, new_case=new_case())
                rates[index].append(count / (time.perf_counter() - start))
        return [median(r) for r in rates]
    finally:
        for service in services:
            service.db.dispose()


def queries(db: ScaleDb, secret: str) -> dict[str, tuple[str, str]]:
    """name -> (token, path); the same people and result sizes at every database size."""
    consumer, merchant, mediator = people(5000, db.cases)
    auditor = token_for(secret, AUDITOR)
    deep = encode_cursor(db.first_pk + (db.last_pk - db.first_pk) // 100)
    return {
        "first page (auditor, 50 newest)": (auditor, "/v1/cases?limit=50"),
        "deep cursor page (auditor, 99% down)": (auditor, f"/v1/cases?limit=50&cursor={deep}"),
        "consumer's own cases": (token_for(secret, Actor(consumer, "consumer")), "/v1/cases?limit=50"),
        "merchant, ?state=filed": (
            token_for(secret, Actor("mu-50", "merchant", merchant_id=merchant)),
            "/v1/cases?limit=50&state=filed",
        ),
        "mediator, ?state=assigned (own)": (
            token_for(secret, Actor(mediator, "mediator")),
            "/v1/cases?limit=50&state=assigned",
        ),
        "auditor, ?breaching=true": (auditor, "/v1/cases?limit=50&breaching=true"),
    }


def list_latencies(ctx: Context, dbs: Sequence[ScaleDb]) -> list[dict[str, float]]:
    """Each list's median latency on each database: one server per database, the requests
    taken in turn like the filing rounds (a list takes 1 to 5 ms over HTTP, almost none of
    it in the database, and sequential runs a minute apart drifted by up to 1.9x)."""
    secret = new_secret()
    repeat = ctx.pick(quick=5, full=25)
    results: list[dict[str, float]] = [{} for _ in dbs]
    with contextlib.ExitStack() as stack:
        clients = []
        for db in dbs:
            server = stack.enter_context(uvicorn_server("api.main:create_app", engine_env(db.url, secret)))
            clients.append(stack.enter_context(Client(server.port)))
        asked = [queries(db, secret) for db in dbs]
        for name in asked[0]:
            times: list[list[float]] = [[] for _ in dbs]
            last = [0.0 for _ in dbs]
            turn = list(range(len(dbs)))
            for index in range(3 + repeat):
                for k in turn if index % 2 == 0 else reversed(turn):
                    token, path = asked[k][name]
                    start = time.perf_counter()
                    status, _, body = clients[k].get(path, token)
                    last[k] = time.perf_counter() - start
                    if status != 200:
                        raise AssertionError(f"GET {path}: {status} {body[:200]!r}")
                    if index >= 3:
                        times[k].append(last[k])
                if max(last) > 5 and index >= 1:
                    break  # slow enough to make the point; do not spend minutes on it
            for k, db in enumerate(dbs):
                results[k][name] = median(times[k] or [last[k]])
                log(f"B7: {db.cases:,} cases: {name}: {results[k][name] * 1000:.1f} ms")
    return results


def run(ctx: Context) -> Outcome:
    out = Outcome()
    small_n, large_n = ctx.pick(quick=(10_000, 100_000), full=(10_000, 1_000_000))
    dbs = [scale_db(ctx, n) for n in (small_n, large_n)]
    small_rate, large_rate = filing_rates(ctx, dbs)
    for n, rate in ((small_n, small_rate), (large_n, large_rate)):
        log(f"B7: {n:,} cases: filing {rate:.0f} cases/s")
    small_lists, large_lists = list_latencies(ctx, dbs)
    label = f"{large_n // 1000:,}k vs {small_n // 1000:,}k cases"
    out.rows.append(
        Row(
            f"B7 filing, {label} (ratio: time per filing, large/small)",
            fmt_rate(small_rate, "cases/s"),
            fmt_rate(large_rate, "cases/s"),
            small_rate / large_rate,
            f"<= {FLAT} (flat)",
            small_rate / large_rate <= FLAT,
        )
    )
    for name, small in small_lists.items():
        large = large_lists[name]
        out.rows.append(
            Row(
                f"B7 GET /v1/cases {name}, {label}",
                fmt_ms(small),
                fmt_ms(large),
                large / small,
                f"<= {FLAT} (flat)",
                large / small <= FLAT,
            )
        )
    out.notes.append(
        f"B7: baseline column = the {small_n:,}-case database, engine column = the {large_n:,}-case one; "
        f"list latencies are medians of sequential requests over HTTP (server-side time plus one loopback round "
        "trip) to one server per database, taken in turn; filing is in-process, sequential, in rounds taken in "
        "turn on the two databases, without the desk intake (no classification, repeat count or routing: "
        "make_service installs none)."
    )
    return out
