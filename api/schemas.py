"""Request and response models. Requests forbid unknown fields (no mass assignment)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from workflow.currency import check_currency
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot
from workflow.text import IDENTIFIER_MAX, TEXT_MAX, check_free_text, normalise_identifier

Category = Literal[
    "product_quality", "counterfeit", "not_received", "not_as_described", "after_sales", "false_advertising", "other"
]
DesiredOutcome = Literal["refund", "partial_refund", "replacement", "repair", "compensation", "apology", "other"]


# The field rules are workflow/text.py's (the domain applies the same ones); the patterns
# below say the gist of them in the document, for clients and fuzzers: what a pattern
# refuses is always refused, and the validators refuse a little more (format characters
# beyond the common ones, unassigned code points, blank text).
#
# Free text: no control characters other than tab and newlines, no bidi embedding,
# override or isolate controls; kept as written.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
TEXT_RULES = (
    "Free text, kept as written: no control characters other than tab and newlines, no bidi embedding, "
    "override or isolate controls, no unpaired surrogates"
)
# Identifiers: no whitespace, controls, or invisible characters; normalised to NFKC.
IDENTIFIER_PATTERN = r"^[^\s\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]+$"
IDENTIFIER_RULES = (
    'An identifier: normalised to Unicode NFKC (full-width "ｍ-1001" is stored as "m-1001"), then 1 to {limit} '
    "letters, marks, numbers, punctuation or symbols; whitespace, control and format characters (zero-width "
    "spaces, bidi controls), invisible fillers and unassigned code points are refused with 422"
)


def _checked_text(required: bool) -> Any:
    # The field's own max_length caps the length first; TEXT_MAX is the longest any field allows.
    return AfterValidator(lambda value: check_free_text(value, required=required, limit=TEXT_MAX))


def text(min_length: int = 0, max_length: int = 20_000, *, description: str = "", **kwargs: Any) -> Any:
    """A free-text field (the validator is attached by :data:`Text` / :data:`RequiredText`)."""
    rules = f"{TEXT_RULES}; {'at least one visible character, ' if min_length else ''}at most {max_length} characters."
    return Field(
        min_length=min_length,
        max_length=max_length,
        pattern=TEXT_PATTERN,
        description=f"{description} {rules}".strip(),
        **kwargs,
    )


# Annotate a field `RequiredText = text(1, N)` for text that must say something (blank is
# refused), `Text = text(0, N)` for optional text.
RequiredText = Annotated[str, _checked_text(required=True)]
Text = Annotated[str, _checked_text(required=False)]


def identifier_field(
    *, limit: int = IDENTIFIER_MAX, description: str = "", pattern: str | None = None, **kwargs: Any
) -> Any:
    """An identifier field: the pattern in the document, the full rule and NFKC by :data:`Identifier`."""
    rules = IDENTIFIER_RULES.format(limit=limit)
    # The length is checked again after normalisation (NFKC may lengthen a string); the
    # schema's cap is on what the client sends.
    return Field(
        min_length=1,
        max_length=limit,
        pattern=pattern or IDENTIFIER_PATTERN,
        description=f"{description} {rules}.".strip(),
        **kwargs,
    )


def identifier_query(description: str) -> Any:
    """A query parameter naming something: the identifier rule (a look-alike finds the same rows)."""
    return Query(
        min_length=1,
        max_length=IDENTIFIER_MAX,
        pattern=IDENTIFIER_PATTERN,
        description=f"{description} {IDENTIFIER_RULES.format(limit=IDENTIFIER_MAX)}.",
    )


Identifier = Annotated[str, AfterValidator(normalise_identifier)]
Currency = Annotated[str, AfterValidator(check_currency)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Strict):
    amount: int = Field(ge=0, le=10**12, strict=True, description="Amount in minor units (fen, cents); never a float.")
    currency: Currency = Field(
        pattern=r"^[A-Z]{3}$",
        examples=["CNY"],
        description="ISO 4217 code in capitals (a currency in use; not XXX, XTS, metals or bond units).",
    )


class MoneyPublic(BaseModel):
    """Money as a case records it (responses: what was stored is shown, never re-judged)."""

    amount: int = Field(description="Amount in minor units (fen, cents); never a float.")
    currency: str = Field(description="ISO 4217 code.", examples=["CNY"])


class CaseCreate(Strict):
    merchant_id: Identifier = identifier_field(description="The merchant complained about.")
    order_ref: Identifier = identifier_field(description="The order's reference at the merchant.")
    category: Category | None = Field(
        default=None,
        description="Leave out to have the desk classify the complaint from its subject and description; "
        "the `filed` event then records the category and the words that decided it.",
    )
    subject: RequiredText = text(1, 200)
    description: RequiredText = text(1, 20_000)
    claim: Money
    desired_outcome: DesiredOutcome = "refund"
    vulnerable_consumer: bool = Field(
        default=False,
        strict=True,
        description="The consumer is vulnerable (elderly, a minor, disabled...): raises the priority.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "merchant_id": "m-1001",
                    "order_ref": "TB-20261111-0042",
                    "category": "counterfeit",
                    "subject": "收到的耳机是假货",
                    "description": "序列号查不到，做工粗糙，与官网图片不符。",
                    "claim": {"amount": 89900, "currency": "CNY"},
                    "desired_outcome": "refund",
                }
            ]
        },
    )


class TransitionRequest(Strict):
    trigger: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    reason: Text = text(0, 4000, default="")
    data: dict[str, Any] = Field(
        default_factory=dict,
        max_length=20,
        description="The trigger's facts. `assign`: `mediator_id`, an identifier naming a registered, active "
        "mediator with room for the case (default: the calling mediator); an unregistered id is refused with 422, "
        "an inactive or full mediator with 409 `mediator-unavailable`. `rule`: `decision` and `awarded_amount`.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"trigger": "assign", "reason": "", "data": {"mediator_id": "med-1"}}]},
    )


class CasePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "DSP-01M8DHAH86-BT5520",
                    "workflow": "consumer_dispute",
                    "workflow_version": "e0d397e9" + "0" * 56,
                    "policy_version": "e85b9171" + "0" * 56,
                    "state": "assigned",
                    "version": 4,
                    "consumer_id": "c-2001",
                    "merchant_id": "m-1001",
                    "mediator_id": "med-li",
                    "category": "counterfeit",
                    "subject": "收到的耳机是假货",
                    "description": "序列号查不到。",
                    "order_ref": "TB-20261111-0042",
                    "claim": {"amount": 89900, "currency": "CNY"},
                    "desired_outcome": "refund",
                    "priority": "normal",
                    "flags": [],
                    "awaiting": [],
                    "merchant_responded": False,
                    "outcome": None,
                    "awarded": None,
                    "reopen_count": 0,
                    "created_at": "2026-11-28T01:00:00.000000Z",
                    "updated_at": "2026-11-28T01:20:00.000000Z",
                    "closed_at": None,
                }
            ]
        }
    )

    id: str
    workflow: str
    workflow_version: str
    policy_version: str
    state: str
    version: int
    consumer_id: str
    merchant_id: str
    mediator_id: str | None
    category: str
    subject: str
    description: str
    order_ref: str
    claim: MoneyPublic
    desired_outcome: str
    priority: str
    flags: list[str]
    awaiting: list[str]
    merchant_responded: bool
    outcome: str | None
    awarded: MoneyPublic | None
    reopen_count: int
    created_at: str
    updated_at: str
    closed_at: str | None

    @classmethod
    def of(cls, s: CaseSnapshot) -> CasePublic:
        return cls(
            id=s.id,
            workflow=s.workflow_name,
            workflow_version=s.workflow_version,
            policy_version=s.policy_version,
            state=s.state,
            version=s.version,
            consumer_id=s.consumer_id,
            merchant_id=s.merchant_id,
            mediator_id=s.mediator_id,
            category=s.category,
            subject=s.subject,
            description=s.description,
            order_ref=s.order_ref,
            claim=MoneyPublic(amount=s.claim_amount, currency=s.currency),
            desired_outcome=s.desired_outcome,
            priority=s.priority,
            flags=list(s.flags),
            awaiting=list(s.awaiting),
            merchant_responded=s.merchant_responded,
            outcome=s.outcome,
            awarded=(
                MoneyPublic(amount=s.awarded_amount, currency=s.currency) if s.awarded_amount is not None else None
            ),
            reopen_count=s.reopen_count,
            created_at=s.created_at,
            updated_at=s.updated_at,
            closed_at=s.closed_at,
        )


class CasesPublic(BaseModel):
    data: list[CasePublic]
    next_cursor: str | None


class ActorPublic(BaseModel):
    id: str
    role: str


class EventPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 3,
                    "type": "transitioned",
                    "at": "2026-11-28T01:20:00.000000Z",
                    "actor": {"id": "med-li", "role": "mediator"},
                    "trigger": "assign",
                    "from": "filed",
                    "to": "assigned",
                    "data": {"trigger": "assign", "from": "filed", "to": "assigned", "mediator_id": "med-li"},
                    "workflow_version": "e0d397e9" + "0" * 56,
                    "policy_version": "e85b9171" + "0" * 56,
                    "prev_hash": "5f2c" + "0" * 60,
                    "hash": "9a41" + "0" * 60,
                }
            ]
        }
    )

    seq: int
    type: str
    at: str
    actor: ActorPublic
    trigger: str | None = None
    from_state: str | None = Field(default=None, serialization_alias="from")
    to_state: str | None = Field(default=None, serialization_alias="to")
    data: dict[str, Any]
    workflow_version: str
    policy_version: str
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, e: RecordedEvent) -> EventPublic:
        is_transition = e.type == "transitioned"
        return cls(
            seq=e.seq,
            type=e.type,
            at=e.at,
            actor=ActorPublic(id=e.actor_id, role=e.actor_role),
            trigger=e.data.get("trigger") if is_transition else None,
            from_state=e.data.get("from") if is_transition else None,
            to_state=e.data.get("to") if is_transition else None,
            data=e.data,
            workflow_version=e.workflow_version,
            policy_version=e.policy_version,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )


class EventsPublic(BaseModel):
    data: list[EventPublic]
    next_cursor: str | None


class ActionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "withdraw",
                    "kind": "trigger",
                    "allowed": True,
                    "reasons": ["the consumer who filed the case may withdraw it"],
                },
                {
                    "name": "settle",
                    "kind": "trigger",
                    "allowed": False,
                    "reasons": ["not possible in state 'assigned'"],
                },
            ]
        }
    )

    name: str
    kind: Literal["trigger", "action"]
    allowed: bool
    reasons: list[str]


class ActionsPublic(BaseModel):
    case_id: str
    state: str
    version: int
    data: list[ActionPublic]


class Health(BaseModel):
    status: str
    database: str | None = None
    policies: str | None = None


class TimerPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "merchant_response",
                    "status": "running",
                    "calendar": "24x7",
                    "goal": "48 hours",
                    "started_at": "2026-11-28T01:20:00.000000Z",
                    "due_at": "2026-11-30T01:20:00.000000Z",
                    "warn_at": "2026-11-29T13:20:00.000000Z",
                    "warned": False,
                    "remaining_business_seconds": 172800,
                    "elapsed_business_seconds": 0,
                    "paused_business_seconds": 0,
                    "ended_at": None,
                }
            ]
        }
    )

    name: str
    status: str
    calendar: str
    goal: str
    started_at: str
    due_at: str
    warn_at: str | None
    warned: bool
    remaining_business_seconds: int = Field(description="Business seconds left; negative once overdue.")
    elapsed_business_seconds: int
    paused_business_seconds: int
    ended_at: str | None


class TimersPublic(BaseModel):
    case_id: str
    data: list[TimerPublic]


class QueueItemPublic(BaseModel):
    case: CasePublic
    most_urgent: TimerPublic | None


class QueuePublic(BaseModel):
    data: list[QueueItemPublic]
    next_cursor: str | None


class ResponseCreate(Strict):
    statement: RequiredText = text(1, 20_000)


class MessageCreate(Strict):
    body: RequiredText = text(1, 20_000)
    internal: bool = Field(default=False, strict=True, description="A mediator-only note, invisible to the parties.")


class MessagePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "msg5",
                    "seq": 5,
                    "party": "consumer",
                    "author_id": "c-2001",
                    "body": "请尽快处理，谢谢。",
                    "internal": False,
                    "at": "2026-11-28T01:30:00.000000Z",
                }
            ]
        }
    )

    id: str
    seq: int
    party: str
    author_id: str
    body: str
    internal: bool
    at: str


class MessagesPublic(BaseModel):
    data: list[MessagePublic]
    next_cursor: str | None


class EvidencePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ev4",
                    "party": "consumer",
                    "added_by": "c-2001",
                    "filename": "label.png",
                    "media_type": "image/png",
                    "size": 48213,
                    "sha256": "3b1f" + "0" * 60,
                    "description": "序列号标签",
                    "status": "submitted",
                    "added_at": "2026-11-28T01:25:00.000000Z",
                }
            ]
        }
    )

    id: str
    party: str
    added_by: str
    filename: str
    media_type: str
    size: int
    sha256: str
    description: str
    status: Literal["draft", "submitted"]
    added_at: str


class EvidenceListPublic(BaseModel):
    data: list[EvidencePublic]
    next_cursor: str | None = None


class OfferCreate(Strict):
    amount: int = Field(ge=0, le=10**12, strict=True, description="Minor units.")
    currency: Currency = Field(pattern=r"^[A-Z]{3}$", description="The claim's ISO 4217 code.")
    terms: Text = text(0, 4000, default="")


class OfferDecision(Strict):
    reason: Text = text(0, 4000, default="")


class OfferPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "off9",
                    "amount": 45000,
                    "currency": "CNY",
                    "terms": "退一半货款，无需退货。",
                    "proposed_by": "merchant",
                    "status": "open",
                    "decided_by": None,
                    "created_at": "2026-11-28T02:00:00.000000Z",
                    "decided_at": None,
                }
            ]
        }
    )

    id: str
    amount: int
    currency: str
    terms: str
    proposed_by: str
    status: str
    decided_by: str | None
    created_at: str
    decided_at: str | None


class OffersPublic(BaseModel):
    data: list[OfferPublic]
    next_cursor: str | None = None


class InfoRequestCreate(Strict):
    party: Literal["consumer", "merchant"]
    question: RequiredText = text(1, 4000)


class InfoAnswer(Strict):
    answer: RequiredText = text(1, 20_000)


class InfoRequestPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "rq7",
                    "party": "consumer",
                    "question": "请上传商品照片和订单截图。",
                    "requested_by": "med-li",
                    "status": "open",
                    "answer": None,
                    "requested_at": "2026-11-28T01:40:00.000000Z",
                    "answered_at": None,
                }
            ]
        }
    )

    id: str
    party: str
    question: str
    requested_by: str
    status: str
    answer: str | None
    requested_at: str
    answered_at: str | None


class InfoRequestsPublic(BaseModel):
    data: list[InfoRequestPublic]
    next_cursor: str | None = None


class FeedbackCreate(Strict):
    score: int = Field(ge=1, le=5, strict=True)
    comment: Text = text(0, 4000, default="")


class FeedbackPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"party": "consumer", "score": 4, "comment": "处理及时。", "at": "2026-12-05T08:00:00.000000Z"}
            ]
        }
    )

    party: str
    score: int
    comment: str
    at: str


# --- mediators ---------------------------------------------------------------------------------

MediatorCategory = Literal[
    "product_quality",
    "counterfeit",
    "not_received",
    "not_as_described",
    "after_sales",
    "false_advertising",
    "other",
    "*",
]
MediatorLanguage = Literal["zh", "en", "*"]
_MEDIATOR_EXAMPLE: dict[str, Any] = {
    "id": "med-li",
    "display_name": "李调解员",
    "categories": ["counterfeit", "product_quality"],
    "languages": ["zh", "en"],
    "capacity": 12,
    "calendar": "default",
    "active": True,
}


class MediatorCreate(Strict):
    id: Identifier = identifier_field(
        description="The mediator's user id (the `sub` of their token); no slashes.",
        pattern=r"^[^\s/\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]+$",
    )
    display_name: RequiredText = text(1, 200)
    categories: list[MediatorCategory] = Field(min_length=1, max_length=8, description='Skills; "*" for any.')
    languages: list[MediatorLanguage] = Field(min_length=1, max_length=3, description='"*" for any.')
    capacity: int = Field(
        ge=0,
        le=1000,
        strict=True,
        description="Most open load at once; a case weighs its priority's weight (normal 1).",
    )
    calendar: Identifier = identifier_field(
        default="default", description="Duty calendar: on duty during its working hours."
    )
    active: bool = Field(default=True, strict=True)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_MEDIATOR_EXAMPLE]})


class MediatorUpdate(Strict):
    display_name: RequiredText | None = text(1, 200, default=None)
    categories: list[MediatorCategory] | None = Field(default=None, min_length=1, max_length=8)
    languages: list[MediatorLanguage] | None = Field(default=None, min_length=1, max_length=3)
    capacity: int | None = Field(default=None, ge=0, le=1000, strict=True)
    calendar: Identifier | None = identifier_field(default=None, description="Duty calendar.")
    active: bool | None = Field(default=None, strict=True)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"capacity": 8, "active": False}]})


class MediatorPublic(BaseModel):
    id: str
    display_name: str
    categories: list[str]
    languages: list[str]
    capacity: int
    calendar: str
    active: bool
    open_load: int = Field(description="Open cases weighted by priority.")
    last_assigned_at: str | None = Field(description="When the router last assigned them a case.")
    created_at: str
    updated_at: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_MEDIATOR_EXAMPLE,
                    "open_load": 5,
                    "last_assigned_at": "2026-11-28T01:20:00Z",
                    "created_at": "2026-11-01T01:00:00Z",
                    "updated_at": "2026-11-01T01:00:00Z",
                }
            ]
        }
    )


class MediatorsPublic(BaseModel):
    data: list[MediatorPublic]


# --- reports -------------------------------------------------------------------------------------


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


class HotspotsPublic(BaseModel):
    since: str
    until: str
    timezone: str
    previous_period: Period
    data: list[HotspotTotal] = Field(description="Per merchant and category, biggest rise first.")
    weeks: list[HotspotWeek]

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
