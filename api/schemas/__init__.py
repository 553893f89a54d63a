"""The API's request and response models, one module per router (schemas beside their feature),
re-exported here so that ``from api.schemas import CasePublic`` works whichever module holds it.
Requests forbid unknown fields (no mass assignment). Mappers from the domain's dataclasses are the
models' ``.of()`` classmethods."""

from __future__ import annotations

from api.schemas.actions import (
    EvidenceListPublic as EvidenceListPublic,
)
from api.schemas.actions import (
    EvidencePublic as EvidencePublic,
)
from api.schemas.actions import (
    FeedbackCreate as FeedbackCreate,
)
from api.schemas.actions import (
    FeedbackPublic as FeedbackPublic,
)
from api.schemas.actions import (
    InfoAnswer as InfoAnswer,
)
from api.schemas.actions import (
    InfoRequestCreate as InfoRequestCreate,
)
from api.schemas.actions import (
    InfoRequestPublic as InfoRequestPublic,
)
from api.schemas.actions import (
    InfoRequestsPublic as InfoRequestsPublic,
)
from api.schemas.actions import (
    MessageCreate as MessageCreate,
)
from api.schemas.actions import (
    MessagePublic as MessagePublic,
)
from api.schemas.actions import (
    MessagesPublic as MessagesPublic,
)
from api.schemas.actions import (
    OfferCreate as OfferCreate,
)
from api.schemas.actions import (
    OfferDecision as OfferDecision,
)
from api.schemas.actions import (
    OfferPublic as OfferPublic,
)
from api.schemas.actions import (
    OffersPublic as OffersPublic,
)
from api.schemas.actions import (
    ResponseCreate as ResponseCreate,
)
from api.schemas.audit import (
    CheckpointsPublic as CheckpointsPublic,
)
from api.schemas.audit import (
    ReplayPublic as ReplayPublic,
)
from api.schemas.cases import (
    ActionPublic as ActionPublic,
)
from api.schemas.cases import (
    ActionsPublic as ActionsPublic,
)
from api.schemas.cases import (
    ActorPublic as ActorPublic,
)
from api.schemas.cases import (
    CaseCreate as CaseCreate,
)
from api.schemas.cases import (
    CasePublic as CasePublic,
)
from api.schemas.cases import (
    CasesPublic as CasesPublic,
)
from api.schemas.cases import (
    CaseStatusPublic as CaseStatusPublic,
)
from api.schemas.cases import (
    EventPublic as EventPublic,
)
from api.schemas.cases import (
    EventsPublic as EventsPublic,
)
from api.schemas.cases import (
    TransitionRequest as TransitionRequest,
)
from api.schemas.clocks import (
    QueueItemPublic as QueueItemPublic,
)
from api.schemas.clocks import (
    QueuePublic as QueuePublic,
)
from api.schemas.clocks import (
    TimerPublic as TimerPublic,
)
from api.schemas.clocks import (
    TimersPublic as TimersPublic,
)
from api.schemas.common import (
    IDENTIFIER_PATTERN as IDENTIFIER_PATTERN,
)
from api.schemas.common import (
    IDENTIFIER_RULES as IDENTIFIER_RULES,
)
from api.schemas.common import (
    TEXT_PATTERN as TEXT_PATTERN,
)
from api.schemas.common import (
    TEXT_RULES as TEXT_RULES,
)
from api.schemas.common import (
    Currency as Currency,
)
from api.schemas.common import (
    DesiredOutcome as DesiredOutcome,
)
from api.schemas.common import (
    Health as Health,
)
from api.schemas.common import (
    Identifier as Identifier,
)
from api.schemas.common import (
    Money as Money,
)
from api.schemas.common import (
    MoneyPublic as MoneyPublic,
)
from api.schemas.common import (
    RequiredText as RequiredText,
)
from api.schemas.common import (
    Strict as Strict,
)
from api.schemas.common import (
    Text as Text,
)
from api.schemas.common import (
    identifier_field as identifier_field,
)
from api.schemas.common import (
    identifier_query as identifier_query,
)
from api.schemas.common import (
    text as text,
)
from api.schemas.mediators import (
    MediatorCategory as MediatorCategory,
)
from api.schemas.mediators import (
    MediatorCreate as MediatorCreate,
)
from api.schemas.mediators import (
    MediatorLanguage as MediatorLanguage,
)
from api.schemas.mediators import (
    MediatorPublic as MediatorPublic,
)
from api.schemas.mediators import (
    MediatorsPublic as MediatorsPublic,
)
from api.schemas.mediators import (
    MediatorUpdate as MediatorUpdate,
)
from api.schemas.policies import (
    PoliciesPublic as PoliciesPublic,
)
from api.schemas.policies import (
    PolicyPublic as PolicyPublic,
)
from api.schemas.reports import (
    CategoryShare as CategoryShare,
)
from api.schemas.reports import (
    FlagReasonPublic as FlagReasonPublic,
)
from api.schemas.reports import (
    HotspotsPublic as HotspotsPublic,
)
from api.schemas.reports import (
    HotspotTotal as HotspotTotal,
)
from api.schemas.reports import (
    HotspotWeek as HotspotWeek,
)
from api.schemas.reports import (
    MerchantFlagPublic as MerchantFlagPublic,
)
from api.schemas.reports import (
    MerchantReportRow as MerchantReportRow,
)
from api.schemas.reports import (
    MerchantsReportPublic as MerchantsReportPublic,
)
from api.schemas.reports import (
    Period as Period,
)
from api.schemas.reports import (
    RatingComment as RatingComment,
)
from api.schemas.reports import (
    RatingRowPublic as RatingRowPublic,
)
from api.schemas.reports import (
    SatisfactionPublic as SatisfactionPublic,
)
from api.schemas.reports import (
    SlaPublic as SlaPublic,
)
from api.schemas.reports import (
    SlaRowPublic as SlaRowPublic,
)
