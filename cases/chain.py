"""The hash chain: canonical event bytes and how each hash links to the previous one.

hash(event) = sha256( bytes.fromhex(prev_hash) || RFC 8785 canonical JSON of body )
with prev_hash of a case's first event = 64 zeros. docs/audit.md states it for outsiders.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from workflow.events import RecordedEvent

GENESIS_HASH = "0" * 64


def canonical_bytes(body: Any) -> bytes:
    return rfc8785.dumps(body)


def link(prev_hash: str, body_bytes: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body_bytes).hexdigest()


def seal(event: RecordedEvent) -> tuple[RecordedEvent, bytes]:
    """Return the event with its hash filled in, and the exact bytes that were hashed."""
    body = canonical_bytes(event.body())
    digest = link(event.prev_hash, body)
    return (
        RecordedEvent(
            case_id=event.case_id,
            seq=event.seq,
            type=event.type,
            at=event.at,
            actor_id=event.actor_id,
            actor_role=event.actor_role,
            data=event.data,
            workflow_version=event.workflow_version,
            policy_version=event.policy_version,
            prev_hash=event.prev_hash,
            hash=digest,
        ),
        body,
    )


def event_from_body(body: str | bytes, *, prev_hash: str, hash_: str) -> RecordedEvent:
    """Rebuild a recorded event from its stored canonical body."""
    return event_from_doc(json.loads(body), prev_hash=prev_hash, hash_=hash_)


def event_from_doc(doc: dict[str, Any], *, prev_hash: str, hash_: str) -> RecordedEvent:
    """The recorded event of an already parsed body."""
    return RecordedEvent(
        case_id=doc["case_id"],
        seq=doc["seq"],
        type=doc["type"],
        at=doc["at"],
        actor_id=doc["actor"]["id"],
        actor_role=doc["actor"]["role"],
        data=doc["data"],
        workflow_version=doc["workflow_version"],
        policy_version=doc["policy_version"],
        prev_hash=prev_hash,
        hash=hash_,
    )
