"""What parties and mediators do on a case besides moving it: responses, messages, evidence,
offers, information requests, feedback."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Currency, RequiredText, Strict, Text, text
from workflow.model import Evidence, InfoRequest, Offer


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

    @classmethod
    def of(cls, e: Evidence) -> EvidencePublic:
        return cls(
            id=e.evidence_id,
            party=e.party,
            added_by=e.added_by,
            filename=e.filename,
            media_type=e.media_type,
            size=e.size,
            sha256=e.sha256,
            description=e.description,
            status=e.status,  # type: ignore[arg-type]
            added_at=e.added_at,
        )


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

    @classmethod
    def of(cls, o: Offer) -> OfferPublic:
        return cls(
            id=o.offer_id,
            amount=o.amount,
            currency=o.currency,
            terms=o.terms,
            proposed_by=o.proposed_by,
            status=o.status,
            decided_by=o.decided_by,
            created_at=o.created_at,
            decided_at=o.decided_at,
        )


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

    @classmethod
    def of(cls, r: InfoRequest) -> InfoRequestPublic:
        return cls(
            id=r.request_id,
            party=r.party,
            question=r.question,
            requested_by=r.requested_by,
            status=r.status,
            answer=r.answer,
            requested_at=r.requested_at,
            answered_at=r.answered_at,
        )


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
