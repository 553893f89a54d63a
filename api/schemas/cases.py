"""Cases: filing, moving, reading a case, its history and what the caller may do on it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import (
    CategoryId,
    DesiredOutcome,
    Identifier,
    Money,
    MoneyPublic,
    RequiredText,
    Strict,
    Text,
    identifier_field,
    text,
)
from cases.labels import PartyStatus
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot


class CaseCreate(Strict):
    merchant_id: Identifier = identifier_field(description="The merchant complained about.")
    order_ref: Identifier = identifier_field(description="The order's reference at the merchant.")
    category: CategoryId | None = Field(
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
    workflow: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The workflow to file under, among the desk's (the policies decide whether the filer may: "
        "`file` sees `resource.workflow`). Left out: the desk's workflow rules choose by the facts, else its "
        "default workflow. A workflow the desk does not have is refused with 422 on `workflow`.",
    )
    facts: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description="The case facts the desk's workflow declares (payment instant, delivery date, card network, "
        "reason code...), typed as declared: instant `2026-03-01T10:00:00Z`, date `2026-03-01`, integer, "
        '`{"amount", "currency"}` money, text or one of an enum\'s values. An unknown fact, a missing required '
        "one or a value of the wrong type is refused with 422 naming `facts.<name>`.",
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
    facts: dict[str, Any] = Field(default_factory=dict, description="The case facts the filing carried.")

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
            facts=dict(s.facts),
        )


class CaseStatusPublic(BaseModel):
    """The case's state as the caller's party reads it (the workflow state's ``labels``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": "DSP-01M8DHAH86-BT5520",
                    "state": "seller_response",
                    "party": "merchant",
                    "label": "Your response is required",
                    "final": False,
                }
            ]
        }
    )

    case_id: str
    state: str
    party: str = Field(description="consumer, merchant, mediator or auditor: whose label this is")
    label: str
    final: bool

    @classmethod
    def of(cls, s: PartyStatus) -> CaseStatusPublic:
        return cls(case_id=s.case_id, state=s.state, party=s.party, label=s.label, final=s.final)


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
