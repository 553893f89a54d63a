"""Business calendars: concrete examples on the 2026 Chinese calendar, lunch breaks, DST and 24x7."""

from __future__ import annotations

import dataclasses
import time as wall
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import (
    ALWAYS_OPEN,
    Calendar,
    add_business,
    business_elapsed,
    format_span,
    goal_seconds,
    is_working,
    next_working_instant,
    normalise_day,
    office_hours,
    parse_span,
    week_hours_from_mapping,
)
from workflow.durations import parse_duration

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600

CN = Calendar(name="cn", timezone="Asia/Shanghai", hours=office_hours("09:00-18:00"), country="CN")
PLAIN = Calendar(name="plain", timezone="Asia/Shanghai", hours=office_hours("09:00-18:00"))
LUNCH = Calendar(name="lunch", timezone="Asia/Shanghai", hours=office_hours("09:00-12:00", "13:00-18:00"))


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


# --- spans -------------------------------------------------------------------


def test_parse_span() -> None:
    assert parse_span("09:00-18:00") == (time(9), time(18))
    assert parse_span(" 9:30 - 12:00 ") == (time(9, 30), time(12))
    assert parse_span("00:00-24:00") == (time(0), time(0))
    assert format_span(parse_span("13:00-24:00")) == "13:00-24:00"


@pytest.mark.parametrize("text", ["9-18", "18:00-09:00", "09:00-09:00", "25:00-26:00", "09:60-10:00", "24:30-24:40"])
def test_parse_span_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_span(text)


def test_normalise_day_sorts_and_refuses_overlaps() -> None:
    assert normalise_day(["13:00-18:00", "09:00-12:00"]) == (parse_span("09:00-12:00"), parse_span("13:00-18:00"))
    assert len(normalise_day(["09:00-12:00", "12:00-13:00"])) == 2  # touching is fine
    with pytest.raises(ValueError, match="overlap"):
        normalise_day(["09:00-12:30", "12:00-18:00"])


def test_week_hours_from_mapping() -> None:
    week = week_hours_from_mapping({"mon": ["09:00-18:00"], "sat": ["10:00-14:00"]})
    assert week[0] == (parse_span("09:00-18:00"),) and week[5] == (parse_span("10:00-14:00"),)
    assert week[1] == () and week[6] == ()
    with pytest.raises(ValueError, match="weekday"):
        week_hours_from_mapping({"monday": ["09:00-18:00"]})


# --- calendar construction ---------------------------------------------------


def test_calendar_defaults() -> None:
    assert CN.day_length == 9 * HOUR
    assert LUNCH.day_length == 8 * HOUR
    assert CN.extra_working_hours == (parse_span("09:00-18:00"),)
    assert ALWAYS_OPEN.day_length == 24 * HOUR and ALWAYS_OPEN.name == "24x7"
    tue_to_sat = Calendar(name="x", timezone="UTC", hours=office_hours("10:00-16:00", days=range(1, 6)))
    assert tue_to_sat.day_length == 6 * HOUR  # Monday closed: the first open weekday is the yardstick


