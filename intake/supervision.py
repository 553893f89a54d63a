"""Merchant supervision: the figures kept per merchant and the thresholds that flag one.

The case layer (reports/) computes :class:`MerchantFigures` from the case log
for a period; :func:`flag_reasons` says which configured thresholds they cross. A
merchant with fewer than ``min_complaints`` complaints in the period is never flagged:
with small numbers a single bad case would read as a 100% rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from intake.config import DEFAULT_DIR, Reader, YamlPath, read_located
from workflow.categories import DEFAULT_CATEGORIES, Categories

_SECTION_KEYS = {"period", "min_complaints", "response_clock", "flag_when_any"}
# threshold name -> what it measures (shown in reasons and `disputes intake check`)
PERCENT_METRICS = {
    "response_breach_percent_at_least": "share of merchant response clocks that ran out",
    "decided_against_percent_at_least": "share of decided cases decided against the merchant",
    "reopen_percent_at_least": "share of settlements reopened by the consumer (not honoured)",
}
COUNT_METRICS = {
    "complaints_at_least": "complaints filed against the merchant",
    "response_breaches_at_least": "merchant response clocks that ran out",
}
_THRESHOLD_KEYS = {*PERCENT_METRICS, *COUNT_METRICS, "category_complaints_at_least"}


def default_supervision_path() -> Path:
    return DEFAULT_DIR / "supervision.yaml"


@dataclass(frozen=True, slots=True)
class MerchantFigures:
    """One merchant's figures over a period (cases filed in it, outcomes reached in it)."""

    merchant_id: str
    complaints: int = 0
    by_category: tuple[tuple[str, int], ...] = ()
    response_clocks: int = 0  # merchant response clocks that ended (met or breached)
    response_breaches: int = 0
    decided: int = 0  # decisions: conceded, decided by the system, ruled
    decided_against: int = 0  # of those, for the consumer (in full or in part)
    settled_by_agreement: int = 0
    settlements: int = 0  # settled cases that closed
    reopened: int = 0  # of those, reopened by the consumer: the settlement was not honoured
    settle_seconds_total: int = 0
    settle_count: int = 0

    @property
    def response_breach_percent(self) -> float | None:
        return _percent(self.response_breaches, self.response_clocks)

    @property
    def decided_against_percent(self) -> float | None:
        return _percent(self.decided_against, self.decided)

    @property
    def reopen_percent(self) -> float | None:
        return _percent(self.reopened, self.settlements)

    @property
    def honoured_percent(self) -> float | None:
        return _percent(self.settlements - self.reopened, self.settlements)

    @property
    def average_settle_seconds(self) -> int | None:
        return self.settle_seconds_total // self.settle_count if self.settle_count else None

    def category_percent(self, category: str) -> float | None:
        return _percent(dict(self.by_category).get(category, 0), self.complaints)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str  # a key of PERCENT_METRICS or COUNT_METRICS, or "category_complaints_at_least.<category>"
    limit: float


@dataclass(frozen=True, slots=True)
class FlagReason:
    metric: str
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "threshold": self.limit, "message": self.message}


@dataclass(frozen=True, slots=True)
class SupervisionRules:
    period: timedelta = timedelta(days=30)
    min_complaints: int = 5
    thresholds: tuple[Threshold, ...] = ()
    response_clock: str = "merchant_response"  # the workflow clock that times the merchant's answer
    version: str = ""
    source: str = "<supervision>"


def _value(figures: MerchantFigures, metric: str) -> float | None:
    if metric == "complaints_at_least":
        return float(figures.complaints)
    if metric == "response_breaches_at_least":
        return float(figures.response_breaches)
    if metric == "response_breach_percent_at_least":
        return figures.response_breach_percent
    if metric == "decided_against_percent_at_least":
        return figures.decided_against_percent
    if metric == "reopen_percent_at_least":
        return figures.reopen_percent
    if metric.startswith("category_complaints_at_least."):
        return float(dict(figures.by_category).get(metric.split(".", 1)[1], 0))
    raise ValueError(f"unknown supervision metric {metric!r}")


