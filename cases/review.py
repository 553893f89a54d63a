"""Third-party review on the case log: the period's sample dealt to reviewers, the redacted case
a reviewer reads, their scores and flags, a senior mediator's second look. (The figures are
reports/review.py's.)

Every step is an event on the case's own log (``review_assigned``, ``review_submitted``,
``review_flagged``, ``review_flag_resolved``: workflow/events.py), appended in the same
transaction as the ``review_assignments`` projection row, so reviews replay and verify like
everything else. Who may do what is the policy set's (policies/default/review.cedar); the
desk's sampling, redaction and rubric are ``intake/review.yaml`` (intake/review.py).

Reviewers never read a case through the case endpoints (they have no ``view``): this module
reads the case for them and sends every text it shows through :func:`shown_to_reviewer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select, update
from sqlmodel import Session

from cases import idempotency
from cases.commands import UnitOfWork
from cases.queries import load_case, load_seen
from cases.service import CaseService
from intake.review import Drawn, Redaction, ReviewRules, SampleCandidate, draw
from policies.base import require, require_desk
from store.tables import CASES, EVENTS, REVIEW_ASSIGNMENTS
from workflow.chain import event_from_body
from workflow.errors import ConflictError, InvalidCommandError, NotFoundError
from workflow.events import REVIEW_FLAG, Event, RecordedEvent
from workflow.merchant import seen_with
from workflow.model import SYSTEM, Actor, CaseSnapshot, Review, to_iso
from workflow.text import free_text

FLAG_DECISIONS = ("upheld", "dismissed")
NO_MEDIATOR = "(none)"  # the stratum of cases closed without a mediator (as reports/ names it)


def shown_to_reviewer(redaction: Redaction, value: str | None) -> str:
    """The one way a case text reaches a reviewer: read resolved (the case and its events pass
    through ``CaseService.reveal`` in :func:`_read`, so markers are texts or ``[erased]`` here),
    then redacted by the desk's rules."""
    return redaction.text(value or "")


# --- sampling ---------------------------------------------------------------------------------


def period_key(start: datetime, zone: ZoneInfo) -> str:
    """The period's name in the draw: its first day in the desk's time zone (2026-03-02)."""
    return start.astimezone(zone).date().isoformat()


@dataclass
class SampleOutcome:
    period: str
    since: datetime
    until: datetime
    candidates: int = 0
    drawn: list[Drawn] = field(default_factory=list)
    assigned: list[str] = field(default_factory=list)  # cases newly dealt (the rest were already)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "since": to_iso(self.since),
            "until": to_iso(self.until),
            "candidates": self.candidates,
            "drawn": [
                {"case_id": d.case_id, "stratum": list(d.stratum), "reviewers": list(d.reviewers)} for d in self.drawn
            ],
            "assigned": self.assigned,
        }


def sample_period(
    service: CaseService, rules: ReviewRules, actor: Actor, *, since: datetime, zone: ZoneInfo
) -> SampleOutcome:
    """Draw the sample of the cases closed in ``[since, since + period)`` and deal it: a
    ``review_assigned`` event on each drawn case not dealt yet. Running it again for the same
    period draws the same cases and adds nothing."""
    now = service.clock.now()
    require_desk(service.authorizer, actor=actor, action="sample_reviews", now=now)
    until = since + rules.sampling.period
    key = period_key(since, zone)
    outcome = SampleOutcome(key, since, until)
    with service.db.read() as session:
        rows = session.execute(
            select(CASES.c.id, CASES.c.category, CASES.c.mediator_id, CASES.c.merchant_id, CASES.c.outcome)
            .where(CASES.c.closed_at >= since, CASES.c.closed_at < until)
            .order_by(CASES.c.pk)
        ).all()
    candidates = [
        SampleCandidate(r.id, r.category, r.mediator_id or NO_MEDIATOR, r.merchant_id, r.outcome or "") for r in rows
    ]
    outcome.candidates = len(candidates)
    outcome.drawn = draw(candidates, rules, key)
    for drawn in outcome.drawn:
        if service.db.run_write(lambda s, d=drawn: _deal(s, service, d, key, rules, now)):  # type: ignore[misc]
            outcome.assigned.append(drawn.case_id)
    return outcome


