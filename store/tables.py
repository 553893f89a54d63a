"""The tables, declared once with SQLModel and exported as typed SQLAlchemy ``Table`` constants.

The event log is the truth; every other table is a projection of it. Every read and write
goes through SQLAlchemy Core on the constants at the end of this module (``CASES``,
``EVENTS``, ...): the classes only declare the columns, indexes and constraints (and give
Alembic its metadata); nothing uses SQLModel's ORM sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, Table, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from store.db import UTCDateTime

# SQLite autoincrements only INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
_BigPK = BigInteger().with_variant(Integer(), "sqlite")


def _utc(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class CaseRow(SQLModel, table=True):
    """The case projection: indexed columns for queries plus the full snapshot as JSON."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_state_pk", "state", "pk"),
        Index("ix_cases_merchant_pk", "merchant_id", "pk"),
        Index("ix_cases_mediator_pk", "mediator_id", "pk"),
        Index("ix_cases_consumer_pk", "consumer_id", "pk"),
        # A consumer's cases, newest activity first across pages (the console's "My cases").
        Index("ix_cases_consumer_updated", "consumer_id", "updated_at", "pk"),
        # A party's list filtered by state, newest first (GET /v1/cases?state=...).
        Index("ix_cases_merchant_state_pk", "merchant_id", "state", "pk"),
        Index("ix_cases_mediator_state_pk", "mediator_id", "state", "pk"),
        Index("ix_cases_created", "created_at"),
        # GET /v1/cases?breaching=true|false, newest first: an index walk whatever the table's size.
        Index("ix_cases_breaching_pk", "breaching", "pk"),
        # Filing's intake (cases/triage.py, cases/mediators.py) counts a merchant's complaints in the
        # repeat window and each mediator's open cases by priority: both read only these entries
        # (covering), not every case the merchant or mediator ever had.
        Index("ix_cases_merchant_created", "merchant_id", "created_at"),
        Index("ix_cases_mediator_open", "mediator_id", "closed_at", "priority"),
        # The queue's count per state (their own and the unassigned pool): index-only.
        Index("ix_cases_mediator_open_state", "mediator_id", "closed_at", "state"),
    )

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    id: str = Field(max_length=40, unique=True)
    workflow_name: str = Field(max_length=100)
    workflow_version: str = Field(max_length=64)
    policy_version: str = Field(max_length=64)
    state: str = Field(max_length=60)
    version: int
    consumer_id: str = Field(max_length=100)
    merchant_id: str = Field(max_length=100)
    mediator_id: str | None = Field(default=None, max_length=100)
    category: str = Field(max_length=40)
    priority: str = Field(default="normal", max_length=20)
    claim_amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    awaiting: str = Field(default="", max_length=40)
    flags: str = Field(default="", max_length=400)
    outcome: str | None = Field(default=None, max_length=40)
    awarded_amount: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    head_hash: str = Field(max_length=64)
    snapshot: str = Field(sa_column=Column(Text, nullable=False))
    # Any clock breached, or warned and still running (CaseSnapshot.breaching).
    breaching: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class EventRow(SQLModel, table=True):
    """One entry of a case's log. ``body`` is the exact canonical JSON that was hashed."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_events_case_seq"),)

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    case_id: str = Field(max_length=40)
    seq: int
    type: str = Field(max_length=40)
    at: datetime = Field(sa_column=_utc(index=True))
    actor_id: str = Field(max_length=100)
    actor_role: str = Field(max_length=30)
    body: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class OfferRow(SQLModel, table=True):
    __tablename__ = "offers"

    case_id: str = Field(max_length=40, primary_key=True)
    offer_id: str = Field(max_length=40, primary_key=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    terms: str = Field(default="", sa_column=Column(Text, nullable=False))
    proposed_by: str = Field(max_length=20)
    proposer_id: str = Field(max_length=100)
    status: str = Field(max_length=20)
    decided_by: str | None = Field(default=None, max_length=20)
    created_at: datetime = Field(sa_column=_utc())
    decided_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class EvidenceRow(SQLModel, table=True):
    __tablename__ = "evidence"

    case_id: str = Field(max_length=40, primary_key=True)
    evidence_id: str = Field(max_length=40, primary_key=True)
    party: str = Field(max_length=20)
    added_by: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    media_type: str = Field(max_length=255)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)
    added_at: datetime = Field(sa_column=_utc())


class BlobRow(SQLModel, table=True):
    """Evidence content, stored once per sha256."""

    __tablename__ = "blobs"

    sha256: str = Field(max_length=64, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"

    case_id: str = Field(max_length=40, primary_key=True)
    message_id: str = Field(max_length=40, primary_key=True)
    seq: int
    party: str = Field(max_length=20)
    author_id: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    internal: bool = False
    at: datetime = Field(sa_column=_utc())


class TimerRow(SQLModel, table=True):
    """A running or finished SLA clock; the ticker claims rows by ``next_fire_at``."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_next_fire", "next_fire_at"),
        # The queue, most urgent running clock first (cases/sweep.py queue): an index walk
        # that stops after a page.
        Index("ix_timers_running_due", "status", "due_at", "case_id"),
    )

    case_id: str = Field(max_length=40, primary_key=True)
    name: str = Field(max_length=60, primary_key=True)
    status: str = Field(max_length=20)
    started_at: datetime = Field(sa_column=_utc())
    due_at: datetime = Field(sa_column=_utc())
    warn_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    warned: bool = False
    paused_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    paused_seconds: int = 0
    # The next instant the ticker must look at this row (warning or due); NULL when
    # paused or finished, so the sweep's index range holds only live clocks.
    next_fire_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class WorkflowVersionRow(SQLModel, table=True):
    """Every workflow definition version a case was ever filed under (cases stay pinned)."""

    __tablename__ = "workflow_versions"

    version: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=100)
    document: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())


