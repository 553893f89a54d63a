"""evolve(): the pure fold from recorded events to a case snapshot.

Replay is ``functools.reduce(evolve, events, None)``; the stored projection is
built by the very same function, which is why the two can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from workflow.definition import WorkflowDefinition
from workflow.errors import ReplayError
from workflow.events import LEGAL_HOLD, REVIEW_FLAG, RecordedEvent
from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, Review, TimerState

_Item = TypeVar("_Item", Evidence, InfoRequest, Offer, TimerState)


def evolve(definition: WorkflowDefinition, snapshot: CaseSnapshot | None, event: RecordedEvent) -> CaseSnapshot:
    """Apply one recorded event. The first event of a case must be ``filed``."""
    if snapshot is None:
        if event.type != "filed" or event.seq != 1:
            raise ReplayError(event.case_id, event.seq, "a case's history must start with 'filed' at seq 1")
        return _filed(event)
    if event.case_id != snapshot.id:
        raise ReplayError(event.case_id, event.seq, f"event belongs to another case than {snapshot.id}")
    if event.seq != snapshot.version + 1:
        raise ReplayError(event.case_id, event.seq, f"expected seq {snapshot.version + 1}")
    handler = _HANDLERS.get(event.type)
    if handler is None:
        raise ReplayError(event.case_id, event.seq, f"unknown event type {event.type!r}")
    updated = handler(definition, snapshot, event)
    return replace(
        updated,
        version=event.seq,
        updated_at=event.at,
        head_hash=event.hash or updated.head_hash,
        policy_version=event.policy_version or updated.policy_version,
    )


def fold(
    definition: WorkflowDefinition, events: Iterable[RecordedEvent], snapshot: CaseSnapshot | None = None
) -> CaseSnapshot | None:
    for event in events:
        snapshot = evolve(definition, snapshot, event)
    return snapshot


def _filed(event: RecordedEvent) -> CaseSnapshot:
    d = event.data
    return CaseSnapshot(
        id=event.case_id,
        workflow_name=d["workflow_name"],
        workflow_version=event.workflow_version,
        policy_version=event.policy_version,
        state=d["state"],
        version=1,
        consumer_id=d["consumer_id"],
        merchant_id=d["merchant_id"],
        category=d["category"],
        subject=d["subject"],
        description=d["description"],
        order_ref=d["order_ref"],
        claim_amount=d["claim_amount"],
        currency=d["currency"],
        desired_outcome=d["desired_outcome"],
        priority=d.get("priority", "normal"),
        flags=tuple(d.get("flags", ())),
        facts=dict(d.get("facts", {})),
        related=dict(d.get("related", {})),
        state_since=event.at,
        created_at=event.at,
        updated_at=event.at,
        head_hash=event.hash or "0" * 64,
    )


Handler = Callable[[WorkflowDefinition, CaseSnapshot, RecordedEvent], CaseSnapshot]


def _transitioned(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    dest = d["to"]
    changes: dict[str, object] = {"state": dest}
    if "mediator_id" in d:
        changes["mediator_id"] = d["mediator_id"]
    if "outcome" in d:
        changes["outcome"] = d["outcome"]
    if "awarded_amount" in d:
        changes["awarded_amount"] = d["awarded_amount"]
    if "reopen_count" in d:
        changes["reopen_count"] = d["reopen_count"]
        # A reopened case is open again: its old outcome no longer stands.
        changes["outcome"] = None
        changes["awarded_amount"] = None
    final = definition.state(dest).final
    changes["closed_at"] = e.at if final else None
    if dest != s.state:
        changes["state_since"] = e.at
        # Offers belong to the state they were made in; leaving it expires them.
        changes["offers"] = tuple(
            replace(o, status="expired", decided_at=e.at) if o.status == "open" else o for o in s.offers
        )
        changes["accepted_offer_id"] = None
    return replace(s, **changes)  # type: ignore[arg-type]


def _message(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return replace(s, message_count=s.message_count + 1)


def _evidence_added(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    item = Evidence(
        evidence_id=d["evidence_id"],
        party=d["party"],
        added_by=e.actor_id,
        filename=d["filename"],
        media_type=d["media_type"],
        size=d["size"],
        sha256=d["sha256"],
        description=d.get("description", ""),
        status="draft",
        added_at=e.at,
    )
    return replace(s, evidence=(*s.evidence, item))


def _evidence_submitted(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    ids = set(e.data["evidence_ids"])
    return replace(s, evidence=_replace_by_id(s.evidence, "evidence_id", ids, status="submitted"))


def _merchant_responded(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return replace(s, merchant_responded=True)


def _offer_proposed(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    offer = Offer(
        offer_id=d["offer_id"],
        amount=d["amount"],
        currency=d["currency"],
        terms=d.get("terms", ""),
        proposed_by=d["party"],
        proposer_id=e.actor_id,
        created_at=e.at,
    )
    return replace(s, offers=(*s.offers, offer))


def _offer_decided(status: str) -> Handler:
    def handler(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
        offer_id = e.data["offer_id"]
        offers = _replace_by_id(
            s.offers, "offer_id", {offer_id}, status=status, decided_by=e.data["party"], decided_at=e.at
        )
        accepted = offer_id if status == "accepted" else s.accepted_offer_id
        return replace(s, offers=offers, accepted_offer_id=accepted)

    return handler


def _info_requested(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    request = InfoRequest(
        request_id=d["request_id"], party=d["party"], question=d["question"], requested_by=e.actor_id, requested_at=e.at
    )
    return replace(s, info_requests=(*s.info_requests, request))


def _info_provided(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    return replace(
        s,
        info_requests=_replace_by_id(
            s.info_requests, "request_id", {d["request_id"]}, status="answered", answer=d["answer"], answered_at=e.at
        ),
    )


def _category_corrected(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return replace(s, category=e.data["to"], flags=tuple(f for f in s.flags if f != "needs_triage"))


def _rated(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    return replace(
        s, ratings=(*s.ratings, Rating(party=d["party"], score=d["score"], comment=d.get("comment", ""), at=e.at))
    )


def _replace_by_id(items: tuple[_Item, ...], key: str, ids: set[str], **changes: object) -> tuple[_Item, ...]:
    """``items`` with those whose ``key`` is in ``ids`` changed.

    Searched from the newest item, which is nearly always the one meant (the offer just
    answered, the request just asked, the clock just started), stopping once every id
    is found; the rest is copied in C. A case with thousands of offers folds each
    decision without a Python-level pass over every older offer (that pass made a long
    case's replay quadratic, B4). Only the newest item of an id is changed: ids are
    unique, except a clock's name, whose newest entry is the live one.
    """
    result = list(items)
    remaining = set(ids)
    for index in range(len(result) - 1, -1, -1):
        if getattr(result[index], key) in remaining:
            result[index] = replace(result[index], **changes)  # type: ignore[arg-type]
            remaining.discard(getattr(result[index], key))
            if not remaining:
                break
    return tuple(result)


def _replace_timer(s: CaseSnapshot, name: str, **changes: object) -> CaseSnapshot:
    if s.timer(name) is None:
        raise ReplayError(s.id, s.version + 1, f"no timer {name!r} to update")
    return replace(s, timers=_replace_by_id(s.timers, "name", {name}, **changes))


def _timer_started(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    # A clock may start at a fact's instant (``started_at``), not at the event.
    started = d.get("started_at", e.at)
    timer = TimerState(
        name=d["timer"], status="running", started_at=started, due_at=d["due_at"], warn_at=d.get("warn_at")
    )
    # A clock restarted in a later visit to its state replaces the old entry.
    kept = tuple(t for t in s.timers if t.name != d["timer"])
    return replace(s, timers=(*kept, timer))


def _timer_status(status: str) -> Handler:
    def handler(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
        return _replace_timer(s, e.data["timer"], status=status, ended_at=e.at)

    return handler


def _timer_warned(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return _replace_timer(s, e.data["timer"], warned=True)


def _timer_paused(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return _replace_timer(s, e.data["timer"], status="paused", paused_at=e.at)


def _timer_resumed(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    current = s.timer(d["timer"])
    paused_total = (current.paused_seconds if current else 0) + int(d.get("paused_seconds", 0))
    return _replace_timer(
        s,
        d["timer"],
        status="running",
        paused_at=None,
        paused_seconds=paused_total,
        due_at=d["due_at"],
        warn_at=d.get("warn_at"),
    )


def _timer_rescheduled(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    return _replace_timer(s, d["timer"], due_at=d["due_at"], warn_at=d.get("warn_at"))


def _flag_raised(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    flag = e.data["flag"]
    return s if flag in s.flags else replace(s, flags=(*s.flags, flag))


def _flag_cleared(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    """A flag raised from outside the case (e.g. ``merchant_flagged``) that no longer holds."""
    flag = e.data["flag"]
    return replace(s, flags=tuple(f for f in s.flags if f != flag)) if flag in s.flags else s


def _unchanged(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    """An event recorded for the audit trail that changes nothing the fold holds: an erasure
    (the markers stay; their values are gone) or an erasure deferred."""
    return s


def _legal_hold_set(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return s if LEGAL_HOLD in s.flags else replace(s, flags=(*s.flags, LEGAL_HOLD))


def _legal_hold_released(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return replace(s, flags=tuple(f for f in s.flags if f != LEGAL_HOLD))


def _review_assigned(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    added = tuple(r for r in e.data["reviewers"] if r not in s.reviewers)
    return replace(s, reviewers=(*s.reviewers, *added))


def _review_submitted(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    d = e.data
    review = Review(
        reviewer_id=e.actor_id,
        scores=dict(d["scores"]),
        comment=d.get("comment", ""),
        at=e.at,
        rubric_version=d.get("rubric_version", ""),
    )
    return replace(s, reviews=(*s.reviews, review))


def _review_flagged(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return s if REVIEW_FLAG in s.flags else replace(s, flags=(*s.flags, REVIEW_FLAG))


def _review_flag_resolved(definition: WorkflowDefinition, s: CaseSnapshot, e: RecordedEvent) -> CaseSnapshot:
    return replace(s, flags=tuple(f for f in s.flags if f != REVIEW_FLAG))


_HANDLERS: dict[str, Handler] = {
    "transitioned": _transitioned,
    "message": _message,
    "evidence_added": _evidence_added,
    "evidence_submitted": _evidence_submitted,
    "merchant_responded": _merchant_responded,
    "offer_proposed": _offer_proposed,
    "offer_accepted": _offer_decided("accepted"),
    "offer_rejected": _offer_decided("rejected"),
    "info_requested": _info_requested,
    "info_provided": _info_provided,
    "rated": _rated,
    "category_corrected": _category_corrected,
    "timer_started": _timer_started,
    "timer_warned": _timer_warned,
    "timer_breached": _timer_status("breached"),
    "timer_met": _timer_status("met"),
    "timer_cancelled": _timer_status("cancelled"),
    "timer_paused": _timer_paused,
    "timer_resumed": _timer_resumed,
    "timer_rescheduled": _timer_rescheduled,
    "flag_raised": _flag_raised,
    "flag_cleared": _flag_cleared,
    "personal_data_erased": _unchanged,
    "erasure_deferred": _unchanged,
    "legal_hold_set": _legal_hold_set,
    "legal_hold_released": _legal_hold_released,
    "review_assigned": _review_assigned,
    "review_submitted": _review_submitted,
    "review_flagged": _review_flagged,
    "review_flag_resolved": _review_flag_resolved,
}
