"""Events: what decide() returns and what the log stores, folded by evolve()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every event type the engine writes. The fold ignores none of them silently.
EVENT_TYPES = frozenset(
    {
        "filed",
        "transitioned",
        "message",
        "evidence_added",
        "evidence_submitted",
        "merchant_responded",
        "offer_proposed",
        "offer_accepted",
        "offer_rejected",
        "info_requested",
        "info_provided",
        "rated",
        "timer_started",
        "timer_warned",
        "timer_breached",
        "timer_met",
        "timer_cancelled",
        "timer_paused",
        "timer_resumed",
        "timer_rescheduled",
        "flag_raised",
        "flag_cleared",
    }
)
# Optional keys of a ``filed`` event beyond the case's facts, written by the desk's intake
# (cases/triage.py) and kept for the record (the fold reads only ``flags``):
#   classification  the category the classifier chose, its score, language and evidence
#   priority_rules  the level the priority rules chose and the rules that proposed it
#   flags           e.g. vulnerable_consumer (merchant_flagged in cases filed before merchant
#                   logs; the merchant's flag is now its log's, see workflow/merchant.py)
# Any event a command or a system decision produces may carry ``merchant_flag`` in its data:
# the standing of the merchant's log the decision relied on (workflow/merchant.py).


@dataclass(frozen=True, slots=True)
class Event:
    """A new fact about a case, not yet numbered or hashed."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as it stands in the log: numbered, stamped and chained."""

    case_id: str
    seq: int
    type: str
    at: str  # ISO-8601 UTC
    actor_id: str
    actor_role: str
    data: dict[str, Any]
    workflow_version: str
    policy_version: str
    prev_hash: str = "0" * 64
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The exact mapping whose canonical JSON is hashed (docs/audit.md)."""
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "type": self.type,
            "at": self.at,
            "actor": {"id": self.actor_id, "role": self.actor_role},
            "data": self.data,
            "workflow_version": self.workflow_version,
            "policy_version": self.policy_version,
        }