class PolicyVersionRow(SQLModel, table=True):
    """Every policy set version an event was authorized under."""

    __tablename__ = "policy_versions"

    version: str = Field(max_length=64, primary_key=True)
    files: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())


class IdempotencyRow(SQLModel, table=True):
    """A POST's Idempotency-Key, scoped to the caller, with the response it produced."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_expires", "expires_at"),)

    scope: str = Field(max_length=64, primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    fingerprint: str = Field(max_length=64)
    status: str = Field(max_length=20)  # in_flight, done
    response_status: int | None = None
    response_headers: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint: a Merkle root over every case's chain head and one over every
    merchant log's head (audit/checkpoints.py).

    ``document`` is the exact RFC 8785 JSON that was hashed and signed; the other
    columns repeat its fields for queries and are checked against it on verification.
    The merchant columns are NULL on checkpoints written before merchant logs existed
    (document type v1, which signs no merchant fields).
    """

    __tablename__ = "checkpoints"

    number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    created_at: datetime = Field(sa_column=_utc())
    case_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    merkle_root: str = Field(max_length=64)
    delta_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    delta_hash: str = Field(max_length=64)
    previous_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
    public_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)
    document: str = Field(sa_column=Column(Text, nullable=False))
    merchant_count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    merchant_event_count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    merchant_root: str | None = Field(default=None, max_length=64)
    merchant_delta_count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    merchant_delta_hash: str | None = Field(default=None, max_length=64)


class CheckpointHeadRow(SQLModel, table=True):
    """A case's chain head as checkpoint ``checkpoint`` saw it, stored only when it changed
    since the case's previous row: the heads as of checkpoint N are, per case, the row
    with the greatest ``checkpoint <= N``."""

    __tablename__ = "checkpoint_heads"
    __table_args__ = (Index("ix_checkpoint_heads_checkpoint", "checkpoint", "case_id"),)

    case_id: str = Field(max_length=40, primary_key=True)
    checkpoint: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int
    hash: str = Field(max_length=64)


class CheckpointMerchantHeadRow(SQLModel, table=True):
    """A merchant log's head as checkpoint ``checkpoint`` saw it, stored only when it changed
    (the same delta rule as :class:`CheckpointHeadRow`)."""

    __tablename__ = "checkpoint_merchant_heads"
    __table_args__ = (Index("ix_checkpoint_merchant_heads_checkpoint", "checkpoint", "merchant_id"),)

    merchant_id: str = Field(max_length=100, primary_key=True)
    checkpoint: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int
    hash: str = Field(max_length=64)


