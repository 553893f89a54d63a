"""Calendars YAML: the packaged default, and every kind of mistake reported with its line."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import ALWAYS_OPEN, add_business, is_working, parse_span
from sla.config import InvalidCalendarError, default_calendars, load_calendars, load_calendars_text
from workflow.errors import Problem

SH = ZoneInfo("Asia/Shanghai")


def test_default_calendars() -> None:
    calendars = default_calendars()
    assert set(calendars) == {"default", "24x7"}
    default = calendars["default"]
    assert default.timezone == "Asia/Shanghai" and default.country == "CN"
    assert default.day_length == 9 * 3600
    assert all(default.hours[d] == (parse_span("09:00-18:00"),) for d in range(5))
    assert default.hours[5] == default.hours[6] == ()
    assert calendars["24x7"].always_open
    # 2026 make-up days come from the holidays package, festival days are off.
    assert default.is_working_day(date(2026, 2, 14)) and default.is_working_day(date(2026, 9, 20))
    assert not default.is_working_day(date(2026, 2, 17))
    assert default_calendars() is not default_calendars()  # callers may add to their copy
    assert default_calendars()["default"] is default  # the calendars (and their caches) are shared


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            calendars:
              shanghai-lunch:
                description: office with a lunch break
                timezone: Asia/Shanghai
                hours:
                  mon: ["09:00-12:00", "13:00-18:00"]
                  tue: ["09:00-12:00", "13:00-18:00"]
                  wed: "09:00-12:00"
                  sat: []
                holidays: {country: CN, official_workdays: false}
                extra_days_off: [2026-03-04, "2026-03-05"]
                extra_working_days: [2026-03-07]
                extra_working_hours: ["10:00-15:00"]
                day_length: 8h
            """
        ),
        encoding="utf-8",
    )
    calendars = load_calendars(path)
    assert set(calendars) == {"shanghai-lunch", "24x7"}  # 24x7 always exists
    assert calendars["24x7"] is ALWAYS_OPEN
    cal = calendars["shanghai-lunch"]
    assert cal.description == "office with a lunch break"
    assert cal.hours[0] == (parse_span("09:00-12:00"), parse_span("13:00-18:00"))
    assert cal.hours[2] == (parse_span("09:00-12:00"),)
    assert cal.hours[3] == cal.hours[4] == ()
    assert cal.extra_days_off == {date(2026, 3, 4), date(2026, 3, 5)}
    assert cal.local_hours(date(2026, 3, 7)) == (parse_span("10:00-15:00"),)
    assert not cal.is_working_day(date(2026, 2, 14))  # official make-up days switched off
    assert cal.day_length == 8 * 3600
    assert not is_working(cal, datetime(2026, 3, 2, 12, 30, tzinfo=SH))
    assert add_business(cal, datetime(2026, 3, 2, 11, tzinfo=SH), 2 * 3600) == datetime(2026, 3, 2, 14, tzinfo=SH)


def test_always_open_calendar_may_be_listed_with_a_zone() -> None:
    calendars = load_calendars_text(
        "calendars:\n  24x7: {always_open: true}\n  round: {always_open: true, timezone: Asia/Shanghai}\n"
    )
    assert calendars["24x7"].always_open and calendars["round"].always_open
    assert calendars["round"].timezone == "Asia/Shanghai"


def test_missing_file() -> None:
    with pytest.raises(InvalidCalendarError) as info:
        load_calendars("/nonexistent/calendars.yaml")
    assert info.value.problems[0].line == 1
    assert "cannot read file" in info.value.problems[0].message