def test_calendar_is_hashable_and_compares_by_value() -> None:
    twin = Calendar(name="cn", timezone="Asia/Shanghai", hours=office_hours("09:00-18:00"), country="CN")
    add_business(CN, sh(2026, 3, 2, 9), HOUR)  # fill CN's caches; they must not affect equality
    assert twin == CN and hash(twin) == hash(CN)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"hours": ((),) * 7}, "no working hours"),
        ({"hours": ((),) * 6}, "seven entries"),
        ({"country": "XX"}, "XX"),
        ({"country": "CN", "subdivision": "ZZ"}, "ZZ"),
        ({"subdivision": "BE"}, "needs a country"),
        ({"extra_days_off": {date(2026, 3, 7)}, "extra_working_days": {date(2026, 3, 7)}}, "both"),
        ({"day_length": -5}, "day_length"),
    ],
)
def test_calendar_refuses_bad_settings(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"name": "bad", "timezone": "UTC", "hours": office_hours("09:00-18:00")}
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Calendar(**settings)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused_everywhere() -> None:
    naive = datetime(2026, 3, 2, 10)
    aware = sh(2026, 3, 2, 10)
    for call in (
        lambda: add_business(CN, naive, 60),
        lambda: business_elapsed(CN, naive, aware),
        lambda: business_elapsed(CN, aware, naive),
        lambda: next_working_instant(CN, naive),
        lambda: is_working(CN, naive),
        lambda: add_business(ALWAYS_OPEN, naive, 60),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_negative_business_time_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business(CN, sh(2026, 3, 2, 10), -1)


# --- the basic week ------------------------------------------------------------


def test_span_boundaries() -> None:
    assert is_working(PLAIN, sh(2026, 3, 2, 9, 0))
    assert is_working(PLAIN, sh(2026, 3, 2, 17, 59, 59))
    assert not is_working(PLAIN, sh(2026, 3, 2, 18, 0))
    assert not is_working(PLAIN, sh(2026, 3, 2, 8, 59, 59))
    assert not is_working(PLAIN, sh(2026, 3, 7, 10, 0))  # Saturday


def test_add_business_results_are_utc() -> None:
    result = add_business(PLAIN, sh(2026, 3, 2, 10), HOUR)
    assert result.tzinfo is UTC and result == sh(2026, 3, 2, 11)


def test_full_day_lands_on_the_span_end_not_the_next_morning() -> None:
    assert add_business(PLAIN, sh(2026, 3, 2, 9), 9 * HOUR) == sh(2026, 3, 2, 18)
    assert add_business(PLAIN, sh(2026, 3, 2, 9), 9 * HOUR + 1) == sh(2026, 3, 3, 9, 0, 1)


def test_start_outside_working_time_counts_from_the_next_working_instant() -> None:
    assert add_business(PLAIN, sh(2026, 3, 7, 15), 2 * HOUR) == sh(2026, 3, 9, 11)  # Saturday -> Monday
    assert add_business(PLAIN, sh(2026, 3, 2, 7), 30 * 60) == sh(2026, 3, 2, 9, 30)  # early morning
    assert add_business(PLAIN, sh(2026, 3, 2, 19), 30 * 60) == sh(2026, 3, 3, 9, 30)  # evening


def test_zero_business_time_is_the_start_itself() -> None:
    saturday = sh(2026, 3, 7, 15)
    assert add_business(PLAIN, saturday, 0) == saturday


def test_next_working_instant() -> None:
    assert next_working_instant(PLAIN, sh(2026, 3, 2, 10)) == sh(2026, 3, 2, 10)
    assert next_working_instant(PLAIN, sh(2026, 3, 2, 18)) == sh(2026, 3, 3, 9)
    assert next_working_instant(PLAIN, sh(2026, 3, 6, 18, 30)) == sh(2026, 3, 9, 9)


def test_business_elapsed() -> None:
    assert business_elapsed(PLAIN, sh(2026, 3, 2, 10), sh(2026, 3, 2, 10)) == 0
    assert business_elapsed(PLAIN, sh(2026, 3, 3, 10), sh(2026, 3, 2, 10)) == 0
    assert business_elapsed(PLAIN, sh(2026, 3, 6, 17), sh(2026, 3, 9, 10)) == 2 * HOUR
    assert business_elapsed(PLAIN, sh(2026, 3, 2, 0), sh(2026, 3, 9, 0)) == 45 * HOUR
    # Sub-second parts are floored to whole seconds.
    assert business_elapsed(PLAIN, sh(2026, 3, 2, 10), sh(2026, 3, 2, 10) + timedelta(microseconds=999_999)) == 0


def test_goal_seconds() -> None:
    assert goal_seconds(parse_duration("90m"), CN) == 90 * 60
    assert goal_seconds(parse_duration("48h"), CN) == 48 * HOUR
    assert goal_seconds(parse_duration("7d"), CN) == 7 * 24 * HOUR
    assert goal_seconds(parse_duration("2 business hours"), CN) == 2 * HOUR
    assert goal_seconds(parse_duration("30 business minutes"), CN) == 30 * 60
    assert goal_seconds(parse_duration("7 business days"), CN) == 63 * HOUR
    assert goal_seconds(parse_duration("1 business day"), LUNCH) == 8 * HOUR
    assert goal_seconds(parse_duration("1 business day"), ALWAYS_OPEN) == 24 * HOUR
    custom = dataclasses.replace(PLAIN, day_length=8 * HOUR)
    assert goal_seconds(parse_duration("2 business days"), custom) == 16 * HOUR


def test_one_business_day_from_monday_morning_is_tuesday_same_time() -> None:
    one_day = goal_seconds(parse_duration("1 business day"), PLAIN)
    assert add_business(PLAIN, sh(2026, 3, 2, 10), one_day) == sh(2026, 3, 3, 10)
    five_days = goal_seconds(parse_duration("5 business days"), PLAIN)
    assert add_business(PLAIN, sh(2026, 3, 2, 10), five_days) == sh(2026, 3, 9, 10)
    assert add_business(LUNCH, sh(2026, 3, 2, 10), goal_seconds(parse_duration("1 business day"), LUNCH)) == sh(
        2026, 3, 3, 10
    )


# --- 2026 Chinese public holidays and make-up working days ---------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1),  # New Year
        date(2026, 1, 2),  # New Year bridge (made up on Sunday 4 January)
        *(date(2026, 2, d) for d in range(15, 24)),  # Spring Festival, 15-23 February
        date(2026, 4, 6),  # Qingming
        *(date(2026, 5, d) for d in range(1, 6)),  # Labour Day
        date(2026, 6, 19),  # Dragon Boat
        date(2026, 9, 25),  # Mid-Autumn
        *(date(2026, 10, d) for d in range(1, 8)),  # National Day
    ],
)
def test_2026_chinese_holidays_are_not_working_time(day: date) -> None:
    assert not CN.is_working_day(day)
    assert not is_working(CN, datetime.combine(day, time(10), tzinfo=SH))


