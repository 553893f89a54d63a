"""Parse SLA goal durations such as ``48h``, ``7d``, ``90m``, ``4 business hours``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from workflow.errors import ConfigError, Problem

Unit = Literal["minutes", "hours", "days"]

_UNIT_WORDS: dict[str, Unit] = {
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
}

_PATTERN = re.compile(r"^\s*(\d+)\s*(business\s+|calendar\s+)?([a-z]+)\s*$", re.IGNORECASE)


class DurationError(ConfigError):
    """A duration text that does not parse; the message quotes the text. The configuration readers
    turn it into a :class:`~workflow.errors.Problem` at the line the duration was written on."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("", 0, message)])
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Duration:
    """An SLA goal: ``amount`` units, either wall-clock or business time."""

    amount: int
    unit: Unit
    business: bool = False
    # ``15 calendar days``: natural days counted in the timer calendar's zone; the clock is due
    # at the end of the 15th local day after the day it started (that day is day 0), whatever
    # the day's length across a daylight-saving change.
    calendar_days: bool = False

    @property
    def wall_seconds(self) -> int:
        """Seconds of wall-clock time (only meaningful when not ``business``)."""
        factor = {"minutes": 60, "hours": 3600, "days": 86400}[self.unit]
        return self.amount * factor

    def __str__(self) -> str:
        prefix = "business " if self.business else "calendar " if self.calendar_days else ""
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {prefix}{unit}"


def parse_duration(text: str) -> Duration:
    """Parse ``48h``, ``7d``, ``90m``, ``4 business hours``, ``5 business days``, ``15 calendar days``.

    Business durations must spell the unit (``business h`` is accepted too);
    zero and negative amounts are refused because a clock that is already due
    at start is almost certainly a configuration mistake.
    """
    if not isinstance(text, str):
        raise DurationError(f"duration must be text such as '48h' or '5 business days', got {text!r}")
    match = _PATTERN.match(text)
    if not match:
        raise DurationError(
            f"cannot parse duration {text!r}: use forms like '48h', '7d', '90m', "
            "'4 business hours', '5 business days' or '15 calendar days'"
        )
    amount_text, kind, unit_word = match.groups()
    unit = _UNIT_WORDS.get(unit_word.lower())
    if unit is None:
        raise DurationError(f"cannot parse duration {text!r}: unknown unit {unit_word!r}")
    calendar_days = bool(kind) and kind.strip().lower() == "calendar"
    if calendar_days and unit != "days":
        raise DurationError(f"cannot parse duration {text!r}: calendar time is counted in days ('15 calendar days')")
    amount = int(amount_text)
    if amount <= 0:
        raise DurationError(f"duration {text!r} must be positive")
    return Duration(amount=amount, unit=unit, business=bool(kind) and not calendar_days, calendar_days=calendar_days)