def _deal(session: Session, service: CaseService, drawn: Drawn, key: str, rules: ReviewRules, now: datetime) -> bool:
    before, _ = load_case(session, drawn.case_id)
    new = [r for r in drawn.reviewers if r not in before.reviewers]
    if not new:
        return False
    data = {"reviewers": new, "period": key, "stratum": list(drawn.stratum), "rules_version": rules.version}
    _append(session, service, before, [Event("review_assigned", data)], SYSTEM, now)
    for reviewer in new:
        session.execute(
            insert(REVIEW_ASSIGNMENTS).values(case_id=drawn.case_id, reviewer_id=reviewer, period=key, assigned_at=now)
        )
    return True


def _append(
    session: Session, service: CaseService, before: CaseSnapshot, events: list[Event], actor: Actor, now: datetime
) -> CaseSnapshot:
    definition = service.registry.machine(before.workflow_version, session).definition
    work = UnitOfWork(service, definition, before, before.id, now)
    work.add(events, actor)
    return work.write(session)


# --- what a reviewer reads --------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """A case in a reviewer's queue."""

    case_id: str
    period: str
    assigned_at: datetime
    reviewed_at: datetime | None
    flagged_at: datetime | None
    category: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "period": self.period,
            "assigned_at": to_iso(self.assigned_at),
            "reviewed_at": to_iso(self.reviewed_at) if self.reviewed_at else None,
            "flagged_at": to_iso(self.flagged_at) if self.flagged_at else None,
            "category": self.category,
            "state": self.state,
        }


def review_queue(service: CaseService, actor: Actor, *, pending_only: bool = False) -> list[ReviewItem]:
    """The cases dealt to the calling reviewer, oldest first (still to review first)."""
    if actor.role != "reviewer":
        return []
    stmt = (
        select(REVIEW_ASSIGNMENTS, CASES.c.category, CASES.c.state)
        .join(CASES, CASES.c.id == REVIEW_ASSIGNMENTS.c.case_id)
        .where(REVIEW_ASSIGNMENTS.c.reviewer_id == actor.id)
    )
    if pending_only:
        stmt = stmt.where(REVIEW_ASSIGNMENTS.c.reviewed_at.is_(None))
    with service.db.read() as session:
        rows = session.execute(
            stmt.order_by(REVIEW_ASSIGNMENTS.c.reviewed_at.is_not(None), REVIEW_ASSIGNMENTS.c.id).limit(500)
        ).all()
    return [
        ReviewItem(r.case_id, r.period, r.assigned_at, r.reviewed_at, r.flagged_at, r.category, r.state) for r in rows
    ]