@pytest.mark.parametrize(
    "day",
    [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20), date(2026, 10, 10)],
)
def test_2026_make_up_weekend_days_are_working_time(day: date) -> None:
    assert day.weekday() >= 5
    assert is_working(CN, datetime.combine(day, time(10), tzinfo=SH))
    assert not is_working(CN, datetime.combine(day, time(18, 30), tzinfo=SH))
    assert not is_working(PLAIN, datetime.combine(day, time(10), tzinfo=SH))  # no country, no make-up days


def test_ordinary_2026_weekends_and_weekdays() -> None:
    assert not CN.is_working_day(date(2026, 3, 7))
    assert CN.is_working_day(date(2026, 2, 24))  # first day back after Spring Festival
    assert CN.is_working_day(date(2026, 10, 9))


def test_two_hours_from_friday_evening_before_qingming_lands_after_the_holiday() -> None:
    # Friday 3 April 17:30; Sat 4, Sun 5 and Mon 6 April are off.
    assert add_business(CN, sh(2026, 4, 3, 17, 30), 2 * HOUR) == sh(2026, 4, 7, 10, 30)


def test_two_hours_from_friday_evening_before_spring_festival_uses_the_make_up_saturday() -> None:
    # Friday 13 February 17:30; Saturday 14 February is a make-up working day.
    assert add_business(CN, sh(2026, 2, 13, 17, 30), 2 * HOUR) == sh(2026, 2, 14, 10, 30)
    # From that Saturday evening the next working time is after the whole festival.
    assert add_business(CN, sh(2026, 2, 14, 17, 30), 2 * HOUR) == sh(2026, 2, 24, 10, 30)


def test_elapsed_over_spring_festival() -> None:
    # Fri 13 (9 h) + make-up Sat 14 (9 h); 15-23 February off.
    assert business_elapsed(CN, sh(2026, 2, 13, 9), sh(2026, 2, 24, 9)) == 18 * HOUR
    assert next_working_instant(CN, sh(2026, 2, 16, 12)) == sh(2026, 2, 24, 9)


def test_operator_days_off_and_working_days() -> None:
    extra = dataclasses.replace(
        CN,
        extra_days_off=frozenset({date(2026, 3, 4), date(2026, 2, 28)}),
        extra_working_days=frozenset({date(2026, 3, 7), date(2026, 2, 17)}),
        extra_working_hours=normalise_day(["10:00-16:00"]),
    )
    assert not extra.is_working_day(date(2026, 3, 4))  # an ordinary Wednesday, closed
    assert not extra.is_working_day(date(2026, 2, 28))  # closed beats the official make-up day
    assert extra.local_hours(date(2026, 3, 7)) == (parse_span("10:00-16:00"),)  # an extra Saturday
    assert extra.local_hours(date(2026, 2, 17)) == (parse_span("10:00-16:00"),)  # open on a holiday
    assert extra.local_hours(date(2026, 2, 14)) == (parse_span("10:00-16:00"),)  # make-up days use those hours
    assert add_business(extra, sh(2026, 3, 3, 17), 2 * HOUR) == sh(2026, 3, 5, 10)


def test_official_workdays_can_be_switched_off() -> None:
    without = dataclasses.replace(CN, official_workdays=False)
    assert not without.is_working_day(date(2026, 2, 14))
    assert not without.is_working_day(date(2026, 2, 17))


# --- lunch breaks --------------------------------------------------------------


