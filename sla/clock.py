"""Injectable clocks, so that domain code never reads the wall clock directly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current instant as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


def ensure_aware(value: datetime, what: str = "datetime") -> datetime:
    """``value`` converted to UTC; naive datetimes are refused because their zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class SystemClock:
    """The real clock; the only place that calls ``datetime.now``."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to, for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "start")
        # The ticker reads the clock from its own thread while a test moves it.
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (backwards is allowed: tests may need it)."""
        aware = ensure_aware(value, "value")
        with self._lock:
            self._now = aware

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new instant."""
        if delta < timedelta(0):
            raise ValueError("ManualClock.advance needs a non-negative timedelta; use set() to go back")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"
