"""The facts Cedar sees: Actor, CaseSnapshot, now and payload as Cedar entity and context JSON.

Every attribute produced here is declared in ``policies/default/schema.cedarschema``
(entity ``User``, ``Case``, ``Desk``; context type ``Context``). To give policies a new
fact, declare it there and add it here; ``tests/policies`` checks that what this
module builds conforms to the schema.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflow.facts import cedar_value, day_number
from workflow.model import Actor, CaseSnapshot, from_iso

USER = "User"
CASE = "Case"
DESK = "Desk"
ACTION = "Action"

# Cedar's Long is a signed 64-bit integer; a larger number cannot be a fact.
_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1

JsonDict = dict[str, Any]


def uid(entity_type: str, entity_id: str) -> JsonDict:
    return {"type": entity_type, "id": entity_id}


def ref(entity_type: str, entity_id: str) -> JsonDict:
    """An entity reference as an attribute value (Cedar JSON's ``__entity`` escape)."""
    return {"__entity": {"type": entity_type, "id": entity_id}}


def epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every instant in the engine must be timezone-aware")
    return int(moment.timestamp())


def _iso_seconds(text: str) -> int:
    return int(from_iso(text).timestamp())


def _is_long(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _LONG_MIN <= value <= _LONG_MAX


def user_entity(actor: Actor) -> JsonDict:
    """Principal ``User``: role, and the merchant id for merchants."""
    attrs: JsonDict = {"role": actor.role}
    if actor.merchant_id is not None:
        attrs["merchant"] = actor.merchant_id
    return {"uid": uid(USER, actor.id), "attrs": attrs, "parents": []}


def case_entity(case: CaseSnapshot, desk_id: str, only: Collection[str] | None = None) -> JsonDict:
    """Resource ``Case``. A case not yet filed (action ``file``) may have an empty id.

    ``only``: the attributes to give (None: all of them); the others are not computed, which is
    most of the work when the policies asked about read a handful (policies/cedar.py).
    """

    def wanted(name: str) -> bool:
        return only is None or name in only

    attrs: JsonDict = {
        "desk": ref(DESK, desk_id),
        "workflow": case.workflow_name,
        "state": case.state,
        "category": case.category,
        "priority": case.priority,
        "claim_amount": case.claim_amount,
        "currency": case.currency,
        "consumer": ref(USER, case.consumer_id),
        "merchant": case.merchant_id,
        "merchant_responded": case.merchant_responded,
        "awaiting": list(case.awaiting),
        "flags": list(case.flags),
        # Set while the merchant is flagged for supervision (reports/ raises and clears it).
        "merchant_flagged": "merchant_flagged" in case.flags,
        "reopen_count": case.reopen_count,
    }
    if wanted("accepted_offer") or wanted("accepted_offer_amount"):
        accepted = case.offer(case.accepted_offer_id) if case.accepted_offer_id else None
        # decide() lets only the non-proposing party accept, but the fact says so
        # explicitly so that a settle never rests on an offer its proposer accepted.
        accepted_ok = (
            accepted is not None
            and accepted.status == "accepted"
            and accepted.decided_by is not None
            and accepted.decided_by != accepted.proposed_by
        )
        attrs["accepted_offer"] = accepted_ok
        if accepted_ok and accepted is not None:
            attrs["accepted_offer_amount"] = accepted.amount
    if wanted("open_offers"):
        attrs["open_offers"] = sum(1 for o in case.offers if o.status == "open")
    evidence = case.evidence
    if wanted("evidence"):
        attrs["evidence"] = {
            "total": len(evidence),
            "submitted": sum(1 for e in evidence if e.status == "submitted"),
            "consumer": sum(1 for e in evidence if e.party == "consumer"),
            "merchant": sum(1 for e in evidence if e.party == "merchant"),
            "consumer_submitted": sum(1 for e in evidence if e.party == "consumer" and e.status == "submitted"),
            "merchant_submitted": sum(1 for e in evidence if e.party == "merchant" and e.status == "submitted"),
        }
    if wanted("new_evidence"):
        # Evidence each party added since the case entered its current state (an appeal
        # allowed only with new information).
        attrs["new_evidence"] = {
            "consumer": sum(1 for e in evidence if e.party == "consumer" and e.added_at >= case.state_since),
            "merchant": sum(1 for e in evidence if e.party == "merchant" and e.added_at >= case.state_since),
        }
    if wanted("timers"):
        attrs["timers"] = _timers(case)
    if wanted("created_at"):
        attrs["created_at"] = _iso_seconds(case.created_at) if case.created_at else 0
    if wanted("reviewers"):
        attrs["reviewers"] = [ref(USER, r) for r in case.reviewers]
    if case.mediator_id is not None:
        attrs["mediator"] = ref(USER, case.mediator_id)
    if case.closed_at and wanted("closed_at"):
        attrs["closed_at"] = _iso_seconds(case.closed_at)
    if case.outcome is not None:
        attrs["outcome"] = case.outcome
    if case.awarded_amount is not None:
        attrs["awarded_amount"] = case.awarded_amount
    if only is not None:
        attrs = {name: value for name, value in attrs.items() if name in only}
    return {"uid": uid(CASE, case_uid_id(case)), "attrs": attrs, "parents": [uid(DESK, desk_id)]}


def _timers(case: CaseSnapshot) -> JsonDict:
    """The case's timers by status, and those that warned while still counting."""
    running: list[str] = []
    paused: list[str] = []
    warned: list[str] = []
    breached: list[str] = []
    met: list[str] = []
    for timer in case.timers:
        if timer.status == "running":
            running.append(timer.name)
        elif timer.status == "paused":
            paused.append(timer.name)
        elif timer.status == "breached":
            breached.append(timer.name)
        elif timer.status == "met":
            met.append(timer.name)
        if timer.warned and timer.status in ("running", "paused"):
            warned.append(timer.name)
    return {"running": running, "paused": paused, "warned": warned, "breached": breached, "met": met}


def declared_facts(case: CaseSnapshot, fact_types: Mapping[str, str], zone: ZoneInfo, now: datetime) -> JsonDict:
    """``facts`` and ``days_since`` of a desk that declares case facts (workflow/facts.py).

    ``facts``: the case's facts as policies see them (instants in epoch seconds, dates as day
    numbers, money as a record); a fact of a type other than the desk now declares (a case
    filed under an older workflow version) is left out, which a policy sees with ``has``.
    ``days_since``: whole local days in the desk's zone from the filing, and from each date or
    instant fact, to ``now`` (Cedar has no division, so "from the 4th day" needs them counted).
    """
    values: JsonDict = {}
    today = day_number(now.astimezone(zone).date())
    days: JsonDict = {}
    if case.created_at:
        days["filed"] = today - day_number(from_iso(case.created_at).astimezone(zone).date())
    for name, value in case.facts.items():
        kind = fact_types.get(name)
        if kind is None:
            continue
        try:
            converted = cedar_value(kind, value)
        except (TypeError, ValueError):
            continue
        if kind == "instant":
            days[name] = today - day_number(datetime.fromtimestamp(converted, zone).date())
        elif kind == "date":
            days[name] = today - converted
        values[name] = converted
    return {"facts": values, "days_since": days}


def case_uid_id(case: CaseSnapshot) -> str:
    # A would-be case (action ``file``) has no id yet; Cedar needs one.
    return case.id or "(new)"


def desk_entity(desk_id: str, attributes: Mapping[str, Any], thresholds: Mapping[str, int]) -> JsonDict:
    """The ``Desk``: settings.json's attributes, and the senior thresholds as per-currency tags."""
    return {"uid": uid(DESK, desk_id), "attrs": dict(attributes), "parents": [], "tags": dict(thresholds)}


# payload key -> (fact name, expected Python type). Values of another type are
# left out: decide() refuses malformed data with a precise message, and a
# missing optional fact is what a policy checks with ``has``.
_PAYLOAD_KEYS: dict[str, tuple[str, type]] = {
    "amount": ("amount", int),
    "currency": ("currency", str),
    "decision": ("decision", str),
    "awarded_amount": ("awarded_amount", int),
    "internal": ("internal", bool),
    "party": ("party", str),
    "offer_id": ("offer_id", str),
    "score": ("score", int),
    "category": ("category", str),
}


def payload_facts(payload: Mapping[str, Any] | None, case: CaseSnapshot) -> JsonDict:
    """Context ``payload``: the command data a policy may read, typed as the schema says."""
    facts: JsonDict = {}
    if not payload:
        return facts
    for key, (name, kind) in _PAYLOAD_KEYS.items():
        value = payload.get(key)
        if value is None:
            continue
        if kind is int:
            if _is_long(value):
                facts[name] = value
        elif kind is bool:
            if isinstance(value, bool):
                facts[name] = value
        elif isinstance(value, kind):
            facts[name] = value
    mediator_id = payload.get("mediator_id")
    if isinstance(mediator_id, str) and mediator_id:
        facts["mediator"] = ref(USER, mediator_id)
    citations = payload.get("citations")
    if isinstance(citations, list):
        facts["cited"] = len(citations)
    offer_id = facts.get("offer_id")
    if offer_id is not None:
        offer = case.offer(offer_id)
        if offer is not None:
            facts["offer_amount"] = offer.amount
            facts["offer_proposed_by"] = offer.proposed_by
    return facts


def context(now: datetime, payload: Mapping[str, Any] | None, case: CaseSnapshot | None) -> JsonDict:
    return {
        "now": epoch_seconds(now),
        "payload": payload_facts(payload, case) if case is not None else {},
    }
