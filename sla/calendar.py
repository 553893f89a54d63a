"""Business calendars and working-time arithmetic: when have N seconds of working time elapsed?

Working time is a set of half-open intervals ``[span start, span end)`` computed per *local*
date of the calendar's zone and converted to UTC, so DST days get their real length (a
09:00-18:00 span is still nine hours, a 00:00-24:00 span is 23 h on the spring switch).
Arithmetic is done with ``timedelta`` (exact microseconds) and skips whole days and weeks
using cached per-day totals, so adding a year of business time costs a few hundred lookups.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from sla.clock import ensure_aware
from workflow.durations import Duration

Span = tuple[time, time]
"""Local start and end of working time within one day; an end of ``time(0)`` means 24:00."""
DayHours = tuple[Span, ...]
WeekHours = tuple[DayHours, ...]
"""Seven entries, Monday (0) to Sunday (6)."""

ALWAYS_OPEN_NAME = "24x7"
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_MIDNIGHT = time(0)
# A calendar with working hours every week can only go this long without working time if
# someone listed a year of days off; scanning further would just hang the caller.
_MAX_IDLE_DAYS = 400

_SPAN_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


# ---------------------------------------------------------------------------
# Spans


def parse_span(text: str) -> Span:
    """Parse ``"09:00-18:00"``; ``24:00`` is accepted as an end (stored as ``time(0)``)."""
    match = _SPAN_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"working span {text!r} must look like '09:00-18:00'")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sm > 59 or em > 59 or sh > 23 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"working span {text!r} has an invalid time of day")
    start = time(sh, sm)
    end = _MIDNIGHT if eh == 24 else time(eh, em)
    first, last = _span_bounds((start, end))
    if first >= last:
        raise ValueError(f"working span {text!r} must end after it starts (split overnight work over two days)")
    return start, end


def _span_bounds(span: Span) -> tuple[int, int]:
    """Seconds since local midnight of a span's start and end (end ``00:00`` is 86400)."""
    start, end = span

    def seconds(t: time) -> int:
        return t.hour * 3600 + t.minute * 60 + t.second

    end_seconds = 86400 if end == _MIDNIGHT else seconds(end)
    return seconds(start), end_seconds


def format_span(span: Span) -> str:
    start, end = span
    end_text = "24:00" if end == _MIDNIGHT else end.strftime("%H:%M")
    return f"{start.strftime('%H:%M')}-{end_text}"


def normalise_day(spans: Iterable[Span | str]) -> DayHours:
    """Spans of one day sorted by start; touching spans are fine, overlapping ones are refused."""
    parsed = [parse_span(s) if isinstance(s, str) else (s[0], s[1]) for s in spans]
    for span in parsed:
        if span[0].tzinfo is not None or span[1].tzinfo is not None:
            raise ValueError("working span times must be local times without tzinfo")
        start, end = _span_bounds(span)
        if start >= end:
            raise ValueError(f"working span {format_span(span)} must end after it starts")
    parsed.sort(key=_span_bounds)
    for before, after in zip(parsed, parsed[1:], strict=False):
        if _span_bounds(after)[0] < _span_bounds(before)[1]:
            raise ValueError(f"working spans {format_span(before)} and {format_span(after)} overlap")
    return tuple(parsed)


def office_hours(*spans: Span | str, days: Iterable[int] = range(5)) -> WeekHours:
    """Week hours with the same ``spans`` on each of ``days`` (0=Mon) and nothing on the others."""
    day_hours = normalise_day(spans)
    chosen = set(days)
    return tuple(day_hours if weekday in chosen else () for weekday in range(7))


def _day_seconds(hours: DayHours) -> int:
    return sum(end - start for start, end in map(_span_bounds, hours))


# ---------------------------------------------------------------------------
# Public holidays (shared between calendars: the same country tables are built once per year)