class AuditReadRow(SQLModel, table=True):
    """Every audit read (verify, export, proofs, replay by an auditor) is itself recorded."""

    __tablename__ = "audit_reads"

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=_utc(index=True))
    actor_id: str = Field(max_length=100)
    actor_role: str = Field(max_length=30)
    what: str = Field(max_length=60)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class MediatorRow(SQLModel, table=True):
    """A mediator the router may assign cases to (cases/mediators.py). ``id`` is the user id
    their token carries. Lists are comma-separated; ``*`` means any."""

    __tablename__ = "mediators"

    id: str = Field(max_length=100, primary_key=True)
    display_name: str = Field(max_length=200)
    categories: str = Field(max_length=400)
    languages: str = Field(max_length=200)
    # In load units: an open case weighs its priority level's weight (intake/default/priority.yaml).
    capacity: int
    calendar: str = Field(max_length=100)  # the duty calendar: on duty during its working hours
    active: bool = True
    last_assigned_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class MerchantFlagRow(SQLModel, table=True):
    """A merchant flagged for supervision (reports/supervision.py): raised when a threshold was
    reached, cleared when a later evaluation finds none. At most one uncleared per merchant."""

    __tablename__ = "merchant_flags"
    __table_args__ = (Index("ix_merchant_flags_merchant", "merchant_id", "cleared_at"),)

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    merchant_id: str = Field(max_length=100)
    raised_at: datetime = Field(sa_column=_utc())
    evaluated_at: datetime = Field(sa_column=_utc())
    period_start: datetime = Field(sa_column=_utc())
    period_end: datetime = Field(sa_column=_utc())
    reasons: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of {metric, value, threshold, message}
    figures: str = Field(sa_column=Column(Text, nullable=False))  # JSON of the figures that raised it
    rules_version: str = Field(max_length=64)
    cleared_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class MerchantEventRow(SQLModel, table=True):
    """One entry of a merchant's log (cases/merchants.py): a supervision flag raised or
    cleared, recorded once for the merchant instead of on each of its cases. Chained like
    the cases' events; ``body`` is the exact canonical JSON that was hashed."""

    __tablename__ = "merchant_events"
    __table_args__ = (UniqueConstraint("merchant_id", "seq", name="uq_merchant_events_merchant_seq"),)

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    merchant_id: str = Field(max_length=100)
    seq: int
    type: str = Field(max_length=40)
    at: datetime = Field(sa_column=_utc())
    actor_id: str = Field(max_length=100)
    actor_role: str = Field(max_length=30)
    body: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class MerchantRow(SQLModel, table=True):
    """The merchant projection: its log's head and whether it is flagged now. Commands read
    it with the case (one join) so that the policies see the merchant's current flag."""

    __tablename__ = "merchants"

    merchant_id: str = Field(max_length=100, primary_key=True)
    seq: int
    head_hash: str = Field(max_length=64)
    flagged: bool = Field(sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(sa_column=_utc())


class SubjectRow(SQLModel, table=True):
    """A consumer's pseudonym (``sub_...``, what event bodies and case columns hold) and the
    marketplace's user id it stands for. Erasure nulls ``user_id`` (cases/erasure.py)."""

    __tablename__ = "subjects"

    subject: str = Field(max_length=40, primary_key=True)
    user_id: str | None = Field(default=None, max_length=100, unique=True)
    created_at: datetime = Field(sa_column=_utc())
    erased_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class CaseKeyRow(SQLModel, table=True):
    """A case's data key, wrapped by a key-encryption key; after erasure a tombstone (``wrapped``
    and ``kek_id`` NULL, ``erased_at`` set). Legal holds are events of the case's log (its flags)."""

    __tablename__ = "case_keys"

    case_id: str = Field(max_length=40, primary_key=True)
    subject: str = Field(max_length=40, index=True)
    kek_id: str | None = Field(default=None, max_length=100)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    erased_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class PersonalValueRow(SQLModel, table=True):
    """One personal value beside the chain: the salt and value sealed under the case's data key,
    the marker that replaces it in the log as associated data (privacy/sealing.py)."""

    __tablename__ = "personal_values"

    ref: str = Field(max_length=24, primary_key=True)
    case_id: str = Field(max_length=40, index=True)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IndexKeyRow(SQLModel, table=True):
    """A key for blind indexes (keyed hashes that let the engine match a personal value without
    storing it), wrapped by a key-encryption key like a case's data key (cases/personal.py)."""

    __tablename__ = "index_keys"

    name: str = Field(max_length=40, primary_key=True)
    kek_id: str = Field(max_length=100)
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=_utc())