def test_lunch_break_is_not_working_time() -> None:
    assert not is_working(LUNCH, sh(2026, 3, 2, 12, 30))
    assert add_business(LUNCH, sh(2026, 3, 2, 11, 30), HOUR) == sh(2026, 3, 2, 13, 30)
    assert add_business(LUNCH, sh(2026, 3, 2, 9), 3 * HOUR) == sh(2026, 3, 2, 12)  # ends at the morning span end
    assert business_elapsed(LUNCH, sh(2026, 3, 2, 11), sh(2026, 3, 2, 14)) == 2 * HOUR
    assert next_working_instant(LUNCH, sh(2026, 3, 2, 12, 15)) == sh(2026, 3, 2, 13)


# --- DST -------------------------------------------------------------------------

BERLIN_OFFICE = Calendar(name="berlin", timezone="Europe/Berlin", hours=office_hours("09:00-18:00"), country="DE")
BERLIN_ALL_DAY = Calendar(
    name="berlin-all-day", timezone="Europe/Berlin", hours=office_hours("00:00-24:00", days=range(7))
)


def test_office_hours_keep_local_time_across_the_march_switch() -> None:
    # Clocks go forward on Sunday 29 March 2026; Friday 17:00 CET + 2 h -> Monday 10:00 CEST.
    result = add_business(BERLIN_OFFICE, berlin(2026, 3, 27, 17), 2 * HOUR)
    assert result == berlin(2026, 3, 30, 10)
    assert result == datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert business_elapsed(BERLIN_OFFICE, berlin(2026, 3, 27, 9), berlin(2026, 3, 30, 18)) == 18 * HOUR


def test_dst_days_have_their_real_length() -> None:
    assert business_elapsed(BERLIN_ALL_DAY, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * HOUR
    assert business_elapsed(BERLIN_ALL_DAY, berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * HOUR
    assert add_business(BERLIN_ALL_DAY, berlin(2026, 3, 29), 23 * HOUR) == berlin(2026, 3, 30)


def test_span_over_the_skipped_hour_counts_only_real_time() -> None:
    # 01:00-04:00 on the switch Sunday is 01:00 CET to 04:00 CEST: two real hours.
    night = Calendar(name="night", timezone="Europe/Berlin", hours=office_hours("01:00-04:00", days=[6]))
    assert night.working_spans(date(2026, 3, 29)) == (
        (datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC)),
    )
    assert business_elapsed(night, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 2 * HOUR
    split = Calendar(name="split", timezone="Europe/Berlin", hours=office_hours("01:00-02:30", "03:00-04:00", days=[6]))
    # 02:30 does not exist that night; the spans overlap once converted and must not count twice.
    assert business_elapsed(split, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 2 * HOUR


def test_german_holiday_from_the_package() -> None:
    assert not BERLIN_OFFICE.is_working_day(date(2026, 4, 3))  # Good Friday
    assert not BERLIN_OFFICE.is_working_day(date(2026, 10, 3))  # German Unity Day (a Saturday anyway)
    assert BERLIN_OFFICE.is_working_day(date(2026, 1, 6))  # Epiphany is not a national holiday...
    bavaria = dataclasses.replace(BERLIN_OFFICE, subdivision="BY")
    assert not bavaria.is_working_day(date(2026, 1, 6))  # ...but it is one in Bavaria


# --- 24x7 --------------------------------------------------------------------------


def test_always_open() -> None:
    start = sh(2026, 2, 17, 3, 15)  # a holiday at night: irrelevant on 24x7
    assert is_working(ALWAYS_OPEN, start)
    assert next_working_instant(ALWAYS_OPEN, start) == start
    assert add_business(ALWAYS_OPEN, start, 48 * HOUR) == start + timedelta(hours=48)
    assert business_elapsed(ALWAYS_OPEN, start, start + timedelta(days=7)) == 7 * 24 * HOUR


# --- long spans --------------------------------------------------------------------


def test_long_spans_are_fast_and_exact() -> None:
    fresh = dataclasses.replace(CN)  # empty caches
    start = sh(2026, 3, 2, 10, 17, 3)
    seconds = 1000 * 9 * HOUR  # about four years of business days
    began = wall.perf_counter()
    due = add_business(fresh, start, seconds)
    assert business_elapsed(fresh, start, due) == seconds
    assert wall.perf_counter() - began < 2.0
    assert due.year in (2030, 2031)


def test_calendar_without_working_time_for_a_long_time_is_reported() -> None:
    closed = Calendar(
        name="closed",
        timezone="UTC",
        hours=office_hours("09:00-18:00"),
        extra_days_off=frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(800)),
    )
    with pytest.raises(ValueError, match="no working time"):
        add_business(closed, datetime(2026, 1, 1, tzinfo=UTC), HOUR)
    with pytest.raises(ValueError, match="no working time"):
        next_working_instant(closed, datetime(2026, 1, 1, tzinfo=UTC))
