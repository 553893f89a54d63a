"""Routing: the eligible mediator with the least open weighted load, ties by longest idle.

Property tests over random mediator pools and case streams: nobody ends above capacity,
every assignment went to an eligible mediator (and a case waits only when nobody was),
and equal mediators end within one case of the fairest split.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intake.routing import ANY, Candidate, CaseNeeds, assign_all, choose, ineligibility, on_duty
from sla.config import default_calendars

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # Monday 11:00 in Shanghai
CATEGORIES = ("counterfeit", "product_quality", "not_received", "other")
LANGUAGES = ("zh", "en")


def med(ident: str, **changes: object) -> Candidate:
    values: dict[str, object] = {"categories": frozenset({ANY}), "languages": frozenset({ANY}), "capacity": 10}
    values.update(changes)
    return Candidate(ident, **values)  # type: ignore[arg-type]


def test_least_load_wins_then_longest_idle_then_id() -> None:
    needs = CaseNeeds("counterfeit", "zh", 1)
    assert choose([med("a", load=3), med("b", load=1), med("c", load=2)], needs).id == "b"  # type: ignore[union-attr]
    earlier, later = NOW - timedelta(hours=5), NOW - timedelta(hours=1)
    tied = [med("a", load=1, last_assigned_at=later), med("b", load=1, last_assigned_at=earlier)]
    assert choose(tied, needs).id == "b"  # type: ignore[union-attr]
    never = [*tied, med("c", load=1)]
    assert choose(never, needs).id == "c"  # type: ignore[union-attr]  # never assigned: idle longest
    assert choose([med("z", load=1), med("y", load=1)], needs).id == "y"  # type: ignore[union-attr]


def test_ineligible_mediators_are_skipped_with_a_reason() -> None:
    needs = CaseNeeds("counterfeit", "en", 2)
    pool = [
        med("inactive", active=False),
        med("off", on_duty=False),
        med("skill", categories=frozenset({"other"})),
        med("lang", languages=frozenset({"zh"})),
        med("full", capacity=3, load=2),
    ]
    assert [ineligibility(c, needs) for c in pool] == [
        "inactive",
        "off duty",
        "no skill for category counterfeit",
        "does not work in language en",
        "at capacity (2 of 3, case weighs 2)",
    ]
    assert choose(pool, needs) is None
    assert choose([*pool, med("ok", capacity=2)], needs).id == "ok"  # type: ignore[union-attr]


def test_on_duty_follows_the_mediators_calendar() -> None:
    calendars = default_calendars()
    office = calendars["default"]  # Mon-Fri 09:00-18:00 Shanghai
    assert on_duty(office, NOW)
    assert not on_duty(office, NOW + timedelta(hours=10))  # 21:00 local
    assert not on_duty(office, datetime(2026, 10, 1, 3, 0, tzinfo=UTC))  # National Day
    assert on_duty(calendars["24x7"], NOW + timedelta(hours=10))
    assert not on_duty(None, NOW)


mediators = st.builds(
    lambda i, cats, langs, cap, load, duty, active: Candidate(
        f"m{i}", frozenset(cats), frozenset(langs), cap, min(load, cap), duty, active
    ),
    st.integers(0, 10**6),
    st.sets(st.sampled_from((*CATEGORIES, ANY)), min_size=1),
    st.sets(st.sampled_from((*LANGUAGES, ANY)), min_size=1),
    st.integers(0, 6),
    st.integers(0, 6),
    st.booleans(),
    st.booleans(),
)
cases = st.builds(CaseNeeds, st.sampled_from(CATEGORIES), st.sampled_from(LANGUAGES), st.integers(1, 3))


@settings(max_examples=300, deadline=None)
@given(pool=st.lists(mediators, min_size=0, max_size=6, unique_by=lambda c: c.id), stream=st.lists(cases, max_size=30))
def test_nobody_above_capacity_and_every_assignment_eligible(pool: list[Candidate], stream: list[CaseNeeds]) -> None:
    current = {c.id: c for c in pool}
    for needs in stream:
        chosen, after = assign_all(list(current.values()), [needs], NOW)
        pick = chosen[0]
        if pick is None:
            assert all(ineligibility(c, needs) is not None for c in current.values()), "waited while someone could"
        else:
            assert ineligibility(current[pick], needs) is None, "assigned to an ineligible mediator"
            fairest = min(c.load for c in current.values() if ineligibility(c, needs) is None)
            assert current[pick].load == fairest
        current = {c.id: c for c in after}
    for candidate in current.values():
        assert candidate.load <= candidate.capacity


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 8), capacity=st.integers(1, 20), n=st.integers(0, 120))
def test_equal_mediators_end_within_one_case_of_the_fairest_split(count: int, capacity: int, n: int) -> None:
    pool = [med(f"m{i}", capacity=capacity) for i in range(count)]
    chosen, after = assign_all(pool, [CaseNeeds("other", "zh", 1)] * n, NOW)
    placed = min(n, count * capacity)
    assert sum(1 for c in chosen if c is not None) == placed
    loads = sorted(c.load for c in after)
    # The fairest split of `placed` unit cases over `count` people.
    assert loads == sorted([placed // count + (1 if i < placed % count else 0) for i in range(count)])
    assert loads[-1] - loads[0] <= 1


@settings(max_examples=200, deadline=None)
@given(initial=st.lists(st.integers(0, 10), min_size=1, max_size=6), n=st.integers(0, 40))
def test_uneven_starting_loads_are_levelled_first(initial: list[int], n: int) -> None:
    pool = [med(f"m{i}", capacity=100, load=load) for i, load in enumerate(initial)]
    _, after = assign_all(pool, [CaseNeeds("other", "en", 1)] * n, NOW)
    # Water-filling: the smallest possible highest load, and nobody filled beyond it.
    level = min(t for t in range(0, 200) if sum(max(0, t - load) for load in initial) >= n)
    assert max(c.load for c in after) == max(level, max(initial))
    assert all(c.load == start or c.load in (level - 1, level) for c, start in zip(after, initial, strict=True))
