"""B3: one SLA sweep (``fire_due_timers``) with 1,000,000 open timers versus with 10,000.

The databases are the shared scale databases (bench/bulk.py): every case has one
running timer, all due after the sweep instant. Before each measured sweep, 100 (quick: 25) real
cases are filed through the service on the Friday before, so that exactly their
``assignment`` clocks are due (breach -> ``escalate`` as system, through the policies);
the sweep must fire exactly those. The time of that one sweep is compared across
sizes (flat is the target). Also: timer effects per second when many timers are due,
and the time of an empty sweep (nothing due: the index probe alone).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.bulk import SWEEP_AT, ScaleDb, scale_db
from bench.common import CONSUMER, Outcome, Row, fmt_ms, fmt_rate, log, make_service, median, new_case
from bench.context import Context
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock

NAME = "B3"
TARGET = 1.3
DUE_FILED = datetime(2026, 2, 27, 2, 0, tzinfo=UTC)  # Friday 10:00 Asia/Shanghai: due by 12:00 that day


def add_due(service: CaseService, count: int) -> None:
    assert isinstance(service.clock, ManualClock)
    service.clock.set(DUE_FILED)
    for _ in range(count):
        service.file(actor=CONSUMER, new_case=new_case())
    service.clock.set(SWEEP_AT)


def sweep(service: CaseService, expected: int) -> float:
    start = time.perf_counter()
    fired = fire_due_timers(service, SWEEP_AT)
    seconds = time.perf_counter() - start
    if fired != expected:
        raise AssertionError(f"the sweep fired {fired} timer effects, {expected} were due")
    return seconds


def measure(ctx: Context, db: ScaleDb, due: int) -> tuple[float, float]:
    """Median seconds of a sweep with ``due`` due timers, and of an empty sweep."""
    service = make_service(db.url, clock=ManualClock(SWEEP_AT))
    try:
        times, empty = [], []
        for index in range(ctx.warmups + ctx.runs):
            add_due(service, due)
            seconds = sweep(service, due)
            empty_seconds = sweep(service, 0)
            if index >= ctx.warmups:
                times.append(seconds)
                empty.append(empty_seconds)
            log(f"B3: {db.open_timers:,} open timers: sweep of {due} due took {seconds * 1000:.0f} ms")
        return median(times), median(empty)
    finally:
        service.db.dispose()


def fired_per_second(ctx: Context, db: ScaleDb) -> float:
    many = ctx.pick(quick=100, full=1000)
    service = make_service(db.url, clock=ManualClock(SWEEP_AT))
    try:
        add_due(service, many)
        return many / sweep(service, many)
    finally:
        service.db.dispose()


def run(ctx: Context) -> Outcome:
    out = Outcome()
    small_n, large_n = ctx.pick(quick=(10_000, 100_000), full=(10_000, 1_000_000))
    small = scale_db(ctx, small_n)
    due = ctx.pick(quick=25, full=100)
    small_sweep, small_empty = measure(ctx, small, due)
    large = scale_db(ctx, large_n)
    large_sweep, large_empty = measure(ctx, large, due)
    ratio = large_sweep / small_sweep
    out.rows.append(
        Row(
            f"B3 sweep of {due} due, {large.open_timers:,} vs {small.open_timers:,} open timers",
            fmt_ms(small_sweep),
            fmt_ms(large_sweep),
            ratio,
            f"<= {TARGET}",
            ratio <= TARGET,
        )
    )
    rate = fired_per_second(ctx, large)
    out.rows.append(
        Row("B3 timer effects fired per second (breach -> escalate)", "", fmt_rate(rate, "timers/s"), None, "", None)
    )
    out.notes.append(
        f"B3: empty sweep (index probe only): {fmt_ms(small_empty)} with {small.open_timers:,} open timers, "
        f"{fmt_ms(large_empty)} with {large.open_timers:,}. Building the {large.cases:,}-case database took "
        f"{large.seconds:.0f} s (shared with B7)."
    )
    return out
