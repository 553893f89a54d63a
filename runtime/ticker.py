"""The SLA ticker: an APScheduler job that calls an injected ``fire(now)`` every few seconds, and
the sweep a running engine gives it (timers, checkpoints, merchant supervision)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from audit.checkpoints import write_checkpoint
from cases.sweep import fire_due_timers
from reports.readmodel import refresh as refresh_read_model
from reports.supervision import evaluate_merchants
from runtime.engine import Engine
from sla.clock import Clock

log = logging.getLogger(__name__)

FireFunction = Callable[[datetime], int]
"""Fires every timer due at the given instant and returns how many it fired."""


@dataclass(frozen=True, slots=True)
class TickerStats:
    """Counters for metrics: sweeps run, timers fired, sweeps that raised."""

    sweeps: int
    fired: int
    failures: int
    last_sweep_at: datetime | None
    last_error: str | None
    running: bool


class Ticker:
    """Runs ``fire(clock.now())`` once at start (catch-up after downtime) and then on an interval.

    One sweep at a time (``max_instances=1``); sweeps missed while one overran or the process was
    suspended collapse into one (``coalesce``). An exception from ``fire`` is logged and counted
    and the schedule goes on: each sweep claims whatever is due then, so nothing is lost.
    """

    def __init__(
        self,
        fire: FireFunction,
        clock: Clock,
        interval_seconds: float = 5.0,
        *,
        name: str = "sla-ticker",
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._fire = fire
        self._clock = clock
        self.interval_seconds = interval_seconds
        self.name = name
        self._scheduler: BackgroundScheduler | None = None
        self._state_lock = threading.Lock()  # start/stop
        self._sweep_lock = threading.Lock()  # a manual sweep_once never overlaps a scheduled one
        self._count_lock = threading.Lock()  # metrics must not wait for a long sweep to finish
        self._sweeps = 0
        self._fired = 0
        self._failures = 0
        self._last_sweep_at: datetime | None = None
        self._last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    @property
    def sweeps(self) -> int:
        return self._sweeps

    @property
    def fired_total(self) -> int:
        return self._fired

    @property
    def failures(self) -> int:
        return self._failures

    def stats(self) -> TickerStats:
        with self._count_lock:
            return TickerStats(
                sweeps=self._sweeps,
                fired=self._fired,
                failures=self._failures,
                last_sweep_at=self._last_sweep_at,
                last_error=self._last_error,
                running=self.running,
            )

    def sweep_once(self) -> int:
        """Call ``fire`` with the clock's now; return what it fired (0 if it raised)."""
        with self._sweep_lock:
            now = self._clock.now()
            try:
                fired = int(self._fire(now))
            except Exception as exc:
                log.exception("%s: sweep at %s failed", self.name, now.isoformat())
                with self._count_lock:
                    self._sweeps += 1
                    self._last_sweep_at = now
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                return 0
            with self._count_lock:
                self._sweeps += 1
                self._last_sweep_at = now
                self._fired += fired
            return fired

    def start(self) -> None:
        """Sweep once now, then every ``interval_seconds`` on a background thread."""
        with self._state_lock:
            if self._scheduler is not None:
                raise RuntimeError(f"{self.name} is already running")
            self.sweep_once()
            scheduler = BackgroundScheduler(
                timezone=UTC,
                executors={"default": ThreadPoolExecutor(max_workers=1)},
                daemon=True,
            )
            scheduler.add_job(
                self.sweep_once,
                trigger=IntervalTrigger(seconds=self.interval_seconds, timezone=UTC),
                id=self.name,
                name=self.name,
                max_instances=1,
                coalesce=True,
                # However late a run is (suspended host, overloaded box), run it rather than skip it.
                misfire_grace_time=None,
            )
            scheduler.start()
            self._scheduler = scheduler
            log.info("%s: started, sweeping every %ss", self.name, self.interval_seconds)

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, also wait for a running sweep and join the threads."""
        with self._state_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)
            log.info("%s: stopped after %d sweeps", self.name, self._sweeps)

    def __enter__(self) -> Ticker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def build_ticker(engine: Engine) -> Ticker:
    """The ticker wired to this engine: each sweep fires every due timer once, writes a signed
    checkpoint when the last one is older than the interval, folds the cases written since into
    the reports' read model, and applies the merchant-supervision
    thresholds every DISPUTES_SUPERVISION_INTERVAL_SECONDS, and erases personal data that is due
    (cases/erasure.py) every DISPUTES_RETENTION_INTERVAL_SECONDS."""
    settings = engine.settings
    interval = timedelta(seconds=settings.checkpoint_interval_seconds)
    supervision_every = timedelta(seconds=settings.supervision_interval_seconds)
    supervised: list[datetime] = []  # when this process last evaluated the merchants
    retention_every = timedelta(seconds=settings.retention_interval_seconds)
    kept: list[datetime] = []  # when this process last swept personal data

    def sweep(now: datetime) -> int:
        fired = fire_due_timers(engine.cases, now)
        write_checkpoint(engine.db, engine.signing_key, now, min_interval=interval)
        if supervision_every and (not supervised or now - supervised[-1] >= supervision_every):
            # Safe with several workers: each merchant's flag is decided under a lock (reports/supervision.py).
            supervised[:] = [now]
            outcome = evaluate_merchants(engine.db, engine.triage.supervision, now)
            if outcome.raised or outcome.cleared:
                log.warning("merchant supervision: flagged %s, cleared %s", outcome.raised, outcome.cleared)
        if retention_every and (not kept[-1:] or now - kept[-1] >= retention_every):
            # Deferred erasures whose cases closed, and retention; rows claimed with SKIP LOCKED.
            kept[:] = [now]
            erased = engine.cases.sweep_personal_data()
            if erased:
                log.info("personal data erased from %d cases (retention or deferred erasure)", len(erased))
        # Fold the cases written since into the dashboards' read model, so that a dashboard
        # request finds little to fold itself (two reads when nothing was written).
        refresh_read_model(engine.db, engine.cases.calendars(), now)
        return fired

    return Ticker(sweep, engine.clock, settings.tick_seconds)
