"""Tampering as someone with SQL access would do it, each returning the damage verification must report.

Every function changes one case (or one merchant's log, ``MERCHANT_CORRUPTIONS``) inside
the caller's transaction (which the test rolls back) and returns the expected (case or
merchant, first bad seq, kind).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from audit.replay import replay
from cases.projection import case_values
from cases.registry import WorkflowRegistry
from store.tables import CASES, EVENTS, MERCHANT_EVENTS, MERCHANTS
from workflow.chain import canonical_bytes, link, seal
from workflow.events import RecordedEvent
from workflow.merchant import MERCHANT_FLAGGED, MerchantEvent
from workflow.model import from_iso


@dataclass(frozen=True)
class Expected:
    case_id: str  # or the merchant's id, for a merchant's log
    seq: int
    kind: str
    what: str


@dataclass
class Target:
    """What a corruption may touch: a case, its length, and the seq its latest checkpoint saw."""

    case_id: str
    version: int
    checkpointed: int


Corruption = Callable[[Session, WorkflowRegistry, Target, random.Random], Expected]


def _row(session: Session, case_id: str, seq: int) -> Any:
    return session.execute(select(EVENTS).where(EVENTS.c.case_id == case_id, EVENTS.c.seq == seq)).one()


def _where(case_id: str, seq: int) -> Any:
    return (EVENTS.c.case_id == case_id) & (EVENTS.c.seq == seq)


def _other_char(ch: str, rng: random.Random) -> str:
    pool = string.digits if ch.isdigit() else string.ascii_letters + string.punctuation
    return rng.choice([c for c in pool if c != ch])


def _other_hex(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    return value[:i] + rng.choice([c for c in "0123456789abcdef" if c != value[i]]) + value[i + 1 :]


def forged_row(session: Session, case_id: str, seq: int, prev_hash: str, *, valid: bool = True) -> dict[str, Any]:
    """A comment event that looks real: canonical body, stamped like its neighbours, and
    (when ``valid``) a hash that links it to ``prev_hash``."""
    template = json.loads(_row(session, case_id, 1).body)
    sealed, body = seal(
        RecordedEvent(
            case_id=case_id,
            seq=seq,
            type="message",
            at=template["at"],
            actor_id="c-1",
            actor_role="consumer",
            data={"message_id": f"msg{seq}", "body": "I never said that", "internal": False, "party": "consumer"},
            workflow_version=template["workflow_version"],
            policy_version=template["policy_version"],
            prev_hash=prev_hash,
        )
    )
    return {
        "case_id": case_id,
        "seq": seq,
        "type": "message",
        "at": from_iso(template["at"]),
        "actor_id": "c-1",
        "actor_role": "consumer",
        "body": body.decode("utf-8"),
        "prev_hash": prev_hash,
        "hash": sealed.hash if valid else "f" * 64,
    }


def _shift(session: Session, case_id: str, from_seq: int, by: int) -> None:
    """Renumber seq >= from_seq by ``by`` without tripping the unique (case_id, seq) index."""
    rows = (EVENTS.c.case_id == case_id) & (EVENTS.c.seq >= from_seq)
    session.execute(update(EVENTS).where(rows).values(seq=-(EVENTS.c.seq + by)))
    session.execute(update(EVENTS).where((EVENTS.c.case_id == case_id) & (EVENTS.c.seq < 0)).values(seq=-EVENTS.c.seq))


# --- the corruptions ------------------------------------------------------------------------


def flip_body(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version)
    body: str = _row(session, t.case_id, seq).body
    i = rng.randrange(len(body))
    changed = body[:i] + _other_char(body[i], rng) + body[i + 1 :]
    session.execute(update(EVENTS).where(_where(t.case_id, seq)).values(body=changed))
    return Expected(t.case_id, seq, "changed", f"body char {i} of seq {seq}")


def flip_hash(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version)
    column = rng.choice(["hash", "prev_hash"])
    value = getattr(_row(session, t.case_id, seq), column)
    session.execute(update(EVENTS).where(_where(t.case_id, seq)).values({column: _other_hex(value, rng)}))
    return Expected(t.case_id, seq, "changed", f"{column} of seq {seq}")


def delete_row(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version)
    session.execute(delete(EVENTS).where(_where(t.case_id, seq)))
    # Deleting the last event is a tail cut of one.
    return Expected(t.case_id, seq, "truncated" if seq == t.version else "deleted", f"delete seq {seq}")


def delete_and_renumber(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version - 1)
    session.execute(delete(EVENTS).where(_where(t.case_id, seq)))
    _shift(session, t.case_id, seq + 1, -1)
    return Expected(t.case_id, seq, "deleted", f"delete seq {seq}, renumber the rest")


def append_forged(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    head = _row(session, t.case_id, t.version).hash
    style = rng.choice(["valid", "bad-hash", "gap"])
    seq = t.version + (3 if style == "gap" else 1)
    session.execute(insert(EVENTS).values(**forged_row(session, t.case_id, seq, head, valid=style != "bad-hash")))
    return Expected(t.case_id, seq, "inserted", f"append a forged seq {seq} ({style})")


def insert_forged(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    seq = rng.randint(2, t.version)
    prev = _row(session, t.case_id, seq - 1).hash
    valid = rng.random() < 0.5
    _shift(session, t.case_id, seq, +1)
    session.execute(insert(EVENTS).values(**forged_row(session, t.case_id, seq, prev, valid=valid)))
    return Expected(t.case_id, seq, "inserted", f"insert a forged seq {seq} ({'valid' if valid else 'bad'} hash)")


def swap_rows(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    a, b = sorted(rng.sample(range(1, t.version + 1), 2))
    if rng.random() < 0.5:
        session.execute(update(EVENTS).where(_where(t.case_id, a)).values(seq=-1))
        session.execute(update(EVENTS).where(_where(t.case_id, b)).values(seq=a))
        session.execute(update(EVENTS).where(_where(t.case_id, -1)).values(seq=b))
        what = f"swap rows {a} and {b}"
    else:
        body_a, body_b = _row(session, t.case_id, a).body, _row(session, t.case_id, b).body
        session.execute(update(EVENTS).where(_where(t.case_id, a)).values(body=body_b))
        session.execute(update(EVENTS).where(_where(t.case_id, b)).values(body=body_a))
        what = f"swap bodies of {a} and {b}"
    return Expected(t.case_id, a, "reordered", what)


def drop_tail(session: Session, registry: WorkflowRegistry, t: Target, rng: random.Random) -> Expected:
    """Cut the log back to before what the latest checkpoint saw; half the time also
    rewrite the case row to match, which only the checkpoint can then reveal."""
    keep = rng.randint(1, t.checkpointed - 1)
    session.execute(delete(EVENTS).where((EVENTS.c.case_id == t.case_id) & (EVENTS.c.seq > keep)))
    hidden = rng.random() < 0.5
    if hidden:
        snapshot = replay(session, registry, t.case_id, seq=keep).snapshot
        session.execute(update(CASES).where(CASES.c.id == t.case_id).values(**case_values(snapshot)))
    return Expected(t.case_id, keep + 1, "truncated", f"drop seq > {keep}{' and fix the case row' if hidden else ''}")


CORRUPTIONS: dict[str, tuple[Corruption, Callable[[Target], bool]]] = {
    "flip_body": (flip_body, lambda t: True),
    "flip_hash": (flip_hash, lambda t: True),
    "delete_row": (delete_row, lambda t: True),
    "delete_and_renumber": (delete_and_renumber, lambda t: t.version >= 2),
    "append_forged": (append_forged, lambda t: True),
    "insert_forged": (insert_forged, lambda t: t.version >= 2),
    "swap_rows": (swap_rows, lambda t: t.version >= 2),
    "drop_tail": (drop_tail, lambda t: t.checkpointed >= 2),
}


# --- merchants' logs ---------------------------------------------------------------------------
#
# The same tampering on a merchant's log (cases/merchants.py), which verification must
# report naming the merchant and the first bad seq.


@dataclass
class MerchantTarget:
    """A merchant's log, its length, and the seq its latest checkpoint saw."""

    merchant_id: str
    version: int
    checkpointed: int


