"""Named business calendars loaded from ``calendars.yaml``, with every problem reported by line."""

from __future__ import annotations

import functools
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sla.calendar import (
    ALWAYS_OPEN,
    ALWAYS_OPEN_NAME,
    WEEKDAY_NAMES,
    Calendar,
    DayHours,
    check_country,
    check_timezone,
    normalise_day,
    parse_span,
)
from workflow.durations import DurationError, parse_duration
from workflow.errors import ConfigError, Problem
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

YamlPath = tuple[str | int, ...]

_TOP_KEYS = {"calendars", "description"}
_CALENDAR_KEYS = {
    "description",
    "timezone",
    "hours",
    "holidays",
    "extra_days_off",
    "extra_working_days",
    "extra_working_hours",
    "day_length",
    "always_open",
}
_ALWAYS_OPEN_KEYS = {"description", "timezone", "always_open"}
_HOLIDAY_KEYS = {"country", "subdivision", "official_workdays"}


class InvalidCalendarError(ConfigError):
    """A calendars file that cannot be used; carries every problem found."""


def load_calendars(path: str | Path) -> dict[str, Calendar]:
    """Load a calendars file; raise :class:`InvalidCalendarError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidCalendarError([Problem(str(path), 1, f"cannot read file: {exc.strerror}")]) from exc
    return load_calendars_text(text, file=str(path))


def load_calendars_text(text: str, *, file: str = "<calendars>") -> dict[str, Calendar]:
    """Parse and validate calendars YAML; the ``24x7`` calendar is always present in the result."""
    try:
        located = load_located(text, file)
    except YamlError as exc:
        raise InvalidCalendarError([Problem(exc.file, exc.line, exc.message)]) from exc
    except ValueError as exc:
        # PyYAML builds dates while loading, so 2026-02-30 escapes as a bare ValueError without a line.
        line, value = _bad_scalar(text)
        shown = f" {value!r}" if value is not None else ""
        raise InvalidCalendarError([Problem(file, line, f"invalid value{shown}: {exc}")]) from exc
    return _Builder(located).build()


def default_calendars() -> dict[str, Calendar]:
    """The packaged ``sla/calendars.yaml`` (a fresh dict each call; the calendars are shared)."""
    return dict(_packaged())


@functools.cache
def _packaged() -> dict[str, Calendar]:
    source = resources.files("sla").joinpath("calendars.yaml")
    return load_calendars_text(source.read_text(encoding="utf-8"), file="sla/calendars.yaml")


def _bad_scalar(text: str) -> tuple[int, str | None]:
    """Line and text of the first scalar PyYAML cannot construct (found by re-walking the node tree)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 1, None
    stack: list[yaml.Node] = [root] if root is not None else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.MappingNode):
            stack[:0] = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack[:0] = list(node.value)
        else:
            loader = yaml.SafeLoader("")
            try:
                loader.construct_object(node, deep=True)
            except ValueError:
                return int(node.start_mark.line) + 1, str(node.value)
            finally:
                loader.dispose()
    return 1, None


def _as_date(item: Any) -> date | None:
    """A YAML date, or ISO text of one; datetimes are not dates here."""
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if isinstance(item, str):
        try:
            return date.fromisoformat(item.strip())
        except ValueError:
            return None
    return None


