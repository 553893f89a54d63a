"""Supervision and service-quality reports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Period(BaseModel):
    since: str
    until: str


class CategoryShare(BaseModel):
    category: str
    complaints: int
    percent: float | None


class FlagReasonPublic(BaseModel):
    metric: str
    value: float
    threshold: float
    message: str


class MerchantFlagPublic(BaseModel):
    id: int
    merchant_id: str
    raised_at: str
    evaluated_at: str
    period: Period
    reasons: list[FlagReasonPublic]
    rules_version: str
    cleared_at: str | None


class MerchantReportRow(BaseModel):
    merchant_id: str
    complaints: int
    by_category: list[CategoryShare]
    response_clocks: int = Field(description="Merchant response clocks that ended (met or breached).")
    response_breaches: int
    response_breach_percent: float | None
    decided: int = Field(description="Cases decided: conceded, decided by the system, or ruled.")
    decided_against: int
    decided_against_percent: float | None
    settled_by_agreement: int
    settlements: int = Field(description="Settled cases that closed.")
    reopened: int = Field(description="Of those, reopened by the consumer: the settlement was not honoured.")
    reopen_percent: float | None
    honoured_percent: float | None
    average_settle_seconds: int | None
    thresholds_reached: list[FlagReasonPublic] = Field(
        description="Supervision thresholds this period's figures reach."
    )
    flagged: bool
    flag: MerchantFlagPublic | None


class MerchantsReportPublic(BaseModel):
    since: str
    until: str
    data: list[MerchantReportRow]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00Z",
                    "until": "2026-12-01T00:00:00Z",
                    "data": [
                        {
                            "merchant_id": "m-1001",
                            "complaints": 12,
                            "by_category": [{"category": "counterfeit", "complaints": 5, "percent": 41.67}],
                            "response_clocks": 10,
                            "response_breaches": 4,
                            "response_breach_percent": 40.0,
                            "decided": 6,
                            "decided_against": 5,
                            "decided_against_percent": 83.33,
                            "settled_by_agreement": 3,
                            "settlements": 8,
                            "reopened": 1,
                            "reopen_percent": 12.5,
                            "honoured_percent": 87.5,
                            "average_settle_seconds": 201600,
                            "thresholds_reached": [
                                {
                                    "metric": "response_breach_percent_at_least",
                                    "value": 40.0,
                                    "threshold": 40.0,
                                    "message": "share of merchant response clocks that ran out: 40% (threshold 40%)",
                                }
                            ],
                            "flagged": True,
                            "flag": None,
                        }
                    ],
                }
            ]
        }
    )


class HotspotTotal(BaseModel):
    merchant_id: str
    category: str
    complaints: int
    previous_period: int
    change: int
    change_percent: float | None


class HotspotWeek(BaseModel):
    merchant_id: str
    category: str
    week: str = Field(description="ISO week in the desk's time zone, e.g. 2026-W10.")
    complaints: int
    previous_week: int
    change: int


class HotspotCategoryWeek(BaseModel):
    category: str
    week: str = Field(description="ISO week in the desk's time zone, e.g. 2026-W10.")
    complaints: int = Field(description="Complaints filed in the category that week, all merchants together.")
    previous_week: int
    change: int
    change_percent: float | None


class HotspotsPublic(BaseModel):
    since: str
    until: str
    timezone: str
    previous_period: Period
    data: list[HotspotTotal] = Field(description="Per merchant and category, biggest rise first.")
    weeks: list[HotspotWeek]
    categories: list[HotspotCategoryWeek] = Field(
        description="Per category and week (all merchants), oldest week first: the hotspot chart's figures."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00Z",
                    "until": "2026-12-01T00:00:00Z",
                    "timezone": "Asia/Shanghai",
                    "previous_period": {"since": "2026-10-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
                    "data": [
                        {
                            "merchant_id": "m-1001",
                            "category": "counterfeit",
                            "complaints": 9,
                            "previous_period": 2,
                            "change": 7,
                            "change_percent": 350.0,
                        }
                    ],
                    "weeks": [
                        {
                            "merchant_id": "m-1001",
                            "category": "counterfeit",
                            "week": "2026-W47",
                            "complaints": 5,
                            "previous_week": 1,
                            "change": 4,
                        }
                    ],
                    "categories": [
                        {
                            "category": "counterfeit",
                            "week": "2026-W47",
                            "complaints": 9,
                            "previous_week": 3,
                            "change": 6,
                            "change_percent": 200.0,
                        }
                    ],
                }
            ]
        }
    )


class SlaRowPublic(BaseModel):
    key: str
    runs: int = Field(description="Clocks that ended met or breached in the period.")
    met: int
    breached: int
    met_percent: float | None
    median_seconds: float | None = Field(description="Business seconds the clocks counted (pauses excluded).")
    p90_seconds: int | None = Field(description="90th percentile, nearest rank.")


class SlaPublic(BaseModel):
    since: str
    until: str
    by_clock: list[SlaRowPublic]
    by_mediator: list[SlaRowPublic]
    by_category: list[SlaRowPublic]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00Z",
                    "until": "2026-12-01T00:00:00Z",
                    "by_clock": [
                        {
                            "key": "merchant_response",
                            "runs": 40,
                            "met": 34,
                            "breached": 6,
                            "met_percent": 85.0,
                            "median_seconds": 30600.0,
                            "p90_seconds": 172800,
                        }
                    ],
                    "by_mediator": [],
                    "by_category": [],
                }
            ]
        }
    )


class RatingRowPublic(BaseModel):
    key: str
    ratings: int
    average: float | None
    distribution: dict[str, int] = Field(description="Ratings per score 1..5.")


class RatingComment(BaseModel):
    case_id: str
    party: str
    score: int
    comment: str
    at: str
    mediator_id: str | None
    category: str
    merchant_id: str


class SatisfactionPublic(BaseModel):
    since: str
    until: str
    by_mediator: list[RatingRowPublic]
    by_category: list[RatingRowPublic]
    by_party: list[RatingRowPublic]
    comments: list[RatingComment]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00Z",
                    "until": "2026-12-01T00:00:00Z",
                    "by_mediator": [
                        {
                            "key": "med-li",
                            "ratings": 3,
                            "average": 4.0,
                            "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1},
                        }
                    ],
                    "by_category": [],
                    "by_party": [],
                    "comments": [
                        {
                            "case_id": "DSP-01M8DHAH86-BT5520",
                            "party": "consumer",
                            "score": 5,
                            "comment": "处理很快",
                            "at": "2026-11-28T08:00:00Z",
                            "mediator_id": "med-li",
                            "category": "counterfeit",
                            "merchant_id": "m-1001",
                        }
                    ],
                }
            ]
        }
    )
