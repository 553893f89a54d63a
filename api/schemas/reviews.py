"""Third-party review: a reviewer's queue, the redacted case, scores and flags, the sample, the
flags a senior mediator looks at again, and the review report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.cases import CasePublic
from api.schemas.common import RequiredText, Strict, Text, text

Score = Annotated[int, Field(ge=0, le=100, strict=True)]


class ReviewScoresCreate(Strict):
    scores: dict[Annotated[str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")], Score] = Field(
        max_length=40, description="Each rubric item of the desk (GET the case: `rubric`) -> a score on its scale."
    )
    comment: Text = text(0, 4000, default="")


class ReviewFlagCreate(Strict):
    reason: RequiredText = text(1, 4000, description="Why the case needs a senior mediator's second look.")


class FlagResolutionCreate(Strict):
    decision: Literal["upheld", "dismissed"] = Field(
        description="upheld: the reviewer was right (what follows is on the case's log); dismissed: no action."
    )
    note: RequiredText = text(1, 4000)


class SampleCreate(Strict):
    since: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
        description="Start of the period to sample (ISO 8601 with offset); default: this week's Monday 00:00 "
        "in the desk's time zone. The period's length is the desk's `sampling.period`.",
    )


class ReviewItemPublic(BaseModel):
    case_id: str
    period: str
    assigned_at: str
    reviewed_at: str | None
    flagged_at: str | None
    category: str
    state: str


class ReviewQueuePublic(BaseModel):
    data: list[ReviewItemPublic]


class RubricItemPublic(BaseModel):
    id: str
    label: dict[str, str]
    description: str


class RubricPublic(BaseModel):
    scale: list[int]
    comment_required: bool
    items: list[RubricItemPublic]
    version: str


class ReviewPublic(BaseModel):
    reviewer_id: str
    scores: dict[str, int]
    comment: str
    at: str


class ReviewCasePublic(BaseModel):
    """The case as a reviewer reads it: personal fields masked, texts redacted, internal notes out."""

    case_id: str
    state: str
    category: str
    priority: str
    workflow: str
    consumer: str
    merchant: str
    order_ref: str
    subject: str
    desired_outcome: str
    claim: dict[str, Any]
    mediator_id: str | None
    outcome: str | None
    awarded_amount: int | None
    created_at: str
    closed_at: str | None
    reopen_count: int
    flagged: bool
    statements: dict[str, Any]
    timers: list[dict[str, Any]]
    timeline: list[dict[str, Any]] = Field(description="The log without internal notes, texts redacted.")
    reviews: list[ReviewPublic]
    rubric: RubricPublic
    version: int


class DrawnPublic(BaseModel):
    case_id: str
    stratum: list[str]
    reviewers: list[str]


class SamplePublic(BaseModel):
    period: str
    since: str
    until: str
    candidates: int
    drawn: list[DrawnPublic]
    assigned: list[str] = Field(description="Cases dealt by this request (the others were dealt before).")


class FlagPublic(BaseModel):
    case_id: str
    flagged_at: str
    flagged_by: str
    reason: str
    state: str
    outcome: str | None
    mediator_id: str | None
    resolution: dict[str, Any] | None
    since: list[str] = Field(description="Triggers fired on the case since the flag (what happened to it).")


class FlagsPublic(BaseModel):
    data: list[FlagPublic]


class SecondLookPublic(BaseModel):
    case: CasePublic
    reviews: list[ReviewPublic]
    flags: list[FlagPublic]


class ScoreRowPublic(BaseModel):
    key: str
    reviews: int
    average: float | None
    by_item: dict[str, float | None]


class AgreementPublic(BaseModel):
    item: str
    pairs: int
    exact_percent: float | None
    within_one_percent: float | None
    mean_abs_difference: float | None


class ReviewReportPublic(BaseModel):
    since: str
    until: str
    items: list[str]
    reviews: int
    by_item: list[ScoreRowPublic]
    by_mediator: list[ScoreRowPublic]
    by_category: list[ScoreRowPublic]
    double_reviewed: int
    agreement: list[AgreementPublic]
    flags: list[FlagPublic]
