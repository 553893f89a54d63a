"""The body of a case event's webhook: the event's id, type and instant, the case's id and the
event's non-personal facts (states, clocks, amounts, ids). Texts a person wrote (a complaint's
description, a message, an offer's terms) are never sent: the receiver reads the case through
the API with its own credentials, as the policies allow.
"""

from __future__ import annotations

import json
from typing import Any

# Event data keys that carry no personal text.
SHOWN_KEYS = frozenset(
    {
        "trigger",
        "from",
        "to",
        "state",
        "outcome",
        "awarded_amount",
        "mediator_id",
        "merchant_id",
        "category",
        "priority",
        "claim_amount",
        "currency",
        "offer_id",
        "amount",
        "party",
        "request_id",
        "timer",
        "due_at",
        "warn_at",
        "previous_due_at",
        "goal",
        "calendar",
        "by",
        "flag",
        "score",
        "evidence_ids",
        "reopen_count",
        "paused_seconds",
        "while",
    }
)


def message_id(case_id: str, seq: int) -> str:
    """The event's stable id: the same on every attempt and for every endpoint (receivers dedupe)."""
    return f"evt_{case_id}_{seq}"


def event_type(kind: str) -> str:
    return f"case.{kind}"


def body(case_id: str, merchant_id: str, event: dict[str, Any]) -> str:
    """The JSON body for one recorded event (its canonical body as stored in the log)."""
    data = {k: v for k, v in (event.get("data") or {}).items() if k in SHOWN_KEYS}
    payload = {
        "type": event_type(str(event["type"])),
        "timestamp": event["at"],
        "data": {
            "case_id": case_id,
            "merchant_id": merchant_id,
            "seq": event["seq"],
            "event": event["type"],
            "actor_role": (event.get("actor") or {}).get("role"),
            **data,
        },
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
