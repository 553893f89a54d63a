"""Clocks: the system clock is aware UTC, the manual clock moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sla.clock import Clock, ManualClock, SystemClock, ensure_aware


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(datetime(2026, 1, 1, tzinfo=UTC)), Clock)


def test_manual_clock_set_and_advance() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert clock.now() == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert clock.advance(timedelta(hours=2)) == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    clock.set(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert "2026-01-01T05:00:00+00:00" in repr(clock)


def test_manual_clock_refuses_naive_and_backwards_advance() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="non-negative"):
        clock.advance(timedelta(seconds=-1))


def test_ensure_aware_converts_to_utc() -> None:
    value = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert ensure_aware(value) == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        ensure_aware(datetime(2026, 6, 1), "due_at")