GOOD_HEAD = """\
calendars:
  office:
    timezone: Asia/Shanghai
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(InvalidCalendarError) as info:
        load_calendars_text(text, file="desk/calendars.yaml")
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    assert all(p.file == "desk/calendars.yaml" for p in info.value.problems)
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param(
            "calendars:\n  office:\n    timezone: Mars/Olympus\n    hours: {mon: ['09:00-18:00']}\n",
            3,
            "unknown timezone 'Mars/Olympus'",
            id="bad-timezone",
        ),
        pytest.param(
            "calendars:\n  office:\n    hours: {mon: ['09:00-18:00']}\n",
            2,
            "timezone is required",
            id="missing-timezone",
        ),
        pytest.param(
            GOOD_HEAD + "    hours:\n      mon: ['09:00-18:00']\n      tue: ['9am-6pm']\n",
            6,
            "'9am-6pm' must look like '09:00-18:00'",
            id="bad-span-text",
        ),
        pytest.param(
            GOOD_HEAD + "    hours:\n      mon:\n        - '09:00-18:00'\n        - '18:00-17:00'\n",
            7,
            "must end after it starts",
            id="reversed-span",
        ),
        pytest.param(
            GOOD_HEAD + "    hours:\n      mon: [540]\n",
            5,
            "must be text",
            id="span-not-text",
        ),
        pytest.param(
            GOOD_HEAD + "    hours:\n      mon: ['09:00-18:00']\n      wed: ['09:00-13:00', '12:00-18:00']\n",
            6,
            "overlap",
            id="overlapping-spans",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    holidays:\n      country: XX\n",
            6,
            "unknown holiday country 'XX'",
            id="unknown-country",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    holidays: {country: CN, subdivision: ZZ}\n",
            5,
            "no holiday subdivision 'ZZ'",
            id="unknown-subdivision",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    holidays:\n      country: CN\n      region: SH\n",
            7,
            "unknown key 'region'",
            id="unknown-holidays-key",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    holidays: {}\n",
            5,
            "need a country",
            id="holidays-without-country",
        ),
        pytest.param(
            GOOD_HEAD
            + "    hours: {mon: ['09:00-18:00']}\n    extra_days_off:\n      - 2026-10-09\n      - '2026-13-01'\n",
            7,
            "'2026-13-01' is not a date",
            id="bad-date-text",
        ),
        pytest.param(
            GOOD_HEAD
            + "    hours: {mon: ['09:00-18:00']}\n    extra_working_days:\n      - 2026-02-14\n      - 2026-02-30\n",
            7,
            "invalid value '2026-02-30': day is out of range",
            id="impossible-date",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    extra_days_off: [2026-10-09 10:00:00]\n",
            5,
            "is not a date",
            id="datetime-not-date",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    extra_days_off: 2026-10-09\n",
            5,
            "expected a list of dates",
            id="dates-not-a-list",
        ),
        pytest.param(
            GOOD_HEAD
            + "    hours: {mon: ['09:00-18:00']}\n    extra_days_off: [2026-03-07]\n    extra_working_days:\n"
            + "      - 2026-03-07\n",
            7,
            "also listed in extra_days_off",
            id="date-both-off-and-working",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    weekend: [sat, sun]\n",
            5,
            "unknown key 'weekend' in calendar 'office'",
            id="unknown-calendar-key",
        ),
        pytest.param(
            GOOD_HEAD + "    hours:\n      monday: ['09:00-18:00']\n",
            5,
            "unknown key 'monday'",
            id="unknown-weekday",
        ),
        pytest.param(
            "timezone: UTC\n" + GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n",
            1,
            "unknown key 'timezone' in calendars file",
            id="unknown-top-key",
        ),
        pytest.param(GOOD_HEAD, 2, "hours are required", id="missing-hours"),
        pytest.param(
            GOOD_HEAD + "    hours: ['09:00-18:00']\n",
            4,
            "hours must map weekdays",
            id="hours-not-a-mapping",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {sat: [], sun: []}\n",
            2,
            "no working hours on any weekday",
            id="never-open",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    day_length: 2 business days\n",
            5,
            "day_length must be a wall-clock length",
            id="business-day-length",
        ),
        pytest.param(
            GOOD_HEAD + "    hours: {mon: ['09:00-18:00']}\n    day_length: long\n",
            5,
            "cannot parse duration",
            id="bad-day-length",
        ),
        pytest.param(
            "calendars:\n  24x7:\n    timezone: UTC\n    hours: {mon: ['09:00-18:00']}\n",
            2,
            "reserved for the always-open calendar",
            id="24x7-reserved",
        ),
        pytest.param(
            "calendars:\n  round:\n    always_open: true\n    hours: {mon: ['09:00-18:00']}\n",
            4,
            "unknown key 'hours' in always-open calendar 'round'",
            id="always-open-with-hours",
        ),
        pytest.param(
            "calendars:\n  round:\n    always_open: yes please\n",
            3,
            "always_open must be true or false",
            id="always-open-not-bool",
        ),
        pytest.param("calendars:\n  office: [UTC]\n", 2, "options must be a mapping", id="calendar-not-a-mapping"),
        pytest.param("calendars: []\n", 1, "must be a mapping with 'calendars'", id="calendars-not-a-mapping"),
        pytest.param("- office\n", 1, "must be a mapping with 'calendars'", id="not-a-mapping"),
        pytest.param("", 1, "must be a mapping with 'calendars'", id="empty-file"),
        pytest.param("calendars:\n  office: {timezone: UTC\n", 3, "invalid YAML", id="yaml-syntax"),
        pytest.param(
            "calendars:\n  office: {always_open: true}\n  office: {always_open: true}\n",
            3,
            "duplicate key 'office'",
            id="duplicate-calendar",
        ),
    ],
)
def test_problems_carry_the_line(text: str, line: int, fragment: str) -> None:
    problems = problems_of(text)
    assert any(fragment in p.message and p.line == line for p in problems), problems
    assert all(p.message.count("calendar '") <= 1 for p in problems), problems  # the name is said once


def test_every_problem_is_reported_at_once() -> None:
    text = textwrap.dedent(
        """\
        calendars:
          a:
            timezone: Nowhere/City
            hours:
              mon: ['09:00-18:00', '17:00-19:00']
            holidays: {country: XX}
            extra_days_off: [someday]
          b:
            timezone: UTC
            hours: {tue: ['25:00-26:00']}
            colour: blue
        """
    )
    problems = problems_of(text)
    assert [p.line for p in problems] == [3, 5, 6, 7, 11, 10]
    assert "calendar 'a'" in problems[0].message and "calendar 'b'" in problems[-1].message


def test_problem_strings_name_file_and_line() -> None:
    problems = problems_of(GOOD_HEAD + "    hours: {mon: ['9-18']}\n")
    assert str(problems[0]).startswith("desk/calendars.yaml:4: calendar 'office': working span '9-18'")


def test_spans_may_run_to_midnight() -> None:
    calendars = load_calendars_text(GOOD_HEAD + "    hours: {fri: ['18:00-24:00'], sat: ['00:00-24:00']}\n")
    office = calendars["office"]
    assert office.hours[4] == ((time(18), time(0)),)
    assert office.day_length == 6 * 3600  # Monday is closed: Friday is the first open weekday
