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
        # Personal data (cases/erasure.py, docs/privacy.md): no personal data in their bodies.
        "personal_data_erased",
        "erasure_deferred",
        "legal_hold_set",
        "legal_hold_released",
        # Third-party review (reports/review.py): a case dealt to reviewers by the desk's
        # sampling, a reviewer's scores, a reviewer's flag for a senior mediator's second look,
        # and the senior mediator's answer to that flag.
        "review_assigned",
        "review_submitted",
        "review_flagged",
        "review_flag_resolved",
        "category_corrected",
    }
)
# The flag a legal hold raises on the case while it lasts: retention and erasure wait for its release.
LEGAL_HOLD = "legal_hold"
# The case flag a reviewer's flag raises (and the senior mediator's resolution clears).
REVIEW_FLAG = "review_flagged"
# Optional keys of a ``filed`` event beyond the case's facts, written by the desk's intake
# (cases/triage.py) and kept for the record (the fold reads only ``flags``):
#   classification  the category the classifier chose, its score, language and evidence
#   priority_rules  the level the priority rules chose and the rules that proposed it
#   classification  (learned triage) also the model and its version, the top three categories
#                   with probabilities in basis points, the margin, needs_triage; every word the
#                   rules took from the complaint is inside its one field ``rule_evidence``
#   flags           e.g. vulnerable_consumer, needs_triage (merchant_flagged in cases filed before merchant
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
