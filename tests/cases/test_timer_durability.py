"""Durability of SLA clocks: many due timers, tickers stopped and restarted, several racing.

Every breach effect must happen exactly once and none may be missed, whatever the
interleaving: the guarantee comes from claiming rows in the same transaction that
applies the effect (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select

from cases.service import CaseService
from cases.sweep import fire_due_timers
from runtime.ticker import Ticker
from sla.clock import ManualClock
from store.tables import CASES, EVENTS
from tests.support.actors import CONSUMER, T0
from tests.support.builders import make_clocked_service, new_case

COUNT = int(os.environ.get("DURABILITY_TIMERS", "1000"))


def fill(service: CaseService, clock: ManualClock) -> None:
    """COUNT filed cases whose assignment clocks fall due within one minute."""
    step = timedelta(seconds=60 / COUNT)
    for index in range(COUNT):
        clock.set(T0 + step * index)
        service.file(actor=CONSUMER, new_case=new_case(order_ref=f"O-{index}"))


def counts(service: CaseService) -> tuple[int, int, int]:
    with service.db.read() as session:
        breaches = session.execute(select(func.count()).select_from(EVENTS).where(EVENTS.c.type == "timer_breached"))
        escalations = session.execute(
            select(func.count())
            .select_from(EVENTS)
            .where(EVENTS.c.type == "transitioned", EVENTS.c.actor_role == "system")
        )
        escalated = session.execute(select(func.count()).select_from(CASES).where(CASES.c.state == "escalated"))
        return breaches.scalar_one(), escalations.scalar_one(), escalated.scalar_one()


def sweep(service: CaseService, now: datetime) -> int:
    return fire_due_timers(service, now, batch=20)


def wait_for(service: CaseService, expected: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if counts(service)[0] >= expected:
            return
        time.sleep(0.1)


def test_restarted_and_racing_tickers_fire_each_breach_exactly_once(db_url: str) -> None:
    services = [make_clocked_service(db_url) for _ in range(3)]
    clock = services[0].clock
    assert isinstance(clock, ManualClock)
    fill(services[0], clock)
    due_end = T0 + timedelta(hours=2, minutes=1)
    for service in services:
        assert isinstance(service.clock, ManualClock)
        service.clock.set(due_end)

    # One ticker, stopped and restarted several times part-way through.
    first = Ticker(
        lambda now: fire_due_timers(services[0], now, batch=25, max_batches=2), services[0].clock, interval_seconds=0.01
    )
    for _ in range(3):
        first.start()
        time.sleep(0.15)
        first.stop()
    after_restarts = counts(services[0])[0]

    # Then three tickers (three engines, as three worker processes would have) race for the rest.
    tickers = [Ticker(partial(sweep, s), s.clock, interval_seconds=0.01) for s in services]
    for ticker in tickers:
        ticker.start()
    wait_for(services[0], COUNT)
    for ticker in tickers:
        ticker.stop()
    # A final catch-up sweep finds nothing left.
    assert fire_due_timers(services[1], due_end) == 0

    breaches, escalations, escalated = counts(services[0])
    assert (breaches, escalations, escalated) == (COUNT, COUNT, COUNT), (after_restarts, breaches, escalations)
    assert sum(t.fired_total for t in tickers) + first.fired_total == COUNT
    for service in services:
        service.db.dispose()
