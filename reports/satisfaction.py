"""The satisfaction report: the ratings given in the period, per mediator, category and party,
with the comments."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from reports.facts import NO_MEDIATOR, as_iso, as_number, case_facts, check_period, histories, with_events_between
from store.db import Database


@dataclass(frozen=True)
class RatingRow:
    key: str
    ratings: int
    average: float | None
    distribution: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rating_row(key: str, scores: Sequence[int]) -> RatingRow:
    counts = Counter(scores)
    return RatingRow(
        key,
        len(scores),
        round(sum(scores) / len(scores), 2) if scores else None,
        {str(n): counts.get(n, 0) for n in range(1, 6)},
    )


@dataclass(frozen=True)
class SatisfactionReport:
    since: datetime
    until: datetime
    by_mediator: list[RatingRow]
    by_category: list[RatingRow]
    by_party: list[RatingRow]
    comments: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": as_iso(self.since),
            "until": as_iso(self.until),
            "by_mediator": [r.to_dict() for r in self.by_mediator],
            "by_category": [r.to_dict() for r in self.by_category],
            "by_party": [r.to_dict() for r in self.by_party],
            "comments": self.comments,
        }

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["group", "key", "ratings", "average", "1", "2", "3", "4", "5"]
        rows = []
        for group, items in (("mediator", self.by_mediator), ("category", self.by_category), ("party", self.by_party)):
            for r in items:
                rows.append(
                    [group, r.key, r.ratings, as_number(r.average), *(r.distribution[str(n)] for n in range(1, 6))]
                )
        return columns, rows


def satisfaction_report(
    db: Database, *, since: datetime, until: datetime, comment_limit: int = 100
) -> SatisfactionReport:
    """Ratings given in the period: by the case's mediator, its category, the rating party."""
    check_period(since, until)
    with db.read() as session:
        ids = with_events_between(session, ("rated",), since, until)
        facts = [case_facts(events) for events in histories(session, ids)]
    given = [(case, r) for case in facts for r in case.ratings if since <= r.at < until]
    by: dict[str, dict[str, list[int]]] = {
        "mediator": defaultdict(list),
        "category": defaultdict(list),
        "party": defaultdict(list),
    }
    for case, rating in given:
        by["mediator"][rating.mediator_id or NO_MEDIATOR].append(rating.score)
        by["category"][case.category].append(rating.score)
        by["party"][rating.party].append(rating.score)
    comments = [
        {
            "case_id": case.case_id,
            "party": r.party,
            "score": r.score,
            "comment": r.comment,
            "at": as_iso(r.at),
            "mediator_id": r.mediator_id,
            "category": case.category,
            "merchant_id": case.merchant_id,
        }
        for case, r in sorted(given, key=lambda item: item[1].at, reverse=True)
        if r.comment.strip()
    ]
    rows = {name: [_rating_row(key, scores) for key, scores in sorted(groups.items())] for name, groups in by.items()}
    return SatisfactionReport(since, until, rows["mediator"], rows["category"], rows["party"], comments[:comment_limit])