def _events(session: Session, case_id: str) -> list[RecordedEvent]:
    rows = session.execute(
        select(EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
        .where(EVENTS.c.case_id == case_id)
        .order_by(EVENTS.c.seq)
    ).all()
    return [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows]


# The write transaction of the review command now rendering its idempotent answer (see
# :func:`_command`): a read made while it renders must see what the command just wrote.
_ANSWERING: ContextVar[Session | None] = ContextVar("review_answering", default=None)


@contextmanager
def _reading(service: CaseService) -> Iterator[Session]:
    """A read transaction, or the command's own while its answer is rendered."""
    writing = _ANSWERING.get()
    if writing is not None:
        yield writing
        return
    with service.db.read() as session:
        yield session


def _read(service: CaseService, actor: Actor, case_id: str, action: str) -> tuple[CaseSnapshot, list[RecordedEvent]]:
    """The case and its log for an ``action`` of this module; NotFound for a caller refused it."""
    with _reading(service) as session:
        snapshot = load_seen(session, case_id)
        decision = service.authorizer.decide(actor=actor, action=action, case=snapshot, now=service.clock.now())
        if not decision.allowed:
            raise NotFoundError("case", case_id)
        # Markers resolved once for the whole read (CaseService.reveal), before any redaction.
        return service.reveal((snapshot, _events(session, case_id)), session=session)


# Texts of the log a reviewer reads, per event type: (data key, label).
_TEXTS: Mapping[str, tuple[str, ...]] = {
    "merchant_responded": ("statement",),
    "message": ("body",),
    "offer_proposed": ("terms",),
    "offer_rejected": ("reason",),
    "info_requested": ("question",),
    "info_provided": ("answer",),
    "rated": ("comment",),
    "transitioned": ("reason",),
}
# Facts of the log shown as they are (none personal).
_FACTS = ("trigger", "from", "to", "outcome", "awarded_amount", "amount", "currency", "party", "timer", "score", "flag")


def review_case(service: CaseService, rules: ReviewRules, actor: Actor, case_id: str) -> dict[str, Any]:
    """The case as a reviewer reads it: structured personal fields masked, every text redacted,
    internal notes left out, the mediator named (the review is of the mediation)."""
    snapshot, events = _read(service, actor, case_id, "view_for_review")
    redaction = rules.redaction
    timeline = []
    for event in events:
        if event.type == "message" and event.data.get("internal"):
            continue  # internal notes are the desk's own
        entry: dict[str, Any] = {"seq": event.seq, "type": event.type, "at": event.at, "actor_role": event.actor_role}
        if event.actor_role in ("mediator", "senior_mediator", "system"):
            entry["actor_id"] = event.actor_id
        for key in _FACTS:
            if key in event.data:
                entry[key] = event.data[key]
        for key in _TEXTS.get(event.type, ()):
            if event.data.get(key):
                entry[key] = shown_to_reviewer(redaction, event.data[key])
        if event.type in ("review_submitted", "review_flagged", "review_flag_resolved", "review_assigned"):
            continue  # reviews are shown beside the case, each reviewer's own
        timeline.append(entry)
    statements = {
        "consumer": shown_to_reviewer(redaction, snapshot.description),
        "merchant": [e["statement"] for e in timeline if e["type"] == "merchant_responded" and "statement" in e],
    }
    own = [_review_dict(r) for r in snapshot.reviews if r.reviewer_id == actor.id or actor.role == "auditor"]
    return {
        "case_id": snapshot.id,
        "state": snapshot.state,
        "category": snapshot.category,
        "priority": snapshot.priority,
        "workflow": snapshot.workflow_name,
        "consumer": redaction.field("consumer_id", snapshot.consumer_id),
        "merchant": redaction.field("merchant_id", snapshot.merchant_id),
        "order_ref": redaction.field("order_ref", snapshot.order_ref),
        "subject": shown_to_reviewer(redaction, snapshot.subject),
        "desired_outcome": shown_to_reviewer(redaction, snapshot.desired_outcome),
        "claim": {"amount": snapshot.claim_amount, "currency": snapshot.currency},
        "mediator_id": snapshot.mediator_id,
        "outcome": snapshot.outcome,
        "awarded_amount": snapshot.awarded_amount,
        "created_at": snapshot.created_at,
        "closed_at": snapshot.closed_at,
        "reopen_count": snapshot.reopen_count,
        "flagged": REVIEW_FLAG in snapshot.flags,
        "statements": statements,
        "timers": [
            {
                "name": t.name,
                "status": t.status,
                "started_at": t.started_at,
                "due_at": t.due_at,
                "ended_at": t.ended_at,
                "paused_seconds": t.paused_seconds,
            }
            for t in snapshot.timers
        ],
        "timeline": timeline,
        "reviews": own,
        "rubric": rubric_dict(rules),
        "version": snapshot.version,
    }


def rubric_dict(rules: ReviewRules) -> dict[str, Any]:
    rubric = rules.rubric
    return {
        "scale": list(rubric.scale),
        "comment_required": rubric.comment_required,
        "items": [{"id": i.id, "label": dict(i.label), "description": i.description} for i in rubric.items],
        "version": rules.version,
    }


def _review_dict(review: Review) -> dict[str, Any]:
    return {
        "reviewer_id": review.reviewer_id,
        "scores": dict(review.scores),
        "comment": review.comment,
        "at": review.at,
    }


# --- what a reviewer writes -------------------------------------------------------------------


def submit_review(
    service: CaseService,
    rules: ReviewRules,
    actor: Actor,
    case_id: str,
    *,
    scores: Any,
    comment: Any = "",
    expected_version: int | None = None,
) -> CaseSnapshot:
    """Record the reviewer's scores on the case's log (once per reviewer and case)."""
    problems = rules.rubric.problems(scores, comment)
    if problems:
        name, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidCommandError(message + more, field=name)
    text = free_text(comment or "", "comment", required=False, limit=4000)
    data = {"scores": dict(scores), "comment": text, "rubric_version": rules.version}

    def work(session: Session) -> CaseSnapshot:
        before = _writable(session, service, actor, case_id, "review", expected_version)
        if any(r.reviewer_id == actor.id for r in before.reviews):
            raise InvalidCommandError("you have already reviewed this case", field="scores")
        now = service.clock.now()
        after = _append(session, service, before, [Event("review_submitted", data)], actor, now)
        _mark(session, case_id, actor.id, reviewed_at=now)
        return after

    return _command(service, work)


def flag_case(
    service: CaseService, actor: Actor, case_id: str, *, reason: Any, expected_version: int | None = None
) -> CaseSnapshot:
    """A reviewer asks for a senior mediator's second look, with the reason."""
    text = free_text(reason, "reason", limit=4000)

    def work(session: Session) -> CaseSnapshot:
        before = _writable(session, service, actor, case_id, "flag_for_review", expected_version)
        if REVIEW_FLAG in before.flags:
            raise InvalidCommandError("the case is already flagged for a second look", field="reason")
        now = service.clock.now()
        after = _append(session, service, before, [Event("review_flagged", {"reason": text})], actor, now)
        _mark(session, case_id, actor.id, flagged_at=now)
        return after

    return _command(service, work)


def resolve_flag(
    service: CaseService,
    actor: Actor,
    case_id: str,
    *,
    decision: Any,
    note: Any,
    expected_version: int | None = None,
) -> CaseSnapshot:
    """The senior mediator's answer to a flag: upheld (the review was right; what follows is on
    the log, e.g. a reopening) or dismissed, with a note. Clears the flag."""
    if decision not in FLAG_DECISIONS:
        raise InvalidCommandError(f"decision must be one of {', '.join(FLAG_DECISIONS)}", field="decision")
    text = free_text(note, "note", limit=4000)

    def work(session: Session) -> CaseSnapshot:
        before = _writable(session, service, actor, case_id, "resolve_review_flag", expected_version)
        now = service.clock.now()
        event = Event("review_flag_resolved", {"decision": decision, "note": text})
        after = _append(session, service, before, [event], actor, now)
        session.execute(
            update(REVIEW_ASSIGNMENTS)
            .where(REVIEW_ASSIGNMENTS.c.case_id == case_id, REVIEW_ASSIGNMENTS.c.flagged_at.is_not(None))
            .where(REVIEW_ASSIGNMENTS.c.resolved_at.is_(None))
            .values(resolved_at=now)
        )
        return after

    return _command(service, work)


def _command(service: CaseService, work: Callable[[Session], CaseSnapshot]) -> CaseSnapshot:
    """Run a reviewer's or senior mediator's command in one write transaction. A request's
    Idempotency-Key and its answer are stored in that transaction too (cases/idempotency.py),
    the answer rendered there, so it shows the case as this command left it (reads made while
    it renders, such as :func:`review_case`, use the command's transaction)."""

    def run(session: Session) -> CaseSnapshot:
        def answered() -> CaseSnapshot:
            after = work(session)
            # What follows in idempotency.command is the answer's rendering.
            _ANSWERING.set(session)
            return after

        token = _ANSWERING.set(None)
        try:
            return idempotency.command(session, service.clock.now(), answered)
        finally:
            _ANSWERING.reset(token)

    return service.db.run_write(run)


def _writable(
    session: Session, service: CaseService, actor: Actor, case_id: str, action: str, expected: int | None
) -> CaseSnapshot:
    before, standing = load_case(session, case_id)
    seen = seen_with(before, standing)
    now = service.clock.now()
    read = "second_look" if action == "resolve_review_flag" else "view_for_review"
    if not service.authorizer.decide(actor=actor, action=read, case=seen, now=now).allowed:
        raise NotFoundError("case", case_id)
    if expected is not None and expected != before.version:
        raise ConflictError(case_id, before.version, expected)
    require(service.authorizer, actor=actor, action=action, case=seen, now=now)
    return before


def _mark(session: Session, case_id: str, reviewer_id: str, **values: datetime) -> None:
    session.execute(
        update(REVIEW_ASSIGNMENTS)
        .where(and_(REVIEW_ASSIGNMENTS.c.case_id == case_id, REVIEW_ASSIGNMENTS.c.reviewer_id == reviewer_id))
        .values(**values)
    )


# --- flags and the second look ----------------------------------------------------------------


@dataclass(frozen=True)
class FlagEntry:
    """A reviewer's flag and what happened to it."""

    case_id: str
    flagged_at: str
    flagged_by: str
    reason: str
    state: str
    outcome: str | None
    mediator_id: str | None
    resolution: dict[str, Any] | None
    # What the log records after the flag (reopened, ruled, ...): triggers fired since.
    since: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "flagged_at": self.flagged_at,
            "flagged_by": self.flagged_by,
            "reason": self.reason,
            "state": self.state,
            "outcome": self.outcome,
            "mediator_id": self.mediator_id,
            "resolution": self.resolution,
            "since": list(self.since),
        }


