"""Property tests of the business-time arithmetic on several calendars, with a brute-force oracle.

The central property: for every aware ``start`` (working time or not) and every ``d >= 0``,
``business_elapsed(start, add_business(start, d)) == d``, and for ``d >= 1`` the result is the
earliest such instant to the second: ``business_elapsed(start, result - 1 s) == d - 1``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import (
    ALWAYS_OPEN,
    Calendar,
    add_business,
    business_elapsed,
    is_working,
    next_working_instant,
    office_hours,
    week_hours_from_mapping,
)

CALENDARS = [
    Calendar(name="cn", timezone="Asia/Shanghai", hours=office_hours("09:00-18:00"), country="CN"),
    Calendar(
        name="berlin-lunch",
        timezone="Europe/Berlin",
        hours=office_hours("09:00-12:00", "13:00-17:30"),
        country="DE",
        subdivision="BE",
    ),
    Calendar(
        name="new-york",
        timezone="America/New_York",
        hours=week_hours_from_mapping(
            {
                "mon": ["08:30-12:00", "12:45-17:15"],
                "tue": ["08:30-12:00", "12:45-17:15"],
                "wed": ["08:30-12:00", "12:45-17:15"],
                "thu": ["08:30-12:00", "12:45-17:15"],
                "fri": ["08:30-15:00"],
                "sat": ["10:00-14:00"],
            }
        ),
        country="US",
    ),
    # Spans that straddle both DST switches at night, every day of the week.
    Calendar(
        name="berlin-night",
        timezone="Europe/Berlin",
        hours=office_hours("01:00-02:30", "03:00-04:00", "22:00-24:00", days=range(7)),
    ),
    ALWAYS_OPEN,
]
CALENDAR_NAMES = [c.name for c in CALENDARS]

calendars = st.sampled_from(CALENDARS)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
whole_second_instants = instants.map(lambda t: t.replace(microsecond=0))
durations = st.integers(min_value=0, max_value=40 * 9 * 3600)

SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)
PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(calendars, instants, durations)
def test_elapsed_inverts_add(calendar: Calendar, start: datetime, seconds: int) -> None:
    due = add_business(calendar, start, seconds)
    assert due >= start and due.tzinfo is UTC
    assert business_elapsed(calendar, start, due) == seconds
    if seconds >= 1:
        assert business_elapsed(calendar, start, due - SECOND) == seconds - 1


@PROPERTY
@given(calendars, instants, st.integers(min_value=1, max_value=40 * 9 * 3600))
def test_positive_additions_land_in_working_time_or_at_a_span_end(
    calendar: Calendar, start: datetime, seconds: int
) -> None:
    due = add_business(calendar, start, seconds)
    if is_working(calendar, due):
        return
    before = due - MICRO
    assert is_working(calendar, before)
    assert any(end == due for _, end in calendar.working_spans(calendar.local_date(before)))


@PROPERTY
@given(calendars, instants, instants, durations)
def test_add_is_monotonic_in_the_start(calendar: Calendar, a: datetime, b: datetime, seconds: int) -> None:
    early, late = min(a, b), max(a, b)
    assert add_business(calendar, early, seconds) <= add_business(calendar, late, seconds)


@PROPERTY
@given(calendars, instants, durations, durations)
def test_add_is_monotonic_and_additive_in_the_duration(calendar: Calendar, start: datetime, x: int, y: int) -> None:
    assert add_business(calendar, start, min(x, y)) <= add_business(calendar, start, max(x, y))
    assert add_business(calendar, add_business(calendar, start, x), y) == add_business(calendar, start, x + y)


@PROPERTY
@given(calendars, whole_second_instants, whole_second_instants, whole_second_instants)
def test_elapsed_is_additive(calendar: Calendar, a: datetime, b: datetime, c: datetime) -> None:
    # Span boundaries are whole seconds, so with whole-second instants nothing is lost to flooring.
    a, b, c = sorted((a, b, c))
    assert business_elapsed(calendar, a, c) == business_elapsed(calendar, a, b) + business_elapsed(calendar, b, c)
    assert business_elapsed(calendar, a, c) <= (c - a).total_seconds()


@PROPERTY
@given(calendars, instants)
def test_next_working_instant(calendar: Calendar, t: datetime) -> None:
    nxt = next_working_instant(calendar, t)
    assert nxt >= t
    assert is_working(calendar, nxt)
    assert business_elapsed(calendar, t, nxt) == 0
    assert (nxt == t) == is_working(calendar, t)
    assert add_business(calendar, t, 1) >= nxt + SECOND


SPRING_FESTIVAL = {date(2026, 2, day) for day in range(15, 24)}
MAKE_UP_DAYS = {date(2026, 2, 14), date(2026, 2, 28)}


@PROPERTY
@given(
    st.datetimes(min_value=datetime(2026, 1, 20), max_value=datetime(2026, 3, 10), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=15 * 9 * 3600),
)
def test_spring_festival_2026_never_counts(start: datetime, seconds: int) -> None:
    cn = CALENDARS[0]
    due = add_business(cn, start, seconds)
    assert cn.local_date(due - MICRO) not in SPRING_FESTIVAL
    festival = (datetime(2026, 2, 14, 16, tzinfo=UTC), datetime(2026, 2, 23, 16, tzinfo=UTC))  # Shanghai midnights
    assert business_elapsed(cn, *festival) == 0
    assert cn.is_working_day(cn.local_date(due - MICRO))
    for day in MAKE_UP_DAYS:
        assert cn.is_working_day(day)


QUARTER = timedelta(minutes=15)


@settings(max_examples=60, deadline=None)
@given(calendars, instants, st.integers(min_value=0, max_value=4 * 24 * 10))
def test_elapsed_matches_a_brute_force_count(calendar: Calendar, start: datetime, quarters: int) -> None:
    # Every span boundary of these calendars is on a 15-minute grid in UTC, so sampling the grid is exact.
    start = start.replace(minute=start.minute // 15 * 15, second=0, microsecond=0)
    expected = sum(900 for k in range(quarters) if is_working(calendar, start + k * QUARTER))
    end = start + quarters * QUARTER
    assert business_elapsed(calendar, start, end) == expected
    if expected:
        assert add_business(calendar, start, expected) <= end