class OrderRefRow(SQLModel, table=True):
    """A case's order reference as a blind index: HMAC-SHA256 under the ``order_ref`` index key,
    so related-case counts (workflow ``related: same_order``) match orders while the log holds
    only a marker. Erasing the case deletes its row."""

    __tablename__ = "order_refs"
    __table_args__ = (Index("ix_order_refs_lookup", "merchant_id", "token", "created_at"),)

    case_id: str = Field(max_length=40, primary_key=True)
    merchant_id: str = Field(max_length=100)
    token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_utc())


class ErasureRow(SQLModel, table=True):
    """An erasure asked for or carried out: whose (the pseudonym), when, on which basis, who
    approved, the cases erased and those deferred (open, or under legal hold). A restore lists
    the erasures after its backup's time from here and carries them out again."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_requested", "requested_at"),)

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    subject: str = Field(max_length=40, index=True)
    basis: str = Field(max_length=200)
    approved_by: str = Field(max_length=100)
    requested_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    status: str = Field(max_length=20)  # done, deferred
    erased: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of case ids
    deferred: str = Field(sa_column=Column(Text, nullable=False))  # JSON {case id: reason}


class OutboxRow(SQLModel, table=True):
    """What one write to a case must tell (outbox/hook.py): written in the command's own
    transaction, so a crash neither sends what was not committed nor loses what was. The
    dispatcher fans each row out into deliveries and inbox notices (outbox/fanout.py)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "fanned_out", "pk"),)

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    case_id: str = Field(max_length=40)
    first_seq: int
    last_seq: int
    # The planned notices and reminders (notify/plan.py) as JSON; ids and instants, no texts.
    planned: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())
    fanned_out: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class DeliveryRow(SQLModel, table=True):
    """One message to one target: a webhook to an endpoint, an e-mail to a recipient, or a
    reminder to send later. Claimed by due time; a lease marks it in flight."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("channel", "target", "message_id", name="uq_deliveries_message"),
        Index("ix_deliveries_due", "status", "due_at"),
        Index("ix_deliveries_line", "channel", "target", "case_id", "status", "seq"),
    )

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    channel: str = Field(max_length=20)  # webhook, email, reminder
    target: str = Field(max_length=140)  # endpoint id, recipient key, case:timer
    case_id: str = Field(max_length=40)
    seq: int
    message_id: str = Field(max_length=120)  # webhook-id: the event's stable id
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20)  # pending, delivered, failed, dropped
    due_at: datetime = Field(sa_column=_utc())
    lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    attempts: int = 0
    last_status: int | None = None
    last_error: str = Field(default="", max_length=400)
    created_at: datetime = Field(sa_column=_utc())
    delivered_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class DeliveryAttemptRow(SQLModel, table=True):
    """Every attempt at a delivery, with what came back."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_pk"),)

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    delivery_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(sa_column=_utc())
    status_code: int | None = None
    error: str = Field(default="", max_length=400)
    duration_ms: int = 0


class WebhookEndpointRow(SQLModel, table=True):
    """A receiver of signed webhooks. ``merchant_id`` NULL: every case's events (admins only)."""

    __tablename__ = "webhook_endpoints"

    id: str = Field(max_length=40, primary_key=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=400)
    owner_id: str = Field(max_length=100)
    merchant_id: str | None = Field(default=None, max_length=100, index=True)
    event_types: str = Field(default="*", max_length=2000)  # comma-separated, or *
    secret: str = Field(max_length=100)
    # During a rotation the previous secret signs too, until this instant.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    enabled: bool = True
    disabled_reason: str = Field(default="", max_length=400)
    # 429/502/504 or Retry-After: nothing is sent to it before this instant.
    slow_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(sa_column=_utc())