MerchantCorruption = Callable[[Session, MerchantTarget, random.Random], Expected]


def _merchant_row(session: Session, merchant_id: str, seq: int) -> Any:
    return session.execute(
        select(MERCHANT_EVENTS).where(MERCHANT_EVENTS.c.merchant_id == merchant_id, MERCHANT_EVENTS.c.seq == seq)
    ).one()


def _merchant_where(merchant_id: str, seq: int) -> Any:
    return (MERCHANT_EVENTS.c.merchant_id == merchant_id) & (MERCHANT_EVENTS.c.seq == seq)


def _merchant_shift(session: Session, merchant_id: str, from_seq: int, by: int) -> None:
    rows = (MERCHANT_EVENTS.c.merchant_id == merchant_id) & (MERCHANT_EVENTS.c.seq >= from_seq)
    session.execute(update(MERCHANT_EVENTS).where(rows).values(seq=-(MERCHANT_EVENTS.c.seq + by)))
    session.execute(
        update(MERCHANT_EVENTS)
        .where((MERCHANT_EVENTS.c.merchant_id == merchant_id) & (MERCHANT_EVENTS.c.seq < 0))
        .values(seq=-MERCHANT_EVENTS.c.seq)
    )


def forged_merchant_row(session: Session, merchant_id: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """A flag lifted that supervision never lifted: canonical body, stamped like the first
    event, and a hash that links it to ``prev_hash``."""
    first = json.loads(_merchant_row(session, merchant_id, 1).body)
    event = MerchantEvent(
        merchant_id,
        seq,
        "flag_cleared",
        first["at"],
        "system",
        "system",
        {"flag": MERCHANT_FLAGGED, "flag_id": None},
        prev_hash,
    )
    body = canonical_bytes(event.body())
    return {
        "merchant_id": merchant_id,
        "seq": seq,
        "type": event.type,
        "at": from_iso(event.at),
        "actor_id": "system",
        "actor_role": "system",
        "body": body.decode("utf-8"),
        "prev_hash": prev_hash,
        "hash": link(prev_hash, body),
    }


def m_flip_body(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    """One character of the event's facts (its ``data``), not of its seq or owner."""
    seq = rng.randint(1, t.version)
    body: str = _merchant_row(session, t.merchant_id, seq).body
    start = body.index('"data":{') + len('"data":{')
    i = rng.randrange(start, body.index("}", start))
    changed = body[:i] + _other_char(body[i], rng) + body[i + 1 :]
    session.execute(update(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, seq)).values(body=changed))
    return Expected(t.merchant_id, seq, "changed", f"body char {i} of seq {seq}")


def m_flip_hash(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version)
    column = rng.choice(["hash", "prev_hash"])
    value = getattr(_merchant_row(session, t.merchant_id, seq), column)
    session.execute(
        update(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, seq)).values({column: _other_hex(value, rng)})
    )
    return Expected(t.merchant_id, seq, "changed", f"{column} of seq {seq}")


