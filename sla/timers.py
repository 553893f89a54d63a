"""Timer arithmetic for SLA clocks: due and warning instants, pauses, re-planning and time left.

All functions are pure. ``plan_timer`` and ``replan`` take the timer and pick its effective
calendar themselves; ``resume_plan``, ``remaining`` and ``elapsed`` take the calendar the timer
runs on, which must be ``effective_calendar(timer, named_calendar)`` (24x7 for wall-clock goals).

Pauses: business time between a pause and its resume does not count towards the goal. A timer
started at ``s`` with goal ``g`` that has been paused for ``p`` business seconds in total is due
at ``add_business(cal, s, g + p)``; ``resume_plan`` and ``replan`` agree on this.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sla.calendar import ALWAYS_OPEN, Calendar, add_business, business_elapsed, goal_seconds
from sla.clock import ensure_aware
from workflow.definition import TimerDef


@dataclass(frozen=True, slots=True)
class TimerPlan:
    """When a running timer breaches and, if it has ``warn_at``, when it warns (both UTC)."""

    due_at: datetime
    warn_at: datetime | None


class UnknownCalendarError(LookupError):
    """A business-time timer names a calendar that is not configured."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown calendar"


def effective_calendar(timer: TimerDef, calendar: Calendar) -> Calendar:
    """The calendar the timer's clock runs on: ``calendar`` for business goals, 24x7 for wall-clock ones."""
    return calendar if timer.goal.business else ALWAYS_OPEN


def calendar_for(timer: TimerDef, calendars: Mapping[str, Calendar]) -> Calendar:
    """Look up the timer's effective calendar by name; wall-clock goals need no lookup.
    A calendar-day goal runs on the wall clock in the named calendar's zone."""
    if timer.goal.calendar_days:
        named = calendars.get(timer.calendar)
        return _wall_clock_in(named.timezone) if named is not None else ALWAYS_OPEN
    if not timer.goal.business:
        return ALWAYS_OPEN
    try:
        return calendars[timer.calendar]
    except KeyError:
        known = ", ".join(sorted(calendars)) or "none"
        raise UnknownCalendarError(
            f"timer {timer.name!r} uses calendar {timer.calendar!r}, which is not configured (known: {known})"
        ) from None


@functools.cache
def _wall_clock_in(zone: str) -> Calendar:
    """The wall clock (every instant working time) that knows its local days are ``zone``'s."""
    return replace(ALWAYS_OPEN, name=f"{ALWAYS_OPEN.name} {zone}", timezone=zone)


def end_of_local_day(zone: str, start: datetime, days: int) -> datetime:
    """The end of the ``days``-th local day after ``start``'s local day in ``zone`` (UTC): the
    first instant of the local day after it. Local midnight can fall in a daylight-saving gap
    (no 00:00 that day) or fold; ``fold=0`` and the round trip through UTC pick the first
    instant of the day that exists."""
    tz = ZoneInfo(zone)
    day = ensure_aware(start, "start").astimezone(tz).date() + timedelta(days=days + 1)
    midnight = datetime.combine(day, time(0), tzinfo=tz)
    # A midnight that does not exist (a gap) maps to the first instant after the gap.
    utc = midnight.astimezone(UTC)
    if utc.astimezone(tz).date() != day:
        utc = _first_instant_of(day, tz)
    return utc


def _first_instant_of(day: date, tz: ZoneInfo) -> datetime:
    """The first instant whose local date in ``tz`` is ``day`` (searching the day's first hours)."""
    probe = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz).astimezone(UTC)
    low, high = probe, probe + timedelta(hours=36)
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).date() >= day:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def unknown_calendars(timers: Iterable[TimerDef], calendars: Mapping[str, Calendar]) -> list[str]:
    """One message per business-time timer whose calendar is missing (for load-time checks)."""
    messages = []
    for timer in timers:
        try:
            calendar_for(timer, calendars)
        except UnknownCalendarError as exc:
            messages.append(str(exc))
    return messages


def timer_goal_seconds(timer: TimerDef, calendar: Calendar) -> int:
    """The goal in seconds of the timer's effective calendar."""
    return goal_seconds(timer.goal, effective_calendar(timer, calendar))


def timer_warn_seconds(timer: TimerDef, calendar: Calendar) -> int | None:
    """``warn_at`` x goal, rounded to a whole second; None without ``warn_at``."""
    if timer.warn_at is None:
        return None
    return round(timer_goal_seconds(timer, calendar) * timer.warn_at)