def flag_reasons(figures: MerchantFigures, rules: SupervisionRules) -> tuple[FlagReason, ...]:
    """Every threshold the merchant's figures reach; empty: no flag."""
    if figures.complaints < rules.min_complaints:
        return ()
    reasons = []
    for threshold in rules.thresholds:
        value = _value(figures, threshold.metric)
        if value is None or value < threshold.limit:
            continue
        if threshold.metric.startswith("category_complaints_at_least."):
            what = f"{threshold.metric.split('.', 1)[1]} complaints"
        else:
            what = PERCENT_METRICS.get(threshold.metric) or COUNT_METRICS[threshold.metric]
        unit = "%" if threshold.metric in PERCENT_METRICS else ""
        reasons.append(
            FlagReason(
                threshold.metric,
                value,
                threshold.limit,
                f"{what}: {value:g}{unit} (threshold {threshold.limit:g}{unit})",
            )
        )
    return tuple(reasons)


def load_supervision(path: str | Path, categories: Categories = DEFAULT_CATEGORIES) -> SupervisionRules:
    """Load a supervision file whose thresholds name ``categories`` (the desk's); raise
    :class:`intake.config.IntakeConfigError` listing every problem."""
    located, version = read_located(path)
    return _SupervisionReader(located, categories).build(version)


class _SupervisionReader(Reader):
    def build(self, version: str) -> SupervisionRules:
        section = self.section("supervision", _SECTION_KEYS)
        base: YamlPath = ("supervision",)
        period = self.duration(section.get("period", "30d"), (*base, "period"), "period")
        minimum = self.integer(section.get("min_complaints", 5), (*base, "min_complaints"), "min_complaints")
        clock = self.text(
            section.get("response_clock", "merchant_response"), (*base, "response_clock"), "response_clock"
        )
        raw = section.get("flag_when_any")
        thresholds: list[Threshold] = []
        if not isinstance(raw, dict) or not raw:
            self.problem(
                (*base, "flag_when_any"),
                f"flag_when_any must map thresholds to numbers ({', '.join(sorted(_THRESHOLD_KEYS))})",
            )
        else:
            self.unknown_keys(raw, _THRESHOLD_KEYS, (*base, "flag_when_any"), "flag_when_any")
            for metric, limit in raw.items():
                path = (*base, "flag_when_any", metric)
                if metric in PERCENT_METRICS:
                    value = self.number(limit, path, metric, minimum=0, maximum=100)
                    if value is not None:
                        thresholds.append(Threshold(metric, value))
                elif metric in COUNT_METRICS:
                    count = self.integer(limit, path, metric, minimum=1)
                    if count is not None:
                        thresholds.append(Threshold(metric, float(count)))
                elif metric == "category_complaints_at_least":
                    thresholds.extend(self._categories(limit, path))
        self.fail_if_problems()
        return SupervisionRules(
            period=timedelta(seconds=period.wall_seconds) if period else timedelta(days=30),
            min_complaints=minimum if minimum is not None else 5,
            thresholds=tuple(thresholds),
            response_clock=clock or "merchant_response",
            version=version,
            source=self.located.file,
        )

    def _categories(self, raw: Any, path: YamlPath) -> list[Threshold]:
        if not isinstance(raw, dict) or not raw:
            self.problem(path, "category_complaints_at_least maps categories to counts, e.g. {counterfeit: 3}")
            return []
        result = []
        for category, limit in raw.items():
            if category not in self.categories:
                self.problem((*path, category), f"unknown category {category!r} (known: {self.categories.listing()})")
                continue
            count = self.integer(limit, (*path, category), f"category_complaints_at_least.{category}", minimum=1)
            if count is not None:
                result.append(Threshold(f"category_complaints_at_least.{category}", float(count)))
        return result
