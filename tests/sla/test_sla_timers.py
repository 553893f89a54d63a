"""Timer plans: due and warning instants, pauses, re-planning under a changed calendar, time left."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workflow
from sla.calendar import ALWAYS_OPEN, Calendar, add_business, business_elapsed, office_hours
from sla.config import default_calendars
from sla.timers import (
    TimerPlan,
    UnknownCalendarError,
    calendar_for,
    effective_calendar,
    elapsed,
    plan_timer,
    remaining,
    replan,
    resume_plan,
    timer_goal_seconds,
    timer_warn_seconds,
    unknown_calendars,
)
from workflow.definition import BreachRule, TimerDef, load_definition_file
from workflow.durations import parse_duration

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600
CN = Calendar(name="default", timezone="Asia/Shanghai", hours=office_hours("09:00-18:00"), country="CN")

MERCHANT_RESPONSE = TimerDef(
    name="merchant_response",
    goal=parse_duration("48h"),
    calendar="24x7",
    warn_at=0.75,
    pause_while=("awaiting_consumer",),
    on_breach=BreachRule(trigger="decide_for_consumer"),
)
RESOLUTION = TimerDef(
    name="resolution",
    goal=parse_duration("7 business days"),
    warn_at=0.8,
    pause_while=("awaiting_consumer", "awaiting_merchant"),
    on_breach=BreachRule(trigger="escalate"),
)
ASSIGNMENT = TimerDef(
    name="assignment", goal=parse_duration("2 business hours"), on_breach=BreachRule(trigger="escalate")
)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


# --- plans -----------------------------------------------------------------------


def test_wall_clock_timer_warns_at_36_of_48_hours_whatever_calendar_it_names() -> None:
    start = sh(2026, 2, 13, 17, 30)  # Friday evening before Spring Festival: irrelevant on the wall clock
    expected = TimerPlan(due_at=start + timedelta(hours=48), warn_at=start + timedelta(hours=36))
    assert plan_timer(MERCHANT_RESPONSE, ALWAYS_OPEN, start) == expected
    assert plan_timer(MERCHANT_RESPONSE, CN, start) == expected
    named_default = dataclasses.replace(MERCHANT_RESPONSE, calendar="default")
    assert plan_timer(named_default, CN, start) == expected
    assert effective_calendar(named_default, CN) is ALWAYS_OPEN


def test_seven_business_days_resolution() -> None:
    plan = plan_timer(RESOLUTION, CN, sh(2026, 3, 2, 10))
    assert plan.due_at == sh(2026, 3, 11, 10)  # 7 x 9 h
    assert plan.warn_at == sh(2026, 3, 9, 15, 24)  # 80% = 50.4 h
    assert plan.due_at.tzinfo is UTC
    assert timer_goal_seconds(RESOLUTION, CN) == 63 * HOUR
    assert timer_warn_seconds(RESOLUTION, CN) == 181_440
    assert timer_warn_seconds(ASSIGNMENT, CN) is None


def test_resolution_over_spring_festival_counts_the_make_up_saturdays() -> None:
    # Fri 13 Feb (8 h left), Sat 14 (make-up), 24-27 Feb, Sat 28 (make-up): 62 h; then 1 h on Mon 2 March.
    assert plan_timer(RESOLUTION, CN, sh(2026, 2, 13, 10)).due_at == sh(2026, 3, 2, 10)


def test_assignment_two_business_hours() -> None:
    plan = plan_timer(ASSIGNMENT, CN, sh(2026, 4, 3, 17, 30))
    assert plan == TimerPlan(due_at=sh(2026, 4, 7, 10, 30), warn_at=None)


def test_default_workflow_timers_plan_on_the_default_calendars() -> None:
    path = Path(workflow.__file__).parent / "definitions" / "consumer_dispute.yaml"
    definition = load_definition_file(path)
    calendars = default_calendars()
    assert unknown_calendars(definition.timers, calendars) == []
    start = sh(2026, 3, 2, 10)
    due = {t.name: plan_timer(t, calendar_for(t, calendars), start).due_at for t in definition.timers}
    assert due == {
        "assignment": sh(2026, 3, 2, 12),
        "merchant_response": sh(2026, 3, 4, 10),
        "resolution": sh(2026, 3, 11, 10),
        "ruling": sh(2026, 3, 9, 10),
        "fulfilment": sh(2026, 3, 9, 10),
    }


def test_calendar_lookup() -> None:
    calendars = {"default": CN}
    assert calendar_for(RESOLUTION, calendars) is CN
    assert calendar_for(MERCHANT_RESPONSE, {}) is ALWAYS_OPEN  # wall clock needs no lookup
    lost = dataclasses.replace(RESOLUTION, calendar="shenzhen")
    with pytest.raises(UnknownCalendarError, match="'shenzhen', which is not configured"):
        calendar_for(lost, calendars)
    assert unknown_calendars([RESOLUTION, lost, MERCHANT_RESPONSE], calendars) == [
        "timer 'resolution' uses calendar 'shenzhen', which is not configured (known: default)"
    ]


# --- pauses ------------------------------------------------------------------------


def resolution_plan() -> TimerPlan:
    return plan_timer(RESOLUTION, CN, sh(2026, 3, 2, 10))


def test_a_pause_of_three_business_hours_pushes_due_by_three_business_hours() -> None:
    plan = resolution_plan()
    resumed, paused = resume_plan(
        CN, paused_at=sh(2026, 3, 3, 10), resumed_at=sh(2026, 3, 3, 13), due_at=plan.due_at, warn_at=plan.warn_at
    )
    assert paused == 3 * HOUR
    assert resumed.due_at == add_business(CN, plan.due_at, 3 * HOUR) == sh(2026, 3, 11, 13)
    assert resumed.warn_at == sh(2026, 3, 10, 9, 24)  # 15:24 + 3 business hours crosses the night
    assert resumed == replan(RESOLUTION, CN, started_at=sh(2026, 3, 2, 10), paused_business_seconds=paused)


def test_only_business_time_of_a_pause_counts() -> None:
    plan = resolution_plan()
    overnight, paused = resume_plan(
        CN, paused_at=sh(2026, 3, 3, 17), resumed_at=sh(2026, 3, 4, 11), due_at=plan.due_at, warn_at=plan.warn_at
    )
    assert paused == 3 * HOUR and overnight.due_at == sh(2026, 3, 11, 13)
    weekend, paused = resume_plan(
        CN, paused_at=sh(2026, 3, 6, 19), resumed_at=sh(2026, 3, 9, 8), due_at=plan.due_at, warn_at=plan.warn_at
    )
    assert paused == 0 and weekend == plan


def test_pauses_accumulate() -> None:
    plan = resolution_plan()
    first, total = resume_plan(
        CN, paused_at=sh(2026, 3, 3, 10), resumed_at=sh(2026, 3, 3, 11), due_at=plan.due_at, warn_at=plan.warn_at
    )
    second, total = resume_plan(
        CN,
        paused_at=sh(2026, 3, 4, 10),
        resumed_at=sh(2026, 3, 4, 12),
        due_at=first.due_at,
        warn_at=first.warn_at,
        paused_business_seconds=total,
    )
    assert total == 3 * HOUR
    assert second.due_at == sh(2026, 3, 11, 13)
    assert second == replan(RESOLUTION, CN, started_at=sh(2026, 3, 2, 10), paused_business_seconds=total)


def test_a_warning_already_reached_is_left_alone() -> None:
    plan = resolution_plan()
    resumed, _ = resume_plan(
        CN, paused_at=sh(2026, 3, 10, 10), resumed_at=sh(2026, 3, 10, 12), due_at=plan.due_at, warn_at=plan.warn_at
    )
    assert resumed.warn_at == plan.warn_at
    assert resumed.due_at == sh(2026, 3, 11, 12)


def test_wall_clock_pause() -> None:
    start = sh(2026, 3, 2, 10)
    plan = plan_timer(MERCHANT_RESPONSE, CN, start)
    resumed, paused = resume_plan(
        ALWAYS_OPEN,
        paused_at=start + timedelta(hours=10),
        resumed_at=start + timedelta(hours=15),
        due_at=plan.due_at,
        warn_at=plan.warn_at,
    )
    assert paused == 5 * HOUR
    assert resumed == TimerPlan(due_at=start + timedelta(hours=53), warn_at=start + timedelta(hours=41))


def test_overdue_at_pause_is_due_at_resume() -> None:
    plan = resolution_plan()
    resumed, _ = resume_plan(
        CN, paused_at=sh(2026, 3, 12, 10), resumed_at=sh(2026, 3, 13, 10), due_at=plan.due_at, warn_at=None
    )
    assert resumed == TimerPlan(due_at=sh(2026, 3, 13, 10), warn_at=None)


def test_resume_refuses_nonsense() -> None:
    plan = resolution_plan()
    with pytest.raises(ValueError, match="before paused_at"):
        resume_plan(CN, paused_at=sh(2026, 3, 3, 10), resumed_at=sh(2026, 3, 3, 9), due_at=plan.due_at, warn_at=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        resume_plan(
            CN, paused_at=datetime(2026, 3, 3, 10), resumed_at=sh(2026, 3, 3, 11), due_at=plan.due_at, warn_at=None
        )
    with pytest.raises(ValueError, match="negative"):
        resume_plan(
            CN,
            paused_at=sh(2026, 3, 3, 10),
            resumed_at=sh(2026, 3, 3, 11),
            due_at=plan.due_at,
            warn_at=None,
            paused_business_seconds=-1,
        )
    with pytest.raises(ValueError, match="negative"):
        replan(RESOLUTION, CN, started_at=sh(2026, 3, 2, 10), paused_business_seconds=-1)


BUSINESS_INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))


@settings(max_examples=100, deadline=None)
@given(BUSINESS_INSTANTS, st.integers(0, 63 * HOUR - 1), st.integers(0, 20 * 24 * HOUR))
def test_resume_agrees_with_replan(started: datetime, run_before_pause: int, pause_wall: int) -> None:
    plan = plan_timer(RESOLUTION, CN, started)
    paused_at = add_business(CN, started, run_before_pause)  # before the due instant
    resumed_at = paused_at + timedelta(seconds=pause_wall)
    resumed, paused = resume_plan(CN, paused_at=paused_at, resumed_at=resumed_at, due_at=plan.due_at, warn_at=None)
    assert paused == business_elapsed(CN, paused_at, resumed_at)
    assert resumed.due_at == replan(RESOLUTION, CN, started_at=started, paused_business_seconds=paused).due_at
    assert business_elapsed(CN, resumed_at, resumed.due_at) == business_elapsed(CN, paused_at, plan.due_at)


# --- calendar changes --------------------------------------------------------------


def test_replan_after_an_operator_adds_a_holiday() -> None:
    start = sh(2026, 3, 2, 10)
    with_holiday = dataclasses.replace(CN, extra_days_off=frozenset({date(2026, 3, 5)}))
    plan = replan(RESOLUTION, with_holiday, started_at=start)
    assert plan == TimerPlan(due_at=sh(2026, 3, 12, 10), warn_at=sh(2026, 3, 10, 15, 24))
    assert replan(RESOLUTION, CN, started_at=start) == plan_timer(RESOLUTION, CN, start)
    # Wall-clock timers do not move.
    wall = replan(MERCHANT_RESPONSE, with_holiday, started_at=start, paused_business_seconds=HOUR)
    assert wall.due_at == start + timedelta(hours=49)


# --- time left and time used -------------------------------------------------------


def test_remaining() -> None:
    due = sh(2026, 3, 11, 10)
    assert remaining(CN, sh(2026, 3, 9, 10), due) == 18 * HOUR
    assert remaining(CN, due, due) == 0
    assert remaining(CN, sh(2026, 3, 12, 10), due) == -9 * HOUR
    friday_evening = sh(2026, 3, 6, 18)
    assert remaining(CN, sh(2026, 3, 7, 12), friday_evening) == 0  # overdue, but no working time since
    assert remaining(CN, sh(2026, 3, 9, 10), friday_evening) == -HOUR


def test_elapsed() -> None:
    start = sh(2026, 3, 2, 10)
    assert elapsed(CN, start, sh(2026, 3, 3, 10)) == 9 * HOUR
    assert elapsed(CN, start, sh(2026, 3, 3, 10), HOUR) == 8 * HOUR
    assert elapsed(CN, start, sh(2026, 3, 3, 10), paused_since=sh(2026, 3, 2, 15)) == 5 * HOUR
    assert elapsed(CN, start, sh(2026, 3, 2, 11), 5 * HOUR) == 0  # never negative
    assert elapsed(ALWAYS_OPEN, start, start + timedelta(hours=30)) == 30 * HOUR
