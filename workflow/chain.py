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


_MAX_SAFE_INTEGER = 2**53 - 1
_DUMPS = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def canonical_bytes(body: Any) -> bytes:
    """RFC 8785 canonical JSON of ``body``.

    Every event is sealed through here, and ``rfc8785`` is pure Python, so documents
    made only of what events hold (ASCII keys, strings, safe integers, booleans, null)
    go through the C encoder: for them RFC 8785 and sorted, compact, non-ASCII-
    preserving ``json`` output are the same bytes (keys sort alike when ASCII, and
    both escape exactly ``"``, ``\\`` and control characters, in the same forms).
    Anything else (floats, non-ASCII keys, huge integers) takes ``rfc8785``.
    tests/cases/test_chain.py checks the two agree on generated documents.
    """
    if _plain(body):
        try:
            return _DUMPS(body).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 refuse it in its own words
    return rfc8785.dumps(body)


def _plain(value: Any) -> bool:
    if isinstance(value, str) or value is None or value is True or value is False:
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


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