def m_delete_row(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version)
    session.execute(delete(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, seq)))
    return Expected(t.merchant_id, seq, "truncated" if seq == t.version else "deleted", f"delete seq {seq}")


def m_delete_and_renumber(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    seq = rng.randint(1, t.version - 1)
    session.execute(delete(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, seq)))
    _merchant_shift(session, t.merchant_id, seq + 1, -1)
    return Expected(t.merchant_id, seq, "deleted", f"delete seq {seq}, renumber the rest")


def m_append_forged(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    head = _merchant_row(session, t.merchant_id, t.version).hash
    seq = t.version + 1
    session.execute(insert(MERCHANT_EVENTS).values(**forged_merchant_row(session, t.merchant_id, seq, head)))
    return Expected(t.merchant_id, seq, "inserted", f"append a forged seq {seq}")


def m_insert_forged(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    seq = rng.randint(2, t.version)
    prev = _merchant_row(session, t.merchant_id, seq - 1).hash
    _merchant_shift(session, t.merchant_id, seq, +1)
    session.execute(insert(MERCHANT_EVENTS).values(**forged_merchant_row(session, t.merchant_id, seq, prev)))
    return Expected(t.merchant_id, seq, "inserted", f"insert a forged seq {seq}")


def m_swap_rows(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    a, b = sorted(rng.sample(range(1, t.version + 1), 2))
    session.execute(update(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, a)).values(seq=-1))
    session.execute(update(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, b)).values(seq=a))
    session.execute(update(MERCHANT_EVENTS).where(_merchant_where(t.merchant_id, -1)).values(seq=b))
    return Expected(t.merchant_id, a, "reordered", f"swap rows {a} and {b}")


def m_drop_tail(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    """Cut the log back to before what the latest checkpoint saw and fix the merchant row to
    match: the chain then holds, and only the checkpoint reveals the cut."""
    keep = rng.randint(1, t.checkpointed - 1)
    session.execute(
        delete(MERCHANT_EVENTS).where((MERCHANT_EVENTS.c.merchant_id == t.merchant_id) & (MERCHANT_EVENTS.c.seq > keep))
    )
    last = _merchant_row(session, t.merchant_id, keep)
    session.execute(
        update(MERCHANTS)
        .where(MERCHANTS.c.merchant_id == t.merchant_id)
        .values(seq=keep, head_hash=last.hash, flagged=last.type == "flag_raised")
    )
    return Expected(t.merchant_id, keep + 1, "truncated", f"drop seq > {keep} and fix the merchant row")


def m_flip_flagged(session: Session, t: MerchantTarget, rng: random.Random) -> Expected:
    """The merchant row says the opposite of its log: what every command's policies read."""
    session.execute(
        update(MERCHANTS).where(MERCHANTS.c.merchant_id == t.merchant_id).values(flagged=~MERCHANTS.c.flagged)
    )
    return Expected(t.merchant_id, t.version, "projection", "flip the merchant row's flag")


MERCHANT_CORRUPTIONS: dict[str, tuple[MerchantCorruption, Callable[[MerchantTarget], bool]]] = {
    "flip_body": (m_flip_body, lambda t: True),
    "flip_hash": (m_flip_hash, lambda t: True),
    "delete_row": (m_delete_row, lambda t: True),
    "delete_and_renumber": (m_delete_and_renumber, lambda t: t.version >= 2),
    "append_forged": (m_append_forged, lambda t: True),
    "insert_forged": (m_insert_forged, lambda t: t.version >= 2),
    "swap_rows": (m_swap_rows, lambda t: t.version >= 2),
    "drop_tail": (m_drop_tail, lambda t: t.checkpointed >= 2),
    "flip_flagged": (m_flip_flagged, lambda t: True),
}