def plan_timer(timer: TimerDef, calendar: Calendar, start: datetime) -> TimerPlan:
    """Due and warning instants of a timer started at ``start`` (``calendar`` is the one it names)."""
    return replan(timer, calendar, started_at=start, paused_business_seconds=0)


def replan(timer: TimerDef, calendar: Calendar, *, started_at: datetime, paused_business_seconds: int = 0) -> TimerPlan:
    """Recompute a timer's plan from its start, e.g. after the calendar gained a holiday.

    Paused time extends both instants, as if every pause had come before the warning (once a
    warning has fired the service ignores ``warn_at``). For a timer that is paused right now
    the returned ``due_at`` is what ``resume_plan`` should be given at resume time.
    """
    if paused_business_seconds < 0:
        raise ValueError("paused_business_seconds cannot be negative")
    clock = effective_calendar(timer, calendar)
    if timer.goal.calendar_days:
        # Natural days in the calendar's zone: the goal's length depends on where it starts.
        started_at = ensure_aware(started_at, "started_at").astimezone(UTC)  # instant arithmetic, not wall
        end = end_of_local_day(calendar.timezone, started_at, timer.goal.amount)
        length = int((end - started_at).total_seconds())
        due = end + timedelta(seconds=paused_business_seconds)
        warn_at = None if timer.warn_at is None else round(length * timer.warn_at)
        warn = None if warn_at is None else started_at + timedelta(seconds=warn_at + paused_business_seconds)
        return TimerPlan(due_at=due, warn_at=warn)
    due = add_business(clock, started_at, timer_goal_seconds(timer, calendar) + paused_business_seconds)
    warn_seconds = timer_warn_seconds(timer, calendar)
    warn = None if warn_seconds is None else add_business(clock, started_at, warn_seconds + paused_business_seconds)
    return TimerPlan(due_at=due, warn_at=warn)


def resume_plan(
    calendar: Calendar,
    *,
    paused_at: datetime,
    resumed_at: datetime,
    due_at: datetime,
    warn_at: datetime | None,
    paused_business_seconds: int = 0,
) -> tuple[TimerPlan, int]:
    """The plan after a pause, and the timer's total paused business seconds including this pause.

    The business time that was left at the pause (``paused_at`` -> ``due_at``) starts again at
    ``resumed_at``; so does the time left to a warning that had not been reached. A warning at or
    before ``paused_at`` is returned unchanged (the service knows whether it fired). A timer already
    overdue at the pause is due at ``resumed_at``. ``calendar`` is the timer's effective calendar.
    """
    paused_at = ensure_aware(paused_at, "paused_at")
    resumed_at = ensure_aware(resumed_at, "resumed_at")
    if resumed_at < paused_at:
        raise ValueError(f"resumed_at {resumed_at.isoformat()} is before paused_at {paused_at.isoformat()}")
    if paused_business_seconds < 0:
        raise ValueError("paused_business_seconds cannot be negative")
    left = business_elapsed(calendar, paused_at, due_at)
    new_due = add_business(calendar, resumed_at, left)
    new_warn = warn_at
    if warn_at is not None and ensure_aware(warn_at, "warn_at") > paused_at:
        new_warn = add_business(calendar, resumed_at, business_elapsed(calendar, paused_at, warn_at))
    pause = business_elapsed(calendar, paused_at, resumed_at)
    return TimerPlan(due_at=new_due, warn_at=new_warn), paused_business_seconds + pause


def remaining(calendar: Calendar, now: datetime, due_at: datetime) -> int:
    """Business seconds left until ``due_at``: positive before it, then ``-(business seconds overdue)``.

    Zero does not mean "not yet overdue": past a due instant at a span end, the value stays 0
    until working time resumes. Overdue is ``now >= due_at``; this number is for display.
    """
    if ensure_aware(now, "now") < ensure_aware(due_at, "due_at"):
        return business_elapsed(calendar, now, due_at)
    return -business_elapsed(calendar, due_at, now)


def elapsed(
    calendar: Calendar,
    started_at: datetime,
    now: datetime,
    paused_seconds: int = 0,
    *,
    paused_since: datetime | None = None,
) -> int:
    """Business seconds that counted towards the goal since ``started_at``.

    ``paused_seconds`` is the business time of finished pauses; a pause still running since
    ``paused_since`` stops the count there. Never negative.
    """
    end = now if paused_since is None else min(ensure_aware(now, "now"), ensure_aware(paused_since, "paused_since"))
    return max(0, business_elapsed(calendar, started_at, end) - paused_seconds)
