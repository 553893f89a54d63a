"""The merchants report: the cases filed in the period, per merchant, with their outcomes as they
stand now (complaints, share per category, response-clock breaches, decisions against the
merchant, settlements honoured or reopened, average time to settle) and the merchant's
supervision flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from intake.supervision import FlagReason, MerchantFigures, SupervisionRules, flag_reasons
from reports.facts import (
    FlagRecord,
    active_flags,
    as_iso,
    as_number,
    case_facts,
    check_period,
    filed_between,
    histories,
    merchant_figures,
)
from store.db import Database
from workflow.categories import DEFAULT_CATEGORIES, Categories


@dataclass(frozen=True)
class MerchantRow:
    figures: MerchantFigures
    thresholds_reached: tuple[FlagReason, ...]  # by this period's figures
    flag: FlagRecord | None  # the merchant's standing supervision flag

    def to_dict(self) -> dict[str, Any]:
        f = self.figures
        return {
            "merchant_id": f.merchant_id,
            "complaints": f.complaints,
            "by_category": [
                {"category": c, "complaints": n, "percent": f.category_percent(c)} for c, n in f.by_category
            ],
            "response_clocks": f.response_clocks,
            "response_breaches": f.response_breaches,
            "response_breach_percent": f.response_breach_percent,
            "decided": f.decided,
            "decided_against": f.decided_against,
            "decided_against_percent": f.decided_against_percent,
            "settled_by_agreement": f.settled_by_agreement,
            "settlements": f.settlements,
            "reopened": f.reopened,
            "reopen_percent": f.reopen_percent,
            "honoured_percent": f.honoured_percent,
            "average_settle_seconds": f.average_settle_seconds,
            "thresholds_reached": [r.to_dict() for r in self.thresholds_reached],
            "flagged": self.flag is not None,
            "flag": self.flag.to_dict() if self.flag else None,
        }


@dataclass(frozen=True)
class MerchantsReport:
    since: datetime
    until: datetime
    rows: list[MerchantRow]

    def to_dict(self) -> dict[str, Any]:
        return {"since": as_iso(self.since), "until": as_iso(self.until), "data": [r.to_dict() for r in self.rows]}

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = [
            "merchant",
            "complaints",
            "top category",
            "response breaches",
            "breach %",
            "decided against %",
            "settlements",
            "reopen %",
            "avg settle h",
            "flagged",
        ]
        rows = []
        for row in self.rows:
            f = row.figures
            top = max(f.by_category, key=lambda kv: kv[1])[0] if f.by_category else "-"
            rows.append(
                [
                    f.merchant_id,
                    f.complaints,
                    top,
                    f"{f.response_breaches}/{f.response_clocks}",
                    as_number(f.response_breach_percent),
                    as_number(f.decided_against_percent),
                    f.settlements,
                    as_number(f.reopen_percent),
                    as_number(
                        round(f.average_settle_seconds / 3600, 1) if f.average_settle_seconds is not None else None
                    ),
                    "yes" if row.flag else "",
                ]
            )
        return columns, rows


def merchants_report(
    db: Database,
    rules: SupervisionRules,
    *,
    since: datetime,
    until: datetime,
    merchant_id: str | None = None,
    categories: Categories = DEFAULT_CATEGORIES,
) -> MerchantsReport:
    """Each merchant's complaints in the period, per category in the desk's order (``categories``)."""
    check_period(since, until)
    with db.read() as session:
        ids = filed_between(session, since, until, merchant_id)
        facts = [case_facts(events) for events in histories(session, ids)]
        flags = active_flags(session)
    figures = merchant_figures(facts, response_clock=rules.response_clock, categories=categories)
    rows = [MerchantRow(f, flag_reasons(f, rules), flags.get(m)) for m, f in figures.items()]
    # Flagged merchants without complaints in this period are still shown: supervisors look for them.
    for flagged_id, record in sorted(flags.items()):
        if flagged_id not in figures and merchant_id in (None, flagged_id):
            rows.append(MerchantRow(MerchantFigures(flagged_id), (), record))
    rows.sort(key=lambda r: (r.flag is None, -r.figures.complaints, r.figures.merchant_id))
    return MerchantsReport(since, until, rows)