class NoticeRow(SQLModel, table=True):
    """A person's (or a merchant's) inbox entry."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_recipient", "recipient", "pk"),
        Index("ix_notices_unread", "recipient", "read_at"),
        UniqueConstraint("recipient", "kind", "case_id", "seq", name="uq_notices_once"),
    )

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    recipient: str = Field(max_length=140)
    kind: str = Field(max_length=40)
    case_id: str = Field(max_length=40)
    seq: int
    data: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())
    read_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class ContactRow(SQLModel, table=True):
    """Personal data: where and how a recipient wants notices (e-mail address, language) and
    which kinds by e-mail; its own table keyed by the recipient so erasure deletes one row."""

    __tablename__ = "contacts"

    recipient: str = Field(max_length=140, primary_key=True)
    email: str | None = Field(default=None, max_length=320)
    language: str = Field(default="en", max_length=10)
    email_kinds: str = Field(default="*", max_length=1000)  # comma-separated kinds, * or empty (inbox only)
    digest: bool = False
    last_digest_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    updated_at: datetime = Field(sa_column=_utc())


class ReviewAssignmentRow(SQLModel, table=True):
    """A case dealt to a third-party reviewer (reports/review.py): the ``review_assigned`` event's
    projection, kept so a reviewer's queue and the flagged list are one indexed query. The log
    is the truth: ``reviewed_at`` and ``flagged_at`` follow ``review_submitted`` and
    ``review_flagged``, ``resolved_at`` ``review_flag_resolved``."""

    __tablename__ = "review_assignments"
    __table_args__ = (
        UniqueConstraint("case_id", "reviewer_id", name="uq_review_assignments_case_reviewer"),
        Index("ix_review_assignments_reviewer", "reviewer_id", "reviewed_at"),
        Index("ix_review_assignments_flagged", "flagged_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    case_id: str = Field(max_length=40)
    reviewer_id: str = Field(max_length=100)
    period: str = Field(max_length=40)
    assigned_at: datetime = Field(sa_column=_utc())
    reviewed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    flagged_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class TriageModelRow(SQLModel, table=True):
    """A triage model fitted by ``disputes intake retrain`` (cases/learning.py): its head, what it
    was trained on and how it scored; the newest promoted one classifies new complaints. Each
    case's ``filed`` event names the version that classified it."""

    __tablename__ = "triage_models"

    version: str = Field(max_length=64, primary_key=True)
    created_at: datetime = Field(sa_column=_utc())
    promoted: bool = Field(sa_column=Column(Boolean, nullable=False))
    examples: int
    corrections: int
    training_set: str = Field(max_length=64)
    metrics: str = Field(sa_column=Column(Text, nullable=False))  # JSON: frozen split, k-fold, baseline
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# The reports' read model (reports/readmodel.py): figures per day in the desk's zone, so that a
# dashboard reads a few rows per category, week and merchant instead of every case's events.


class ReportDirtyRow(SQLModel, table=True):
    """A case whose events changed since the read model last folded it: written in the same
    transaction as the events (cases/commands.py), removed by the refresh that folds it."""

    __tablename__ = "report_dirty"

    pk: int | None = Field(default=None, sa_column=Column(_BigPK, primary_key=True, autoincrement=True))
    case_id: str = Field(max_length=40)


class ReportStateRow(SQLModel, table=True):
    """One row: the zone the read model's days are in and a fingerprint of the calendars its
    business times were counted on (set by a rebuild). Refreshes lock it."""

    __tablename__ = "report_state"

    id: int = Field(primary_key=True)
    zone: str = Field(max_length=64)
    calendars: str = Field(max_length=64)
    rebuilt_at: datetime = Field(sa_column=_utc())


class ReportCaseRow(SQLModel, table=True):
    """What one case adds to the figures (JSON), as last folded: a refresh applies the difference."""

    __tablename__ = "report_cases"

    case_id: str = Field(max_length=40, primary_key=True)
    contribution: str = Field(sa_column=Column(Text, nullable=False))


class ReportFilingRow(SQLModel, table=True):
    """Complaints filed per day, merchant and category (the case's category now: hotspots)."""

    __tablename__ = "report_filings"

    day: str = Field(max_length=10, primary_key=True)
    merchant_id: str = Field(max_length=100, primary_key=True)
    category: str = Field(max_length=40, primary_key=True)
    complaints: int = 0


class ReportMerchantRow(SQLModel, table=True):
    """Per day filed, merchant and filed category: the merchants report's figures of those cases
    as they stand now (reports.facts.merchant_figures)."""

    __tablename__ = "report_merchants"

    day: str = Field(max_length=10, primary_key=True)
    merchant_id: str = Field(max_length=100, primary_key=True)
    category: str = Field(max_length=40, primary_key=True)
    complaints: int = 0
    decided: int = 0
    decided_against: int = 0
    settled_by_agreement: int = 0
    settlements: int = 0
    reopened: int = 0
    settle_seconds_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    settle_count: int = 0


