"""The third-party review report: reviewer scores per rubric item, mediator and category; the
agreement between reviewers on the cases two of them reviewed; the flags and what became of
them. Read from the case logs (cases/review.py writes them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

from sqlalchemy import select

from cases.queries import load_seen
from cases.review import FlagEntry, flag_entries
from intake.review import ReviewRules
from reports.facts import NO_MEDIATOR, as_iso, as_number, check_period, histories
from store.db import Database
from store.tables import EVENTS
from workflow.model import from_iso


@dataclass(frozen=True)
class ScoreRow:
    key: str
    reviews: int
    average: float | None
    by_item: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "reviews": self.reviews, "average": self.average, "by_item": self.by_item}


@dataclass(frozen=True)
class AgreementRow:
    item: str
    pairs: int
    exact_percent: float | None
    within_one_percent: float | None
    mean_abs_difference: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "pairs": self.pairs,
            "exact_percent": self.exact_percent,
            "within_one_percent": self.within_one_percent,
            "mean_abs_difference": self.mean_abs_difference,
        }


@dataclass
class ReviewReport:
    since: datetime
    until: datetime
    items: tuple[str, ...]
    reviews: int = 0
    by_item: list[ScoreRow] = field(default_factory=list)
    by_mediator: list[ScoreRow] = field(default_factory=list)
    by_category: list[ScoreRow] = field(default_factory=list)
    agreement: list[AgreementRow] = field(default_factory=list)
    double_reviewed: int = 0
    flags: list[FlagEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": as_iso(self.since),
            "until": as_iso(self.until),
            "items": list(self.items),
            "reviews": self.reviews,
            "by_item": [r.to_dict() for r in self.by_item],
            "by_mediator": [r.to_dict() for r in self.by_mediator],
            "by_category": [r.to_dict() for r in self.by_category],
            "double_reviewed": self.double_reviewed,
            "agreement": [r.to_dict() for r in self.agreement],
            "flags": [f.to_dict() for f in self.flags],
        }

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Scores per rubric item, mediator and category, then agreement per item (the CSV too)."""
        columns = ["group", "key", "reviews", "average", *self.items]
        rows: list[list[Any]] = []
        for group, found in (("item", self.by_item), ("mediator", self.by_mediator), ("category", self.by_category)):
            for r in found:
                averages = (as_number(r.by_item.get(i)) for i in self.items)
                rows.append([group, r.key, r.reviews, as_number(r.average), *averages])
        for a in self.agreement:
            # agreement rows: pairs, then exact %, within-one %, mean difference in the item columns' place
            rows.append(
                [
                    "agreement",
                    a.item,
                    a.pairs,
                    as_number(a.exact_percent),
                    as_number(a.within_one_percent),
                    as_number(a.mean_abs_difference),
                    *([""] * max(0, len(self.items) - 2)),
                ]
            )
        return columns, rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _score_row(key: str, reviews: Sequence[Mapping[str, int]], items: Sequence[str]) -> ScoreRow:
    by_item = {
        i: _round(mean([r[i] for r in reviews if i in r])) if any(i in r for r in reviews) else None for i in items
    }
    every = [v for r in reviews for i, v in r.items() if i in items]
    return ScoreRow(key, len(reviews), _round(mean(every)) if every else None, by_item)


def review_report(db: Database, rules: ReviewRules, *, since: datetime, until: datetime) -> ReviewReport:
    """Reviewer scores per rubric item, mediator and category for the reviews given in the
    period; agreement between reviewers on the cases two reviewed; the flags raised in it and
    what happened to them."""
    check_period(since, until)
    items = rules.rubric.item_ids
    report = ReviewReport(since, until, items)
    with db.read() as session:
        case_ids = list(
            session.execute(
                select(EVENTS.c.case_id)
                .where(
                    EVENTS.c.type.in_(["review_submitted", "review_flagged"]), EVENTS.c.at >= since, EVENTS.c.at < until
                )
                .group_by(EVENTS.c.case_id)
                .order_by(EVENTS.c.case_id)
            ).scalars()
        )
        cases = {cid: load_seen(session, cid) for cid in case_ids}
        logs = {events[0].case_id: events for events in histories(session, case_ids)}
    per_item: dict[str, list[Mapping[str, int]]] = defaultdict(list)
    per_mediator: dict[str, list[Mapping[str, int]]] = defaultdict(list)
    per_category: dict[str, list[Mapping[str, int]]] = defaultdict(list)
    every: list[Mapping[str, int]] = []
    pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for case_id in case_ids:
        snapshot, events = cases[case_id], logs.get(case_id, [])
        mediator = NO_MEDIATOR
        given: list[Mapping[str, int]] = []
        for event in events:
            if event.type == "transitioned" and "mediator_id" in event.data:
                mediator = event.data["mediator_id"]
            if event.type == "review_submitted" and since <= from_iso(event.at) < until:
                scores = {k: int(v) for k, v in event.data["scores"].items()}
                given.append(scores)
                every.append(scores)
                per_mediator[mediator].append(scores)
                per_category[snapshot.category].append(scores)
        if len(given) >= 2:
            report.double_reviewed += 1
            first, second = given[0], given[1]
            for item in items:
                if item in first and item in second:
                    pairs[item].append((first[item], second[item]))
        report.flags.extend(f for f in flag_entries(events, snapshot) if since <= from_iso(f.flagged_at) < until)
    for review in every:
        for item in items:
            if item in review:
                per_item[item].append({item: review[item]})
    report.reviews = len(every)
    report.by_item = [_score_row(i, per_item[i], items) for i in items]
    report.by_mediator = [_score_row(k, v, items) for k, v in sorted(per_mediator.items())]
    report.by_category = [_score_row(k, v, items) for k, v in sorted(per_category.items())]
    report.agreement = [_agreement(i, pairs[i]) for i in items]
    return report


def _agreement(item: str, pairs: Iterable[tuple[int, int]]) -> AgreementRow:
    found = list(pairs)
    if not found:
        return AgreementRow(item, 0, None, None, None)
    exact = sum(1 for a, b in found if a == b)
    near = sum(1 for a, b in found if abs(a - b) <= 1)
    return AgreementRow(
        item,
        len(found),
        round(100.0 * exact / len(found), 2),
        round(100.0 * near / len(found), 2),
        round(mean(abs(a - b) for a, b in found), 2),
    )


__all__ = ["ReviewReport", "review_report"]
