"""Four API worker processes and two ticker processes on one PostgreSQL database, many cases
driven concurrently through whole lifecycles, workers killed with SIGKILL under load.

The deployment is the one docs/deploy.md describes, started as an operator would
(`disputes db upgrade`, `disputes serve --workers 4`, `disputes worker` twice, and
`disputes sla tick` for the clocks). Afterwards the database must agree with the
client's books (tests/deploy/checks.py): every acknowledged command is in the log,
unacknowledged ones happened whole or not at all, nothing happened twice, no seq gaps,
every chain and replay verifies, every timer effect happened exactly once.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.verify import verify_database
from bench.cluster import (
    Serve,
    deployment_env,
    prepare_database,
    serve,
    sla_tick_result,
    start_sla_tick,
    ticker,
)
from bench.lifecycles import CLOSE_RACE, Books, CaseRun, LifecycleClient
from cases.registry import WorkflowRegistry
from store.db import Database
from tests.deploy.checks import check_books, check_timers
from tests.support.live import run_coroutine

pytestmark = pytest.mark.postgres

WORKERS = 4


@dataclass
class Outcome:
    runs: list[CaseRun]
    books: Books
    race_books: Books
    seconds: dict[str, float]
    kills: list[int]
    tick_counts: list[int]
    worker_effects: int
    swept_at: datetime
    problems: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _drive(client: LifecycleClient, runs: list[CaseRun], steps: Any = None) -> Books:
    async def main() -> Books:
        try:
            return await client.run(runs, steps)
        finally:
            client.close()

    return run_coroutine(main())


def _killer(server: Serve, client: LifecycleClient, at_requests: list[int], stop: threading.Event) -> None:
    """SIGKILL a worker each time the client has sent the next number of requests in
    ``at_requests``, picking among the workers that have been serving longest (uvicorn's
    supervisor starts a replacement for each; the load goes on meanwhile)."""
    rng = random.Random(7)
    original = server.worker_pids()
    for threshold in at_requests:
        while client.books.requests < threshold:
            if stop.wait(0.05):
                return
        alive = [pid for pid in server.worker_pids() if pid in original and pid not in server.killed]
        server.kill_worker(rng.choice(alive or server.worker_pids()))


def run_deployment(url: str, cases: int, *, kills: int = 0) -> Outcome:
    env = deployment_env(url, DISPUTES_TICK_SECONDS="1", DISPUTES_CHECKPOINT_INTERVAL_SECONDS="2")
    secret = env["DISPUTES_JWT_SECRET"]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    prepare_database(env)
    tag = f"{random.randrange(16**6):06x}"
    runs = [CaseRun.make(i, tag) for i in range(cases)]
    with serve(env, WORKERS) as server, ticker(env) as t1, ticker(env) as t2:
        seconds["start"] = time.perf_counter() - started
        original = server.worker_pids()
        assert len(original) == WORKERS and server.process.pid not in original  # N processes besides the supervisor
        # Phase 1: every case at once through its plan; meanwhile two tickers sweep and
        # write checkpoints every 2 s (one at a time: advisory lock), and workers die.
        client = LifecycleClient(server.port, secret, concurrency=32)
        expected = sum(len(run.steps) + 1 for run in runs)
        at_requests = [expected * (k + 1) // (kills + 2) for k in range(kills)]  # spread over the run
        stop = threading.Event()
        killer = threading.Thread(target=_killer, args=(server, client, at_requests, stop), daemon=True)
        killer.start()
        t0 = time.perf_counter()
        books = _drive(client, runs)
        seconds["lifecycles"] = time.perf_counter() - t0
        stop.set()
        killer.join()
        # Every killed worker was replaced, and only those.
        replaced = server.wait_workers(timeout=180)
        assert len(replaced) == WORKERS and not set(replaced) & set(server.killed)
        assert set(original) - set(server.killed) <= set(replaced)
        # Phase 2: conceded cases wait in `settled` for their 7-day fulfilment clock. Two
        # one-shot tickers sweep as of 8 days on, racing each other (SKIP LOCKED) and the
        # mediators, who close half of those cases themselves at the same moment.
        parked = [run for run in runs if run.plan == "conceded"]
        swept_at = datetime.now(UTC) + timedelta(days=8)
        t0 = time.perf_counter()
        ticks = [start_sla_tick(env, swept_at) for _ in range(2)]
        race_client = LifecycleClient(server.port, secret, concurrency=1)
        race_books = _drive(race_client, parked[::2], {run.case_id: (CLOSE_RACE,) for run in parked[::2]})
        tick_counts = [sla_tick_result(tick) for tick in ticks]
        seconds["timers"] = time.perf_counter() - t0
        kills_done = list(server.killed)
    worker_effects = sum(_ticker_effects(t.output()) for t in (t1, t2))
    return Outcome(runs, books, race_books, seconds, kills_done, tick_counts, worker_effects, swept_at)


def _ticker_effects(output: str) -> int:
    match = re.search(r"ticker stopped after \d+ sweeps, (\d+) timer effects", output)
    assert match, f"ticker did not stop cleanly: {output[-2000:]}"
    return int(match.group(1))


def check(url: str, outcome: Outcome) -> Outcome:
    db = Database(url)
    try:
        t0 = time.perf_counter()
        merged = Books(
            acks=outcome.books.acks + outcome.race_books.acks,
            unacked=outcome.books.unacked + outcome.race_books.unacked,
            refused=outcome.books.refused,
            lost_races=outcome.race_books.lost_races,
        )
        problems = check_books(db, outcome.runs, merged)
        timers = check_timers(db, swept_at=outcome.swept_at)
        problems += timers.problems
        parked = [run for run in outcome.runs if run.plan == "conceded"]
        # Each parked case closed exactly once: by the clock or by its mediator, never both.
        closed_by_system = timers.system_moves["close"]
        closed_by_mediator = sum(1 for run in parked if "close" in run.done)
        if closed_by_system + closed_by_mediator != len(parked):
            problems.append(
                f"{len(parked)} parked cases, closed {closed_by_system} by the clock and "
                f"{closed_by_mediator} by mediators"
            )
        if timers.breaches["fulfilment"] != closed_by_system or set(timers.breaches) - {"fulfilment"}:
            problems.append(f"breaches {dict(timers.breaches)}, system closes {closed_by_system}")
        # The tickers' own counts add up to the effects in the log: none counted twice.
        if sum(outcome.tick_counts) + outcome.worker_effects != timers.firings:
            problems.append(
                f"tickers applied {outcome.tick_counts} + {outcome.worker_effects}, log has {timers.firings} firings"
            )
        report = verify_database(db, WorkflowRegistry.from_directory())
        if not report.intact:
            problems.append(f"verification: {report.to_dict()}")
        outcome.seconds["checks"] = time.perf_counter() - t0
        outcome.problems = problems
        outcome.summary = {
            "cases": len(outcome.runs),
            "acknowledged": len(merged.acks),
            "unacknowledged": len(merged.unacked),
            "unacknowledged_that_happened": sum(u.happened for u in merged.unacked),
            "refused": len(merged.refused),
            "answers": dict(outcome.books.statuses),
            "kills": len(outcome.kills),
            "closed_by_clock": closed_by_system,
            "closed_by_mediator": closed_by_mediator,
            "events": report.events_checked,
            "checkpoints": report.checkpoints_checked,
            "seconds": {k: round(v, 1) for k, v in outcome.seconds.items()},
        }
    finally:
        db.dispose()
    return outcome


def _report(outcome: Outcome) -> None:
    print(f"\nmany-workers run: {outcome.summary}")  # shown with -s; the numbers of docs/deploy.md


def test_four_workers_with_workers_killed_under_load(pg_empty_url: str) -> None:
    """The bounded form (make test): 150 cases, three workers killed at a quarter, half and
    three quarters of the run."""
    outcome = check(pg_empty_url, run_deployment(pg_empty_url, 150, kills=3))
    _report(outcome)
    assert outcome.problems == []
    assert len(outcome.kills) == 3
    # The kills hit requests in flight (else this test proves nothing about them).
    assert outcome.books.unacked, outcome.summary
    assert outcome.summary["checkpoints"] >= 1  # the tickers wrote checkpoints during the load


@pytest.mark.slow
def test_two_thousand_cases_on_four_workers(pg_empty_url: str) -> None:
    outcome = check(pg_empty_url, run_deployment(pg_empty_url, 2000))
    _report(outcome)
    assert outcome.problems == []
    assert outcome.books.unacked == [] and outcome.books.refused == []  # nobody died: every answer came


@pytest.mark.slow
def test_two_thousand_cases_with_workers_killed_repeatedly(pg_empty_url: str) -> None:
    outcome = check(pg_empty_url, run_deployment(pg_empty_url, 2000, kills=8))
    _report(outcome)
    assert outcome.problems == []
    assert len(outcome.kills) == 8 and outcome.books.unacked
