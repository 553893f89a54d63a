"""Choosing the mediator for a case: the pure decision, given every mediator's facts.

A mediator is eligible for a case when they are active, on duty now (their calendar's
working hours), skilled in the case's category and language, and the case's weight
fits in what is left of their capacity. Of the eligible, the one with the least open
weighted load gets the case; ties go to the one idle longest (never assigned counts as
idle longest), then to the smaller id so that the choice is deterministic. Nobody
eligible means the case waits: the caller leaves it unassigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sla.calendar import Calendar, is_working

ANY = "*"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mediator as the router sees them at one instant."""

    id: str
    categories: frozenset[str]  # "*" for every category
    languages: frozenset[str]  # "*" for every language
    capacity: int  # in load units (a case weighs its priority level's weight)
    load: int = 0  # the open weighted load now
    on_duty: bool = True
    active: bool = True
    last_assigned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CaseNeeds:
    category: str
    language: str
    weight: int = 1


def on_duty(calendar: Calendar | None, now: datetime) -> bool:
    """Working hours of the mediator's duty calendar; no calendar means off duty."""
    return calendar is not None and is_working(calendar, now)


def ineligibility(candidate: Candidate, needs: CaseNeeds) -> str | None:
    """Why the router cannot give the candidate the case, or None if it can."""
    if not candidate.active:
        return "inactive"
    if not candidate.on_duty:
        return "off duty"
    if ANY not in candidate.categories and needs.category not in candidate.categories:
        return f"no skill for category {needs.category}"
    if ANY not in candidate.languages and needs.language not in candidate.languages:
        return f"does not work in language {needs.language}"
    return capacity_shortfall(candidate, needs.weight)


def capacity_shortfall(candidate: Candidate, weight: int) -> str | None:
    """Why a case of ``weight`` does not fit in what is left of the candidate's capacity, or None."""
    if candidate.load + weight > candidate.capacity:
        return f"at capacity ({candidate.load} of {candidate.capacity}, case weighs {weight})"
    return None


def unavailability(candidate: Candidate, weight: int) -> str | None:
    """Why nobody may give the candidate a case of ``weight``, or None: the router's rules that
    bind a person assigning by hand too (active, and room in their capacity). Duty hours and
    skills are the router's preferences; a mediator assigning by hand judges those."""
    if not candidate.active:
        return "inactive"
    return capacity_shortfall(candidate, weight)


def eligible(candidates: Iterable[Candidate], needs: CaseNeeds) -> list[Candidate]:
    return [c for c in candidates if ineligibility(c, needs) is None]


def _fairness_key(candidate: Candidate) -> tuple[int, int, float, str]:
    idle = candidate.last_assigned_at
    return (candidate.load, 0 if idle is None else 1, idle.timestamp() if idle is not None else 0.0, candidate.id)


def choose(candidates: Iterable[Candidate], needs: CaseNeeds) -> Candidate | None:
    """The eligible mediator with the least load, then idle longest, then smallest id."""
    pool = eligible(candidates, needs)
    return min(pool, key=_fairness_key) if pool else None


def assign_all(
    candidates: Sequence[Candidate], cases: Iterable[CaseNeeds], now: datetime
) -> tuple[list[str | None], list[Candidate]]:
    """Route ``cases`` one after another, each choice seeing the loads the previous ones left.

    Returns the chosen id per case (None: it waits) and the candidates afterwards. This is
    what the service does case by case; tests and what-if tools use it to see the spread."""
    pool = {c.id: c for c in candidates}
    chosen: list[str | None] = []
    for needs in cases:
        pick = choose(pool.values(), needs)
        if pick is None:
            chosen.append(None)
            continue
        pool[pick.id] = replace(pick, load=pick.load + needs.weight, last_assigned_at=now)
        chosen.append(pick.id)
    return chosen, [pool[c.id] for c in candidates]