@functools.lru_cache(maxsize=512)
def _public_days(country: str, subdivision: str | None, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(holidays, official weekend working days) of one year from the ``holidays`` package."""
    table = holidays_lib.country_holidays(country, subdiv=subdivision, years=year)
    days_off = frozenset(day for day in table if day.year == year)
    # Some countries (China, ...) publish make-up working weekends; older package versions lack the set.
    workdays = frozenset(day for day in getattr(table, "weekend_workdays", ()) if day.year == year)
    return days_off, workdays


def check_country(country: str, subdivision: str | None = None) -> None:
    """Raise ``ValueError`` if the ``holidays`` package has no such country or subdivision."""
    try:
        holidays_lib.country_holidays(country, subdiv=subdivision, years=[])
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise ValueError(str(exc).strip("'\"") or f"unknown holiday country {country!r}") from exc


def check_timezone(name: str) -> ZoneInfo:
    """The zone called ``name``; ``ValueError`` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


# ---------------------------------------------------------------------------
# Calendar


@dataclass(frozen=True, slots=True)
class _Day:
    start: datetime  # local midnight, as UTC
    end: datetime  # the next local midnight, as UTC
    spans: tuple[tuple[datetime, datetime], ...]  # UTC, sorted, disjoint
    total: timedelta


@dataclass(frozen=True)
class Calendar:
    """When work happens: weekly hours in a zone, minus holidays and days off, plus make-up days.

    Precedence for a local date: ``extra_days_off`` (operator says closed) beats
    ``extra_working_days`` (operator says open, with ``extra_working_hours``), which beats
    public holidays, which beat the package's official make-up working weekends (also
    ``extra_working_hours``, when ``official_workdays``), which beat the weekly ``hours``.
    """

    name: str
    timezone: str = "UTC"
    hours: WeekHours = ((), (), (), (), (), (), ())
    country: str | None = None
    subdivision: str | None = None
    official_workdays: bool = True
    extra_days_off: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    extra_working_hours: DayHours | None = None
    always_open: bool = False
    day_length: int = 0
    """Seconds in one business day; 0 means the nominal length of a regular Monday's spans."""
    description: str = field(default="", compare=False)

    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: dict[date, _Day] = field(init=False, repr=False, compare=False, default_factory=dict)
    _weeks: dict[date, timedelta] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_zone", check_timezone(self.timezone))
        set_(self, "extra_days_off", frozenset(self.extra_days_off))
        set_(self, "extra_working_days", frozenset(self.extra_working_days))
        both = self.extra_days_off & self.extra_working_days
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"calendar {self.name!r}: {listed} listed both as a day off and as a working day")
        if self.always_open:
            set_(self, "hours", office_hours("00:00-24:00", days=range(7)))
        else:
            if len(self.hours) != 7:
                raise ValueError(f"calendar {self.name!r}: hours needs seven entries, Monday to Sunday")
            set_(self, "hours", tuple(normalise_day(day) for day in self.hours))
            if not any(self.hours):
                raise ValueError(f"calendar {self.name!r} has no working hours on any weekday")
        # A regular Monday is the yardstick; fall back to the first open weekday for odd weeks.
        yardstick = next(day for day in (self.hours[0], *self.hours) if day)
        extra = yardstick if self.extra_working_hours is None else normalise_day(self.extra_working_hours)
        set_(self, "extra_working_hours", extra)
        if self.day_length == 0:
            set_(self, "day_length", _day_seconds(yardstick))
        if self.day_length <= 0:
            raise ValueError(f"calendar {self.name!r}: day_length must be positive")
        if self.country is not None:
            check_country(self.country, self.subdivision)
        elif self.subdivision is not None:
            raise ValueError(f"calendar {self.name!r}: a holiday subdivision needs a country")

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    # -- per-day data ------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        return ensure_aware(instant).astimezone(self._zone).date()

    def local_hours(self, day: date) -> DayHours:
        """The local spans that apply on ``day`` after holidays, days off and make-up days."""
        if self.always_open:
            return self.hours[0]
        if day in self.extra_days_off:
            return ()
        extra = self.extra_working_hours or ()
        if day in self.extra_working_days:
            return extra
        if self.country is not None:
            days_off, workdays = _public_days(self.country, self.subdivision, day.year)
            if day in days_off:
                return ()
            if self.official_workdays and day in workdays:
                return extra
        return self.hours[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        """Whether the local date has any working time."""
        return bool(self.local_hours(day))

    def working_spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The UTC intervals of working time on one local date."""
        return self._day(day).spans

    def _utc(self, day: date, at: time) -> datetime:
        # fold=0: an ambiguous local time is its first occurrence, a skipped one maps forward.
        return datetime.combine(day, at, tzinfo=self._zone).astimezone(UTC)

    def _day(self, day: date) -> _Day:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        start = self._utc(day, _MIDNIGHT)
        end = self._utc(day + _DAY, _MIDNIGHT)
        raw = []
        for span_start, span_end in self.local_hours(day):
            a = self._utc(day, span_start)
            b = end if span_end == _MIDNIGHT else self._utc(day, span_end)
            if b > a:
                raw.append((a, b))
        # Spans touching a DST gap can overlap once in UTC; merge so that no instant counts twice.
        raw.sort()
        merged: list[tuple[datetime, datetime]] = []
        for a, b in raw:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        total = sum((b - a for a, b in merged), _ZERO)
        result = _Day(start=start, end=end, spans=tuple(merged), total=total)
        # Benign race: two threads may compute the same day; both results are equal.
        self._days[day] = result
        return result

    def _week(self, monday: date) -> timedelta:
        cached = self._weeks.get(monday)
        if cached is None:
            cached = sum((self._day(monday + _DAY * i).total for i in range(7)), _ZERO)
            self._weeks[monday] = cached
        return cached


ALWAYS_OPEN = Calendar(name=ALWAYS_OPEN_NAME, timezone="UTC", always_open=True, description="always open")
"""The wall clock as a calendar: every instant is working time and a business day is 24 h."""


def _idle_check(calendar: Calendar, last_work: date, day: date) -> None:
    if day - last_work > timedelta(days=_MAX_IDLE_DAYS):
        raise ValueError(f"calendar {calendar.name!r} has no working time for {_MAX_IDLE_DAYS} days after {last_work}")


# ---------------------------------------------------------------------------
# Arithmetic


def is_working(calendar: Calendar, t: datetime) -> bool:
    """Whether ``t`` lies in working time (span starts count, span ends do not)."""
    t = ensure_aware(t, "t")
    if calendar.always_open:
        return True
    return any(a <= t < b for a, b in calendar._day(calendar.local_date(t)).spans)


def next_working_instant(calendar: Calendar, t: datetime) -> datetime:
    """``t`` itself if it is working time, else the start of the next working span (UTC)."""
    t = ensure_aware(t, "t")
    if calendar.always_open:
        return t
    day = calendar.local_date(t) - _DAY
    first = day
    while True:
        for a, b in calendar._day(day).spans:
            if b > t:
                return max(a, t)
        day += _DAY
        _idle_check(calendar, first, day)


def add_business(calendar: Calendar, start: datetime, seconds: int) -> datetime:
    """The first instant at which ``seconds`` of working time have elapsed since ``start`` (UTC).

    Time before the next working instant does not count. For ``seconds > 0`` the result is in
    working time or exactly at a span end (9 h from Monday 09:00 on 09:00-18:00 is Monday 18:00,
    not Tuesday 09:00); for ``seconds == 0`` it is ``start`` itself.
    """
    start = ensure_aware(start, "start")
    if seconds < 0:
        raise ValueError(f"cannot add a negative amount of business time ({seconds} s)")
    remaining = timedelta(seconds=seconds)
    if remaining == _ZERO:
        return start
    if calendar.always_open:
        return start + remaining
    day = calendar.local_date(start) - _DAY
    last_work = day
    while True:
        if day.weekday() == 0 and calendar._day(day).start >= start:
            week = calendar._week(day)
            if remaining > week:
                remaining -= week
                if week:
                    last_work = day
                day += _WEEK
                _idle_check(calendar, last_work, day)
                continue
        info = calendar._day(day)
        if info.start >= start and remaining > info.total:
            remaining -= info.total
        else:
            for a, b in info.spans:
                if b <= start:
                    continue
                begin = max(a, start)
                available = b - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        if info.total:
            last_work = day
        day += _DAY
        _idle_check(calendar, last_work, day)


def business_elapsed(calendar: Calendar, start: datetime, end: datetime) -> int:
    """Whole seconds of working time in ``[start, end)``; 0 when ``end <= start``."""
    start = ensure_aware(start, "start")
    end = ensure_aware(end, "end")
    if end <= start:
        return 0
    if calendar.always_open:
        return (end - start) // _SECOND
    total = _ZERO
    day = calendar.local_date(start) - _DAY
    last = calendar.local_date(end)
    while day <= last:
        if day.weekday() == 0 and calendar._day(day).start >= start and calendar._day(day + _WEEK).start <= end:
            total += calendar._week(day)
            day += _WEEK
            continue
        info = calendar._day(day)
        if info.start >= start and info.end <= end:
            total += info.total
        else:
            for a, b in info.spans:
                overlap = min(b, end) - max(a, start)
                if overlap > _ZERO:
                    total += overlap
        day += _DAY
    return total // _SECOND


def goal_seconds(duration: Duration, calendar: Calendar) -> int:
    """Seconds of clock time a goal means on ``calendar``.

    Wall-clock goals (``48h``, ``7d``) are plain seconds, to be counted on the 24x7 calendar;
    business minutes and hours are exact; business days are ``amount x calendar.day_length``.
    """
    if not duration.business:
        return duration.wall_seconds
    if duration.unit == "days":
        return duration.amount * calendar.day_length
    return duration.wall_seconds


def week_hours_from_mapping(mapping: dict[str, Sequence[Span | str]]) -> WeekHours:
    """Week hours from ``{"mon": ["09:00-18:00"], ...}``; missing weekdays are closed."""
    unknown = set(mapping) - set(WEEKDAY_NAMES)
    if unknown:
        raise ValueError(f"unknown weekday names: {', '.join(sorted(unknown))}")
    return tuple(normalise_day(mapping.get(name, ())) for name in WEEKDAY_NAMES)
