"""Dates, durations and money as a viewer reads them.

Instants are shown in the viewer's time zone (the browser tells it through the ``console_tz``
cookie that ``static/console.js`` sets; until then, the desk calendar's) and, where a deadline
belongs to a business calendar, in that calendar's zone too. Money is kept in minor units; it is
shown with the currency's own number of decimals (ISO 4217, via Babel) in the viewer's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale
from babel.dates import DateTimePattern, get_date_format, get_datetime_format, get_time_format, parse_pattern
from babel.numbers import format_currency, get_currency_precision

from console.i18n import BABEL_LOCALES
from workflow.model import from_iso

TIMEZONE_COOKIE = "console_tz"


def zone_named(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name`` (from a cookie: anything else is ignored), or None."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def minor_to_major(amount: int, currency: str) -> Decimal:
    """``amount`` minor units of ``currency`` as a decimal of major units (899 JPY stays 899)."""
    return Decimal(amount).scaleb(-get_currency_precision(currency))


def major_to_minor(text: str, currency: str) -> int:
    """What a person typed ("899.5") as minor units of ``currency``; ValueError if it has more
    decimals than the currency has, or is not a non-negative number."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except ArithmeticError:
        raise ValueError(text) from None
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    minor = value.scaleb(get_currency_precision(currency))
    if minor != minor.to_integral_value():
        raise ValueError(text)
    return int(minor)


@dataclass(frozen=True)
class InstantFormat:
    """Babel's "medium" date and time of one locale, parsed once: ``format_datetime`` parses the
    locale and both patterns on every call, which made them most of a 200-event page's time."""

    locale: Locale
    date_pattern: DateTimePattern
    time_pattern: DateTimePattern
    joined: str  # "{1} {0}": where the date and the time go

    def apply(self, moment: datetime) -> str:
        return self.joined.replace("{0}", self.time_pattern.apply(moment, self.locale)).replace(
            "{1}", self.day(moment.date())
        )

    @lru_cache(maxsize=1024)  # noqa: B019 - one instance per locale, kept for the process
    def day(self, local_date: date) -> str:
        """A local date's text: a page's events fall on a few days."""
        return str(self.date_pattern.apply(local_date, self.locale))


class _TimeFields:
    """The plain time fields of a Babel pattern for one moment (KeyError for any other field)."""

    __slots__ = ("moment", "periods")

    def __init__(self, moment: datetime, periods: tuple[str, str]) -> None:
        self.moment = moment
        self.periods = periods

    def __getitem__(self, field: str) -> str:
        m = self.moment
        if field == "HH":
            return f"{m.hour:02d}"
        if field == "H":
            return str(m.hour)
        if field in ("h", "hh"):
            twelve = m.hour % 12 or 12
            return f"{twelve:02d}" if field == "hh" else str(twelve)
        if field == "mm":
            return f"{m.minute:02d}"
        if field == "ss":
            return f"{m.second:02d}"
        if field == "a":
            return self.periods[m.hour >= 12]
        raise KeyError(field)


@cache
def instant_format(locale_name: str) -> InstantFormat:
    locale = Locale.parse(locale_name)
    return InstantFormat(
        locale,
        parse_pattern(get_date_format("medium", locale=locale).pattern),
        parse_pattern(get_time_format("medium", locale=locale).pattern),
        str(get_datetime_format("medium", locale=locale)).replace("'", ""),
    )


@dataclass(frozen=True)
class Formatter:
    """Formatting for one viewer: their language, their zone and the desk calendar's zone."""

    language: str
    viewer_zone: tzinfo
    desk_zone: tzinfo

    @property
    def locale(self) -> str:
        return BABEL_LOCALES[self.language]

    def money(self, amount: int | None, currency: str) -> str:
        if amount is None:
            return ""
        return format_currency(minor_to_major(amount, currency), currency, locale=self.locale)

    def major(self, amount: int, currency: str) -> str:
        """Minor units as the plain number a form field holds ("899.00")."""
        return str(minor_to_major(amount, currency))

    def instant(self, value: str | datetime | None, zone: tzinfo | None = None) -> str:
        """An instant in ``zone`` (default: the viewer's), e.g. 2026年12月6日 14:05 / Dec 6, 2026, 2:05 PM."""
        if not value:
            return ""
        moment = from_iso(value) if isinstance(value, str) else value
        return instant_format(self.locale).apply(moment.astimezone(zone or self.viewer_zone))

    def iso(self, value: str | datetime | None) -> str:
        """The machine-readable form for ``<time datetime=...>``."""
        if not value:
            return ""
        return value if isinstance(value, str) else value.isoformat()

    def zone_name(self, zone: tzinfo | None = None) -> str:
        return str(zone or self.viewer_zone)

    def same_zone(self, zone: tzinfo) -> bool:
        probe = datetime(2026, 1, 1)
        return bool(
            self.viewer_zone.utcoffset(probe) == zone.utcoffset(probe)
            and self.viewer_zone.utcoffset(probe.replace(month=7)) == zone.utcoffset(probe.replace(month=7))
        )
