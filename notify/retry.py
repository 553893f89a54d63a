"""When a failed delivery is tried again, and what an answer means for the endpoint.

The schedule is the Standard Webhooks specification's: immediately, 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h, 24 h after each failure, each with up to 10% random jitter so that many
failed deliveries do not come back at the same instant. Only a 2xx counts as delivered; 410
disables the endpoint; 429, 502 and 504 (and any ``Retry-After``) slow it down.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# Seconds after the first attempt's failure, the second's, ... (the specification's list).
SCHEDULE: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
JITTER = 0.1
SLOW_DOWN_STATUSES = frozenset({429, 502, 504})
# An endpoint that asked to slow down waits at least this long, and at most MAX_RETRY_AFTER.
SLOW_DOWN_SECONDS = 30.0
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt's answer means: ``delivered``; ``disable`` the endpoint (410);
    otherwise retry, ``slow_down`` the endpoint for that many seconds (0: no)."""

    delivered: bool
    disable: bool = False
    slow_down: float = 0.0


def judge(status: int | None, retry_after: str | None, now: datetime) -> Verdict:
    """The verdict on one attempt; ``status`` None: no answer (timeout, reset, refused)."""
    if status is not None and 200 <= status < 300:
        return Verdict(delivered=True)
    if status == 410:
        return Verdict(delivered=False, disable=True)
    wait = parse_retry_after(retry_after, now) if retry_after else None
    if status in SLOW_DOWN_STATUSES:
        return Verdict(delivered=False, slow_down=max(wait or 0.0, SLOW_DOWN_SECONDS))
    return Verdict(delivered=False, slow_down=wait or 0.0)


def parse_retry_after(value: str, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), capped; None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def next_attempt(
    failures: int,
    now: datetime,
    *,
    schedule: Sequence[float] = SCHEDULE,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after the ``failures``-th failure (1 = the first attempt failed);
    None when the schedule is spent and the delivery has failed for good."""
    if failures < 1 or failures >= len(schedule):
        return None
    delay = schedule[failures]
    jitter = (rng or random).uniform(0.0, JITTER) * delay
    return now + timedelta(seconds=delay + jitter)


def parse_schedule(text: str) -> tuple[float, ...]:
    """A schedule written as comma-separated seconds (``0,5,300,...``), for settings."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"a retry schedule is comma-separated seconds, not {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise ValueError("a retry schedule lists at least one delay, none negative")
    return values
