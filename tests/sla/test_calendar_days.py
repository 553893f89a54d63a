"""Natural-day deadlines ("15 calendar days"): in any IANA zone, across daylight-saving changes,
the clock is due at the end of the right local day, and pauses extend it by their length."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import Calendar, office_hours
from sla.timers import calendar_for, end_of_local_day, plan_timer, replan
from workflow.definition import BreachRule, TimerDef
from workflow.durations import parse_duration

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
# Zones whose clocks change at or around midnight, where "the start of the day" is the hard case.
MIDNIGHT_CHANGES = ["America/Santiago", "America/Havana", "Asia/Beirut", "America/Asuncion", "Africa/Cairo"]
zones = st.one_of(st.sampled_from(ZONES), st.sampled_from(MIDNIGHT_CHANGES))
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC))


def naive_local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


@settings(max_examples=400, deadline=None)
@given(zone=zones, start=instants, days=st.integers(min_value=0, max_value=400))
def test_a_natural_day_deadline_ends_the_right_local_day(zone: str, start: datetime, days: int) -> None:
    tz = ZoneInfo(zone)
    due = end_of_local_day(zone, start, days)
    assert due.tzinfo is UTC
    target = naive_local_day(start, tz) + timedelta(days=days)
    # The instant due is the first of the next local day: a second earlier is still the target day.
    assert naive_local_day(due, tz) == target + timedelta(days=1)
    assert naive_local_day(due - timedelta(seconds=1), tz) == target
    assert due > start


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", *MIDNIGHT_CHANGES]))
def test_every_day_around_the_changes_of_a_year(zone: str) -> None:
    """Every start day of 2026 at 12:00 local, one to 20 days: the due instant is local midnight
    (or the first instant after a gap), never an hour off around a change."""
    tz = ZoneInfo(zone)
    day = date(2026, 1, 1)
    while day.year == 2026:
        start = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        for days in (1, 3, 15):
            # Arithmetic in UTC: Python subtracts wall time from aware datetimes of one zone.
            due = end_of_local_day(zone, start, days)
            assert due.tzinfo is UTC
            assert due.astimezone(tz).date() == day + timedelta(days=days + 1)
            assert (due - timedelta(seconds=1)).astimezone(tz).date() == day + timedelta(days=days)
        day += timedelta(days=1)


def timer(goal: str, warn_at: float | None = None) -> TimerDef:
    return TimerDef(name="t", goal=parse_duration(goal), calendar="c", warn_at=warn_at, on_breach=BreachRule(flag="x"))


def test_the_planner_uses_the_calendars_zone_and_pauses_extend_it() -> None:
    berlin = Calendar(name="c", timezone="Europe/Berlin", hours=office_hours("09:00-17:00"))
    # Friday 27 March 2026, 10:00 in Berlin; summer time starts on Sunday 29 March.
    start = datetime(2026, 3, 27, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    clock = calendar_for(timer("3 calendar days"), {"c": berlin})
    plan = plan_timer(timer("3 calendar days", warn_at=0.5), clock, start)
    assert plan.due_at == datetime(2026, 3, 31, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    # 85 wall-clock hours (one lost to the change); the warning at half of them.
    assert plan.due_at.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=85)
    assert plan.warn_at == start.astimezone(UTC) + timedelta(hours=42, minutes=30)
    paused = replan(timer("3 calendar days"), clock, started_at=start, paused_business_seconds=7200)
    assert paused.due_at == plan.due_at + timedelta(hours=2)


def test_the_goal_reads_as_written() -> None:
    assert str(parse_duration("15 calendar days")) == "15 calendar days"
    assert str(parse_duration("1 calendar day")) == "1 calendar day"
    assert parse_duration("15 calendar days").calendar_days and not parse_duration("15 days").calendar_days