class ReportMerchantClockRow(SQLModel, table=True):
    """Per day filed, merchant and clock: the clocks of those cases that ended met or breached
    (the merchants report reads the desk's response clock)."""

    __tablename__ = "report_merchant_clocks"

    day: str = Field(max_length=10, primary_key=True)
    merchant_id: str = Field(max_length=100, primary_key=True)
    clock: str = Field(max_length=60, primary_key=True)
    runs: int = 0
    breaches: int = 0


class ReportRatingRow(SQLModel, table=True):
    """Ratings per day given, mediator then, filed category, party and score."""

    __tablename__ = "report_ratings"

    day: str = Field(max_length=10, primary_key=True)
    mediator_id: str = Field(max_length=100, primary_key=True)
    category: str = Field(max_length=40, primary_key=True)
    party: str = Field(max_length=20, primary_key=True)
    score: int = Field(primary_key=True)
    ratings: int = 0


class ReportSlaRow(SQLModel, table=True):
    """Clock runs that ended met or breached, per day ended, clock, mediator then, filed category,
    status and business seconds counted (on the calendars the state row fingerprints): the SLA
    report's medians and percentiles come from these counts exactly."""

    __tablename__ = "report_sla"

    day: str = Field(max_length=10, primary_key=True)
    clock: str = Field(max_length=60, primary_key=True)
    mediator_id: str = Field(max_length=100, primary_key=True)
    category: str = Field(max_length=40, primary_key=True)
    status: str = Field(max_length=20, primary_key=True)
    seconds: int = Field(sa_column=Column(BigInteger, primary_key=True))
    runs: int = 0


# The tables as SQLAlchemy Core sees them, exported once (typed: no ``__table__`` lookups).
_TABLES = SQLModel.metadata.tables
CASES: Table = _TABLES["cases"]
EVENTS: Table = _TABLES["events"]
OFFERS: Table = _TABLES["offers"]
EVIDENCE: Table = _TABLES["evidence"]
BLOBS: Table = _TABLES["blobs"]
MESSAGES: Table = _TABLES["messages"]
TIMERS: Table = _TABLES["timers"]
WORKFLOW_VERSIONS: Table = _TABLES["workflow_versions"]
POLICY_VERSIONS: Table = _TABLES["policy_versions"]
IDEMPOTENCY_KEYS: Table = _TABLES["idempotency_keys"]
CHECKPOINTS: Table = _TABLES["checkpoints"]
CHECKPOINT_HEADS: Table = _TABLES["checkpoint_heads"]
CHECKPOINT_MERCHANT_HEADS: Table = _TABLES["checkpoint_merchant_heads"]
AUDIT_READS: Table = _TABLES["audit_reads"]
MEDIATORS: Table = _TABLES["mediators"]
MERCHANT_FLAGS: Table = _TABLES["merchant_flags"]
MERCHANT_EVENTS: Table = _TABLES["merchant_events"]
MERCHANTS: Table = _TABLES["merchants"]
SUBJECTS: Table = _TABLES["subjects"]
CASE_KEYS: Table = _TABLES["case_keys"]
PERSONAL_VALUES: Table = _TABLES["personal_values"]
ERASURES: Table = _TABLES["erasures"]
INDEX_KEYS: Table = _TABLES["index_keys"]
ORDER_REFS: Table = _TABLES["order_refs"]
OUTBOX: Table = _TABLES["outbox"]
DELIVERIES: Table = _TABLES["deliveries"]
DELIVERY_ATTEMPTS: Table = _TABLES["delivery_attempts"]
WEBHOOK_ENDPOINTS: Table = _TABLES["webhook_endpoints"]
NOTICES: Table = _TABLES["notices"]
CONTACTS: Table = _TABLES["contacts"]
REVIEW_ASSIGNMENTS: Table = _TABLES["review_assignments"]
TRIAGE_MODELS: Table = _TABLES["triage_models"]
REPORT_DIRTY: Table = _TABLES["report_dirty"]
REPORT_STATE: Table = _TABLES["report_state"]
REPORT_CASES: Table = _TABLES["report_cases"]
REPORT_FILINGS: Table = _TABLES["report_filings"]
REPORT_MERCHANTS: Table = _TABLES["report_merchants"]
REPORT_MERCHANT_CLOCKS: Table = _TABLES["report_merchant_clocks"]
REPORT_RATINGS: Table = _TABLES["report_ratings"]
REPORT_SLA: Table = _TABLES["report_sla"]
