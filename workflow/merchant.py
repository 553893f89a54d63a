"""A merchant's supervision flag: its own log's events, their fold, and how cases see it.

The flag is a fact about the merchant, not about any one case: supervision
(reports/supervision.py) records raising and clearing it once, on the merchant's log
(cases/merchants.py), and no case changes. A case sees the flag only when someone
decides or reads it:

* :func:`seen_with` gives the case as the policies see it, with ``merchant_flagged``
  among its flags exactly while the merchant is flagged (so ``resource.flags`` and
  ``resource.merchant_flagged`` keep their meaning for every desk);
* :func:`with_standing` writes the standing a decision relied on (the merchant log's
  seq and the flag) into the decision's first event as ``merchant_flag``, and
  :func:`recorded_standing` reads it back, so replay and what-if decide again on the
  same facts.

Cases filed before merchant logs existed carry the flag through ``flag_raised`` /
``flag_cleared`` events of their own; the fold (workflow/evolve.py) still reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workflow.errors import DisputeError, ReplayError
from workflow.events import Event
from workflow.model import CaseSnapshot

MERCHANT_FLAGGED = "merchant_flagged"
# The key of a decision event's data that records the standing it relied on.
STANDING_KEY = "merchant_flag"
MERCHANT_EVENT_TYPES = frozenset({"flag_raised", "flag_cleared"})
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class MerchantStanding:
    """A merchant's flag as its log stood: the log's last seq (0: the merchant has no log)
    and whether the merchant was flagged then."""

    seq: int = 0
    flagged: bool = False

    def to_data(self) -> dict[str, Any]:
        return {"flagged": self.flagged, "seq": self.seq}


NO_LOG = MerchantStanding()


def seen_with(case: CaseSnapshot, standing: MerchantStanding) -> CaseSnapshot:
    """The case with ``merchant_flagged`` among its flags iff the merchant is flagged.

    A case's own ``merchant_flagged`` (from the per-case events of older versions) gives
    way to the merchant's log, which is the truth now. Never stored: the case's log and
    row keep the case's own flags.
    """
    own = tuple(f for f in case.flags if f != MERCHANT_FLAGGED)
    flags = (*own, MERCHANT_FLAGGED) if standing.flagged else own
    return case if flags == case.flags else replace(case, flags=flags)


def with_standing(events: Sequence[Event], standing: MerchantStanding, case: CaseSnapshot) -> list[Event]:
    """``events`` with the standing recorded in the first one, when it tells anything: the
    merchant has a log, or the case's own flags say otherwise than the log (a case of an
    older version)."""
    if not events or (standing.seq == 0 and MERCHANT_FLAGGED not in case.flags):
        return list(events)
    first = events[0]
    return [Event(first.type, {**first.data, STANDING_KEY: standing.to_data()}), *events[1:]]


def recorded_standing(data: Mapping[str, Any]) -> MerchantStanding | None:
    """The standing an event's decision relied on, if it recorded one."""
    found = data.get(STANDING_KEY)
    if not isinstance(found, Mapping):
        return None
    seq, flagged = found.get("seq"), found.get("flagged")
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(flagged, bool):
        return None
    return MerchantStanding(seq, flagged)


# --- the merchant's log ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MerchantEvent:
    """One entry of a merchant's log: numbered, stamped and chained like a case's events."""

    merchant_id: str
    seq: int
    type: str
    at: str  # ISO-8601 UTC
    actor_id: str
    actor_role: str
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The exact mapping whose canonical JSON is hashed (docs/audit.md). It names
        ``merchant_id`` where a case event names ``case_id``: neither passes for the other."""
        return {
            "merchant_id": self.merchant_id,
            "seq": self.seq,
            "type": self.type,
            "at": self.at,
            "actor": {"id": self.actor_id, "role": self.actor_role},
            "data": self.data,
        }


def merchant_event_from_doc(doc: Mapping[str, Any], *, prev_hash: str, hash_: str) -> MerchantEvent:
    return MerchantEvent(
        merchant_id=doc["merchant_id"],
        seq=doc["seq"],
        type=doc["type"],
        at=doc["at"],
        actor_id=doc["actor"]["id"],
        actor_role=doc["actor"]["role"],
        data=dict(doc["data"]),
        prev_hash=prev_hash,
        hash=hash_,
    )


class MerchantReplayError(ReplayError):
    """A merchant's events cannot be folded (the merchant's log, where a case's log names a case)."""

    def __init__(self, merchant_id: str, seq: int, message: str) -> None:
        DisputeError.__init__(self, f"merchant {merchant_id} seq {seq}: {message}")
        self.merchant_id = merchant_id
        self.seq = seq


@dataclass(frozen=True, slots=True)
class MerchantState:
    """A merchant's log folded: where it stands and whether the merchant is flagged."""

    merchant_id: str
    seq: int = 0
    head_hash: str = GENESIS
    flagged: bool = False

    @property
    def standing(self) -> MerchantStanding:
        return MerchantStanding(self.seq, self.flagged)


def evolve_merchant(state: MerchantState, event: MerchantEvent) -> MerchantState:
    """Apply one merchant event; raise :class:`MerchantReplayError` on one that cannot follow."""
    if event.merchant_id != state.merchant_id:
        raise MerchantReplayError(
            event.merchant_id, event.seq, f"event belongs to another merchant than {state.merchant_id}"
        )
    if event.seq != state.seq + 1:
        raise MerchantReplayError(event.merchant_id, event.seq, f"expected seq {state.seq + 1}")
    if event.type not in MERCHANT_EVENT_TYPES:
        raise MerchantReplayError(event.merchant_id, event.seq, f"unknown merchant event type {event.type!r}")
    if event.data.get("flag") != MERCHANT_FLAGGED:
        raise MerchantReplayError(event.merchant_id, event.seq, f"{event.type} names no {MERCHANT_FLAGGED} flag")
    return MerchantState(event.merchant_id, event.seq, event.hash or state.head_hash, event.type == "flag_raised")


def fold_merchant(merchant_id: str, events: Iterable[MerchantEvent]) -> MerchantState:
    state = MerchantState(merchant_id)
    for event in events:
        state = evolve_merchant(state, event)
    return state
