"""Small builders for pure-layer tests."""

from __future__ import annotations

from typing import Any

from workflow.model import CaseSnapshot


def snapshot(**overrides: Any) -> CaseSnapshot:
    values: dict[str, Any] = {
        "id": "DSP-TEST",
        "workflow_name": "consumer_dispute",
        "workflow_version": "v",
        "state": "filed",
        "version": 1,
        "consumer_id": "c-1",
        "merchant_id": "m-1",
        "category": "product_quality",
        "subject": "Broken kettle",
        "description": "It stopped heating after two days.",
        "order_ref": "ORD-1",
        "claim_amount": 29900,
        "currency": "CNY",
        "desired_outcome": "refund",
        "created_at": "2026-03-02T02:00:00.000000Z",
        "updated_at": "2026-03-02T02:00:00.000000Z",
    }
    values.update(overrides)
    return CaseSnapshot(**values)


# The default workflow's transition table exactly as the product states it (docs/operators.md,
# "The default workflow"), written out by hand so that tests compare the engine against the
# product's rules, not against itself.
DESIGN_TABLE: dict[tuple[str, str], str] = {
    ("filed", "assign"): "assigned",
    ("filed", "escalate"): "escalated",
    ("filed", "withdraw"): "closed",
    ("filed", "reject"): "closed",
    ("assigned", "start_mediation"): "mediating",
    ("assigned", "accept_claim"): "settled",
    ("assigned", "escalate"): "escalated",
    ("assigned", "decide_for_consumer"): "settled",
    ("assigned", "withdraw"): "closed",
    ("mediating", "accept_claim"): "settled",
    ("mediating", "settle"): "settled",
    ("mediating", "escalate"): "escalated",
    ("mediating", "withdraw"): "closed",
    ("settled", "close"): "closed",
    ("escalated", "rule"): "settled",
    ("escalated", "withdraw"): "closed",
    ("escalated", "reject"): "closed",
    ("closed", "reopen"): "mediating",
}
