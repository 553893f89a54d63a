"""Webhook endpoints, failed deliveries, the notification inbox and contact settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Identifier, Strict, Text, identifier_field, text
from outbox.endpoints import Endpoint
from outbox.inbox import Contact, InboxNotice
from outbox.status import FailedDelivery

EVENT_TYPES_HELP = (
    "Case event types the endpoint wants, as `case.<event>` (`case.filed`, `case.transitioned`, "
    "`case.timer_rescheduled`, ...) or `*` for all."
)
EventType = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^(\*|case\.[a-z_]{1,50}|[a-z_]{1,50})$")]
RowId = Annotated[int, Field(ge=1, le=2**62, strict=True)]


class EndpointCreate(Strict):
    url: str = Field(min_length=8, max_length=2000, description="https outside development; public hosts only.")
    event_types: list[EventType] = Field(default=["*"], min_length=1, max_length=50, description=EVENT_TYPES_HELP)
    merchant_id: Identifier | None = identifier_field(
        default=None, limit=100, description="Admins: only this merchant's cases (none: every case)."
    )
    description: Text = text(max_length=400, default="")


class EndpointUpdate(Strict):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=50)
    enabled: bool | None = Field(default=None, strict=True)
    description: Text | None = text(max_length=400, default=None)


class EndpointPublic(BaseModel):
    id: str
    url: str
    description: str
    merchant_id: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str
    created_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointPublic:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            merchant_id=endpoint.merchant_id,
            event_types=list(endpoint.event_types),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
        )


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="The signing secret (`whsec_...`), shown once.")


class EndpointsPublic(BaseModel):
    data: list[EndpointPublic]


class SecretPublic(BaseModel):
    secret: str = Field(description="The new secret; the previous one also signs for 24 hours.")


class FailedDeliveryPublic(BaseModel):
    id: int
    case_id: str
    seq: int
    webhook_id: str
    attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime

    @classmethod
    def of(cls, failed: FailedDelivery) -> FailedDeliveryPublic:
        return cls(
            id=failed.id,
            case_id=failed.case_id,
            seq=failed.seq,
            webhook_id=failed.message_id,
            attempts=failed.attempts,
            last_status=failed.last_status,
            last_error=failed.last_error,
            created_at=failed.created_at,
        )


class FailedDeliveriesPublic(BaseModel):
    data: list[FailedDeliveryPublic]


class Resend(Strict):
    ids: list[RowId] | None = Field(default=None, max_length=1000, description="Only these (none: every failed one).")


class Resent(BaseModel):
    queued: int


class NoticePublic(BaseModel):
    id: int
    kind: str
    case_id: str
    subject: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read: bool

    @classmethod
    def of(cls, notice: InboxNotice) -> NoticePublic:
        return cls(
            id=notice.id,
            kind=notice.kind,
            case_id=notice.case_id,
            subject=notice.subject,
            body=notice.body,
            data=notice.data,
            created_at=notice.created_at,
            read=notice.read_at is not None,
        )


class NoticesPublic(BaseModel):
    data: list[NoticePublic]
    next_cursor: str | None = None


class UnreadCount(BaseModel):
    unread: int


class MarkRead(Strict):
    ids: list[RowId] | None = Field(default=None, max_length=1000, description="These notices (none: all of them).")


class Marked(BaseModel):
    marked: int


class ContactBody(Strict):
    email: str | None = Field(default=None, min_length=3, max_length=320, pattern=r"^[^\s@]+@[^\s@]+$")
    language: Literal["en", "zh-CN"] = "en"
    email_kinds: list[Annotated[str, Field(min_length=1, max_length=40, pattern=r"^(\*|[a-z_]+)$")]] = Field(
        default=["*"], max_length=20, description="Notice kinds sent by e-mail (`*`: all; empty: inbox only)."
    )
    digest: bool = Field(default=False, strict=True, description="One e-mail a day instead of one per notice.")


class ContactPublic(BaseModel):
    email: str | None
    language: str
    email_kinds: list[str]
    digest: bool

    @classmethod
    def of(cls, contact: Contact) -> ContactPublic:
        return cls(
            email=contact.email, language=contact.language, email_kinds=list(contact.email_kinds), digest=contact.digest
        )
