"""The ticker on a real BackgroundScheduler: immediate catch-up, repeats, survives errors, stops cleanly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from runtime.ticker import Ticker
from sla.clock import ManualClock

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TICK = 0.02


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "APScheduler" or t.name.startswith("ThreadPoolExecutor")]


@pytest.fixture
def tickers() -> Iterator[list[Ticker]]:
    """Tickers made by a test; all stopped afterwards, even when the test fails."""
    made: list[Ticker] = []
    before = set(scheduler_threads())
    yield made
    for ticker in made:
        ticker.stop()
    assert set(scheduler_threads()) <= before, "a scheduler thread outlived its test"


class Recorder:
    """A fire function that records the instants it was called with."""

    def __init__(self, result: int = 0, fail_first: int = 0) -> None:
        self.calls: list[datetime] = []
        self.threads: set[str] = set()
        self.result = result
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, now: datetime) -> int:
        with self.lock:
            self.calls.append(now)
            self.threads.add(threading.current_thread().name)
            if len(self.calls) <= self.fail_first:
                raise RuntimeError(f"database unavailable (call {len(self.calls)})")
        return self.result

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def test_start_sweeps_immediately_then_repeats_and_stop_stops(tickers: list[Ticker]) -> None:
    before = set(scheduler_threads())
    clock = ManualClock(START)
    fire = Recorder(result=2)
    ticker = Ticker(fire, clock, interval_seconds=TICK)
    tickers.append(ticker)
    ticker.start()
    # The catch-up sweep ran synchronously, with the injected clock's time.
    assert fire.calls[:1] == [START]
    assert ticker.running
    clock.advance(timedelta(minutes=5))
    wait_for(lambda: fire.count() >= 4)
    assert START + timedelta(minutes=5) in fire.calls
    ticker.stop()
    assert not ticker.running
    after_stop = fire.count()
    time.sleep(TICK * 5)
    assert fire.count() == after_stop
    stats = ticker.stats()
    assert stats.sweeps == after_stop and stats.fired == 2 * after_stop and stats.failures == 0
    assert stats.last_sweep_at == START + timedelta(minutes=5) and not stats.running
    assert ticker.sweeps == after_stop and ticker.fired_total == 2 * after_stop
    assert set(scheduler_threads()) <= before


def test_an_exception_in_fire_does_not_stop_later_sweeps(
    tickers: list[Ticker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="runtime.ticker")
    fire = Recorder(result=1, fail_first=3)  # the start sweep and two scheduled ones fail
    ticker = Ticker(fire, ManualClock(START), interval_seconds=TICK)
    tickers.append(ticker)
    ticker.start()
    wait_for(lambda: fire.count() >= 6)
    ticker.stop()
    stats = ticker.stats()
    assert stats.failures == 3
    assert stats.fired == stats.sweeps - 3
    assert stats.last_error is not None and "database unavailable" in stats.last_error
    failures = [r for r in caplog.records if r.name == "runtime.ticker" and r.levelno == logging.ERROR]
    assert len(failures) == 3 and all(r.exc_info for r in failures)


def test_sweep_once_without_the_scheduler() -> None:
    clock = ManualClock(START)
    fire = Recorder(result=3)
    ticker = Ticker(fire, clock)
    assert ticker.sweep_once() == 3
    clock.advance(timedelta(seconds=30))
    assert ticker.sweep_once() == 3
    assert fire.calls == [START, START + timedelta(seconds=30)]
    assert ticker.stats().fired == 6 and not ticker.running
    ticker.stop()  # stopping a ticker that never started is harmless


def test_failing_sweep_once_returns_zero(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="runtime.ticker")
    ticker = Ticker(Recorder(fail_first=1), ManualClock(START))
    assert ticker.sweep_once() == 0
    assert ticker.failures == 1


def test_start_twice_is_refused_and_context_manager_stops(tickers: list[Ticker]) -> None:
    before = set(scheduler_threads())
    fire = Recorder()
    ticker = Ticker(fire, ManualClock(START), interval_seconds=TICK)
    tickers.append(ticker)
    with ticker:
        with pytest.raises(RuntimeError, match="already running"):
            ticker.start()
        wait_for(lambda: fire.count() >= 2)
    assert not ticker.running
    assert set(scheduler_threads()) <= before
    # The scheduled sweeps ran off the caller's thread.
    assert any(name != threading.current_thread().name for name in fire.threads)


def test_restart_after_stop(tickers: list[Ticker]) -> None:
    fire = Recorder()
    ticker = Ticker(fire, ManualClock(START), interval_seconds=TICK)
    tickers.append(ticker)
    ticker.start()
    ticker.stop()
    count = fire.count()
    ticker.start()
    assert fire.count() == count + 1  # a fresh catch-up sweep
    wait_for(lambda: fire.count() >= count + 3)
    ticker.stop()


def test_overlong_sweeps_do_not_overlap(tickers: list[Ticker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # APScheduler warns about skipped runs; that is the point
    active = 0
    overlaps = 0
    runs = 0
    lock = threading.Lock()

    def slow(now: datetime) -> int:
        nonlocal active, overlaps, runs
        with lock:
            active += 1
            overlaps += active > 1
            runs += 1
        time.sleep(TICK * 3)
        with lock:
            active -= 1
        return 0

    ticker = Ticker(slow, ManualClock(START), interval_seconds=TICK / 2)
    tickers.append(ticker)
    ticker.start()
    wait_for(lambda: runs >= 4)
    ticker.stop()
    assert overlaps == 0


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Ticker(Recorder(), ManualClock(START), interval_seconds=0)