class _Builder:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, located: LocatedYaml) -> None:
        self.located = located
        self.problems: list[Problem] = []

    def problem(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.located.file, self.located.line(path), message))

    def _unknown_keys(self, mapping: dict[str, Any], allowed: set[str], path: YamlPath, what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem((*path, key), f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")

    def build(self) -> dict[str, Calendar]:
        data = self.located.data
        if not isinstance(data, dict) or not isinstance(data.get("calendars"), dict):
            where: YamlPath = ("calendars",) if isinstance(data, dict) and "calendars" in data else ()
            self.problem(where, "a calendars file must be a mapping with 'calendars': {name: options}")
            raise InvalidCalendarError(self.problems)
        self._unknown_keys(data, _TOP_KEYS, (), "calendars file")
        result: dict[str, Calendar] = {}
        for name, options in data["calendars"].items():
            calendar = self._calendar(name, options, ("calendars", name))
            if calendar is not None:
                result[name] = calendar
        if self.problems:
            raise InvalidCalendarError(self.problems)
        result.setdefault(ALWAYS_OPEN_NAME, ALWAYS_OPEN)
        return result

    def _calendar(self, name: str, options: Any, path: YamlPath) -> Calendar | None:
        if not isinstance(options, dict):
            self.problem(path, f"calendar {name!r} options must be a mapping")
            return None
        before = len(self.problems)
        what = f"calendar {name!r}"
        always_open = options.get("always_open", False)
        if not isinstance(always_open, bool):
            self.problem((*path, "always_open"), f"{what}: always_open must be true or false")
            return None
        timezone = options.get("timezone", "UTC" if always_open else None)
        if not isinstance(timezone, str):
            self.problem((*path, "timezone") if "timezone" in options else path, f"{what}: timezone is required")
        else:
            try:
                check_timezone(timezone)
            except ValueError:
                self.problem(
                    (*path, "timezone"), f"{what}: unknown timezone {timezone!r} (use a name like Asia/Shanghai)"
                )
        description = options.get("description", "")
        if not isinstance(description, str):
            self.problem((*path, "description"), f"{what}: description must be text")
        if always_open:
            self._unknown_keys(options, _ALWAYS_OPEN_KEYS, path, f"always-open {what}")
            if len(self.problems) > before or not isinstance(timezone, str):
                return None
            return Calendar(name=name, timezone=timezone, always_open=True, description=description)
        self._unknown_keys(options, _CALENDAR_KEYS, path, what)
        if name == ALWAYS_OPEN_NAME:
            self.problem(path, f"calendar name {ALWAYS_OPEN_NAME!r} is reserved for the always-open calendar")
        hours = self._week_hours(options, path, what)
        country, subdivision, official = self._holidays(options.get("holidays"), (*path, "holidays"), what)
        days_off = self._dates(options.get("extra_days_off"), (*path, "extra_days_off"), what)
        working = self._dates(options.get("extra_working_days"), (*path, "extra_working_days"), what)
        raw_working = options.get("extra_working_days")
        for index, item in enumerate(raw_working if isinstance(raw_working, list) else []):
            day = _as_date(item)
            if day is not None and day in days_off:
                self.problem((*path, "extra_working_days", index), f"{what}: {day} is also listed in extra_days_off")
        extra_hours: DayHours | None = None
        if "extra_working_hours" in options:
            extra_hours = self._day_hours(options["extra_working_hours"], (*path, "extra_working_hours"), what)
        day_length = 0
        if "day_length" in options:
            day_length = self._day_length(options["day_length"], (*path, "day_length"), what)
        if len(self.problems) > before or hours is None or not isinstance(timezone, str):
            return None
        try:
            return Calendar(
                name=name,
                timezone=timezone,
                hours=hours,
                country=country,
                subdivision=subdivision,
                official_workdays=official,
                extra_days_off=days_off,
                extra_working_days=working,
                extra_working_hours=extra_hours,
                day_length=day_length,
                description=description,
            )
        except ValueError as exc:
            message = str(exc)
            self.problem(path, message if message.startswith(what) else f"{what}: {message}")
            return None

    def _week_hours(self, options: dict[str, Any], path: YamlPath, what: str) -> tuple[DayHours, ...] | None:
        raw = options.get("hours")
        hours_path = (*path, "hours")
        if raw is None:
            self.problem(path if "hours" not in options else hours_path, f"{what}: hours are required")
            return None
        if not isinstance(raw, dict):
            self.problem(hours_path, f"{what}: hours must map weekdays (mon..sun) to lists of spans")
            return None
        self._unknown_keys(raw, set(WEEKDAY_NAMES), hours_path, f"{what} hours")
        week: list[DayHours] = []
        for weekday in WEEKDAY_NAMES:
            day = self._day_hours(raw.get(weekday), (*hours_path, weekday), what) if weekday in raw else ()
            week.append(day or ())
        return tuple(week)

    def _day_hours(self, raw: Any, path: YamlPath, what: str) -> DayHours | None:
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            self.problem(path, f"{what}: working hours must be a list of spans like '09:00-18:00'")
            return None
        spans = []
        ok = True
        for index, item in enumerate(items):
            try:
                if not isinstance(item, str):
                    raise ValueError(f"working span {item!r} must be text like '09:00-18:00' (quote it)")
                spans.append(parse_span(item))
            except ValueError as exc:
                self.problem((*path, index) if isinstance(raw, list) else path, f"{what}: {exc}")
                ok = False
        if not ok:
            return None
        try:
            return normalise_day(spans)
        except ValueError as exc:
            self.problem(path, f"{what}: {exc}")
            return None

    def _holidays(self, raw: Any, path: YamlPath, what: str) -> tuple[str | None, str | None, bool]:
        if raw is None:
            return None, None, True
        if not isinstance(raw, dict):
            self.problem(path, f"{what}: holidays must be a mapping like {{country: CN}}")
            return None, None, True
        self._unknown_keys(raw, _HOLIDAY_KEYS, path, f"{what} holidays")
        country = raw.get("country")
        subdivision = raw.get("subdivision")
        official = raw.get("official_workdays", True)
        if not isinstance(official, bool):
            self.problem((*path, "official_workdays"), f"{what}: official_workdays must be true or false")
            official = True
        if not isinstance(country, str):
            self.problem((*path, "country") if "country" in raw else path, f"{what}: holidays need a country code")
            return None, None, official
        if subdivision is not None and not isinstance(subdivision, str):
            subdivision = str(subdivision)
        try:
            check_country(country)
        except ValueError:
            self.problem((*path, "country"), f"{what}: unknown holiday country {country!r} (use a code such as CN)")
            return None, None, official
        if subdivision is not None:
            try:
                check_country(country, subdivision)
            except ValueError:
                self.problem(
                    (*path, "subdivision"), f"{what}: country {country!r} has no holiday subdivision {subdivision!r}"
                )
                return None, None, official
        return country, subdivision, official

    def _dates(self, raw: Any, path: YamlPath, what: str) -> frozenset[date]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list):
            self.problem(path, f"{what}: expected a list of dates like [2026-02-14]")
            return frozenset()
        result = set()
        for index, item in enumerate(raw):
            value = _as_date(item)
            if value is None:
                self.problem((*path, index), f"{what}: {item!r} is not a date like 2026-02-14")
            else:
                result.add(value)
        return frozenset(result)

    def _day_length(self, raw: Any, path: YamlPath, what: str) -> int:
        try:
            duration = parse_duration(raw)
        except DurationError as exc:
            self.problem(path, f"{what}: day_length: {exc}")
            return 0
        if duration.business or duration.wall_seconds > 86400:
            self.problem(path, f"{what}: day_length must be a wall-clock length of at most 24h, like '8h'")
            return 0
        return duration.wall_seconds
