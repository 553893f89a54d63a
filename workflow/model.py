"""The case as the domain sees it: immutable snapshots, actors and commands."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

# reviewer: a third-party overseer (consumer representative, legal expert) who scores the closed
# cases sampled for them, redacted (intake/review.py, reports/review.py); never a party or mediator.
Role = Literal["consumer", "merchant", "mediator", "senior_mediator", "auditor", "admin", "reviewer", "system"]
ROLES: tuple[Role, ...] = get_args(Role)
MEDIATOR_ROLES = frozenset({"mediator", "senior_mediator"})
# The complaint categories are the desk's (workflow/categories.py): no list is fixed here.


@dataclass(frozen=True, slots=True)
class Actor:
    """Who issues a command. ``merchant_id`` is set for merchants only."""

    id: str
    role: str
    merchant_id: str | None = None

    @property
    def party(self) -> str:
        """The side of the case this actor speaks for."""
        if self.role in MEDIATOR_ROLES:
            return "mediator"
        return self.role


SYSTEM = Actor(id="system", role="system")


@dataclass(frozen=True, slots=True)
class Offer:
    offer_id: str
    amount: int
    currency: str
    terms: str
    proposed_by: str  # party
    proposer_id: str
    status: str = "open"  # open, accepted, rejected, expired
    decided_by: str | None = None
    created_at: str = ""
    decided_at: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    evidence_id: str
    party: str
    added_by: str
    filename: str
    media_type: str
    size: int
    sha256: str
    description: str = ""
    status: str = "draft"  # draft, submitted
    added_at: str = ""


@dataclass(frozen=True, slots=True)
class InfoRequest:
    request_id: str
    party: str  # consumer or merchant
    question: str
    requested_by: str
    status: str = "open"  # open, answered
    answer: str | None = None
    requested_at: str = ""
    answered_at: str | None = None


@dataclass(frozen=True, slots=True)
class TimerState:
    """A clock as the log says it stands. Instants are ISO-8601 UTC text."""

    name: str
    status: str  # running, paused, met, breached, cancelled
    started_at: str
    due_at: str
    warn_at: str | None = None
    warned: bool = False
    paused_at: str | None = None
    paused_seconds: int = 0
    ended_at: str | None = None

    @property
    def breaching(self) -> bool:
        """Breached, or warned and still running (a paused or finished clock is not)."""
        return self.status == "breached" or (self.status == "running" and self.warned)


@dataclass(frozen=True, slots=True)
class Rating:
    party: str
    score: int
    comment: str
    at: str


@dataclass(frozen=True, slots=True)
class Review:
    """A third-party reviewer's scores of a case (the desk's rubric items -> score), and any flag
    they raised for a senior mediator's second look."""

    reviewer_id: str
    scores: dict[str, int]
    comment: str
    at: str
    rubric_version: str = ""


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    """A case folded from its events. ``version`` is the seq of the last event."""

    id: str
    workflow_name: str
    workflow_version: str
    state: str
    version: int
    consumer_id: str
    merchant_id: str
    category: str
    subject: str
    description: str
    order_ref: str
    claim_amount: int
    currency: str
    desired_outcome: str
    created_at: str
    updated_at: str
    policy_version: str = ""
    priority: str = "normal"
    mediator_id: str | None = None
    merchant_responded: bool = False
    accepted_offer_id: str | None = None
    outcome: str | None = None
    awarded_amount: int | None = None
    closed_at: str | None = None
    reopen_count: int = 0
    flags: tuple[str, ...] = ()
    offers: tuple[Offer, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    info_requests: tuple[InfoRequest, ...] = ()
    timers: tuple[TimerState, ...] = ()
    ratings: tuple[Rating, ...] = ()
    message_count: int = 0
    # Third-party review: who the case was dealt to (review_assigned), what they gave.
    reviewers: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    # The case facts the filing carried (workflow/facts.py), in their stored JSON form.
    facts: dict[str, Any] = field(default_factory=dict)
    # Counts over related cases taken at filing (workflow/related.py), by name.
    related: dict[str, int] = field(default_factory=dict)
    # When the case entered its current state (what "evidence added since" counts from).
    state_since: str = ""
    head_hash: str = field(default="0" * 64)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Parties with an open information request, e.g. ('merchant',)."""
        return tuple(sorted({r.party for r in self.info_requests if r.status == "open"}))

    def evolve(self, **changes: Any) -> CaseSnapshot:
        return replace(self, **changes)

    @property
    def breaching(self) -> bool:
        """Has any of the case's clocks breached, or warned and still running?"""
        return any(t.breaching for t in self.timers)

    def offer(self, offer_id: str) -> Offer | None:
        return next((o for o in self.offers if o.offer_id == offer_id), None)

    def timer(self, name: str) -> TimerState | None:
        for timer in reversed(self.timers):
            if timer.name == name:
                return timer
        return None

    def is_party(self, actor: Actor) -> bool:
        if actor.role == "consumer":
            return actor.id == self.consumer_id
        if actor.role == "merchant":
            return actor.merchant_id == self.merchant_id
        return False


@dataclass(frozen=True, slots=True)
class Command:
    """A request to fire a trigger or perform an action on a case."""

    name: str
    actor: Actor
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NewCase:
    """Facts a consumer supplies when filing. An empty ``category`` asks the desk's
    classifier (cases/triage.py) to choose one from the subject and description."""

    consumer_id: str
    merchant_id: str
    category: str
    subject: str
    description: str
    order_ref: str
    claim_amount: int
    currency: str
    desired_outcome: str = "refund"
    priority: str = "normal"
    # Said by the consumer when filing (elderly, minor, disability...); recorded as the
    # case flag ``vulnerable_consumer`` and read by the priority rules.
    vulnerable_consumer: bool = False
    # Typed facts from outside the case, as the case's workflow declares them (workflow/facts.py).
    facts: dict[str, Any] = field(default_factory=dict)


def to_iso(moment: datetime) -> str:
    """UTC ISO-8601 text with microseconds, the one form instants take in events."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every instant in the engine must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