def flag_entries(events: Sequence[RecordedEvent], snapshot: CaseSnapshot) -> list[FlagEntry]:
    entries: list[FlagEntry] = []
    open_index: int | None = None
    triggers: list[list[str]] = []
    raw: list[dict[str, Any]] = []
    for event in events:
        if event.type == "review_flagged":
            raw.append({"at": event.at, "by": event.actor_id, "reason": event.data.get("reason", ""), "res": None})
            triggers.append([])
            open_index = len(raw) - 1
        elif event.type == "review_flag_resolved" and open_index is not None:
            raw[open_index]["res"] = {
                "decision": event.data["decision"],
                "note": event.data.get("note", ""),
                "by": event.actor_id,
                "at": event.at,
            }
            open_index = None
        elif event.type == "transitioned":
            for bucket in triggers:
                bucket.append(event.data["trigger"])
    for item, fired in zip(raw, triggers, strict=True):
        entries.append(
            FlagEntry(
                snapshot.id,
                item["at"],
                item["by"],
                item["reason"],
                snapshot.state,
                snapshot.outcome,
                snapshot.mediator_id,
                item["res"],
                tuple(fired),
            )
        )
    return entries


def flagged_cases(service: CaseService, actor: Actor, *, open_only: bool = False) -> list[FlagEntry]:
    """Every flag reviewers raised (open ones only with ``open_only``), newest first."""
    require_desk(service.authorizer, actor=actor, action="view_review_flags", now=service.clock.now())
    stmt = select(REVIEW_ASSIGNMENTS.c.case_id).where(REVIEW_ASSIGNMENTS.c.flagged_at.is_not(None))
    if open_only:
        stmt = stmt.where(REVIEW_ASSIGNMENTS.c.resolved_at.is_(None))
    with service.db.read() as session:
        case_ids = list(dict.fromkeys(session.execute(stmt.order_by(REVIEW_ASSIGNMENTS.c.flagged_at.desc())).scalars()))
        found: list[FlagEntry] = []
        for case_id in case_ids[:500]:
            snapshot = load_seen(session, case_id)
            entries = flag_entries(_events(session, case_id), snapshot)
            found.extend(e for e in entries if not open_only or e.resolution is None)
    return sorted(found, key=lambda e: e.flagged_at, reverse=True)


def second_look(service: CaseService, actor: Actor, case_id: str) -> dict[str, Any]:
    """A flagged case for the senior mediator: the case (unredacted: mediators are the desk's own),
    its reviews and its flags."""
    snapshot, events = _read(service, actor, case_id, "second_look")
    return {
        "case": snapshot,
        "reviews": [_review_dict(r) for r in snapshot.reviews],
        "flags": [f.to_dict() for f in flag_entries(events, snapshot)],
    }


def week_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """Monday 00:00 of ``moment``'s week in the desk's zone (the default sampling period's start)."""
    local = moment.astimezone(zone)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
