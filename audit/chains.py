"""One log checked on its own: its hash chain walked from genesis, its events replayed against
its projection, and the first damage named (a case's log and a merchant's log alike)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from cases.projection import case_columns
from cases.registry import WorkflowRegistry
from store.codec import snapshot_from_json
from store.db import Database
from store.tables import CASES, EVENTS
from workflow.chain import GENESIS_HASH, canonical_bytes, event_from_doc
from workflow.errors import NotFoundError, ReplayError
from workflow.evolve import evolve
from workflow.merchant import (
    MerchantReplayError,
    MerchantState,
    evolve_merchant,
    merchant_event_from_doc,
    recorded_standing,
)
from workflow.model import CaseSnapshot, from_iso

EventTuple = tuple[int, int, str, str, str, str, str, str, datetime]


"""One stored event as verification reads it: id, seq, body, prev_hash, hash, type, actor_id, actor_role, at."""


# The case row's columns that queries read without the snapshot (state, parties, mediator,
# flags, breaching, dates...): a wrong one shows a case to the wrong people or hides it
# from a list, so each is compared with what replaying the log gives.
DERIVED_COLUMNS = tuple(c for c in CASES.c if c.name not in ("pk", "id", "version", "head_hash", "snapshot"))


CaseRowTuple = tuple[Any, ...]


"""The projection as verification reads it: version, head_hash, snapshot, then the
DERIVED_COLUMNS in their order."""


# Those columns in that order; every reader of a CaseRowTuple selects them.
CASE_ROW_COLUMNS = (CASES.c.version, CASES.c.head_hash, CASES.c.snapshot, *DERIVED_COLUMNS)


@dataclass(frozen=True)
class Damage:
    """One finding: the case, the first bad seq, the kind and a human explanation."""

    case_id: str
    seq: int
    kind: str  # changed, deleted, inserted, reordered, truncated, projection
    detail: str

    def __str__(self) -> str:
        return f"case {self.case_id} seq {self.seq}: {self.kind}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class MerchantDamage:
    """One finding in a merchant's log: the merchant, the first bad seq, the kind, an explanation.
    The kinds are the cases' (see :class:`Damage`)."""

    merchant_id: str
    seq: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"merchant {self.merchant_id} seq {self.seq}: {self.kind}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"merchant_id": self.merchant_id, "seq": self.seq, "kind": self.kind, "detail": self.detail}


# The columns a chain check reads, in the order check_case_rows unpacks them.
EVENT_COLUMNS = (
    EVENTS.c.id,
    EVENTS.c.seq,
    EVENTS.c.body,
    EVENTS.c.prev_hash,
    EVENTS.c.hash,
    EVENTS.c.type,
    EVENTS.c.actor_id,
    EVENTS.c.actor_role,
    EVENTS.c.at,
)


def event_rows(session: Session, case_id: str) -> list[EventTuple]:
    result = session.execute(select(*EVENT_COLUMNS).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)).all()
    return [tuple(r) for r in result]


def verify_case(session: Session, registry: WorkflowRegistry, case_id: str) -> list[Damage]:
    """Walk one case's chain and replay it against its projection. Empty list = intact."""
    rows = event_rows(session, case_id)
    case_row = session.execute(select(*CASE_ROW_COLUMNS).where(CASES.c.id == case_id)).first()
    damage = check_case_rows(session, registry, case_id, rows, tuple(case_row) if case_row is not None else None)
    return [damage] if damage is not None else []


Finding = tuple[int, str, str]
"""A damage found in one log: the first bad seq, the kind, an explanation."""
# One step of a log's fold, given an event's parsed body and its stored hashes: the damage that
# step shows (kind, detail), or None.
ReplayStep = Callable[[dict[str, Any], str, str], tuple[str, str] | None]


def walk_log(
    owner: str,
    rows: Sequence[EventTuple],
    version: int,
    head_hash: str,
    *,
    key: str,
    noun: str,
    step: ReplayStep | None = None,
) -> Finding | None:
    """The first damage in one log's stored events (sorted by seq), a case's or a merchant's:
    the chain walked from genesis, each body naming its log (``key``: ``case_id`` or
    ``merchant_id``, the owner a ``noun``) and its seq, its indexed columns, and, with ``step``,
    each event folded as it is reached; then the log's length and last hash against its
    projection's ``version`` and ``head_hash``.

    At the first event that does not link, the surrounding rows decide what happened to it
    (see :func:`_classify`). Rows past the projection's version are insertions; a log ending
    before it is truncated."""
    docs = [_parse(row[2]) for row in rows]
    prev_hash = GENESIS_HASH
    for position, (_id, seq, body, stored_prev, stored_hash, type_, actor_id, actor_role, at) in enumerate(rows):
        expected = position + 1
        if seq != expected:
            if seq < expected or expected > version:
                return seq, "inserted", f"seq {seq} is not part of a log of {version} events"
            return expected, "deleted", f"expected seq {expected}, found {seq}"
        doc = docs[position]
        if not (
            doc is not None
            and stored_prev == prev_hash
            and _digest(stored_prev, body) == stored_hash
            and doc.get("seq") == seq
            and doc.get(key) == owner
        ):
            at_seq, kind, detail = _classify(owner, rows, docs, position, prev_hash, key=key)
            if kind == "changed" and expected > version:
                # A row the log's owner never reached cannot have been changed: it was added.
                kind, detail = "inserted", f"seq {seq} is past seq {version}, where the {noun} stands; {detail}"
            return at_seq, kind, detail
        if expected > version:
            return seq, "inserted", f"the log runs past seq {version}, where the {noun} stands"
        assert doc is not None
        if (type_, actor_id, actor_role) != (doc.get("type"), _actor(doc, "id"), _actor(doc, "role")) or (
            at != _instant(doc.get("at"))
        ):
            return seq, "changed", "indexed columns differ from the hashed body"
        found = step(doc, stored_prev, stored_hash) if step is not None else None
        if found is not None:
            return seq, *found
        prev_hash = stored_hash
    last_seq = len(rows)
    if last_seq < version:
        return last_seq + 1, "truncated", f"log ends at seq {last_seq}, the {noun} is at {version}"
    if head_hash != prev_hash:
        return last_seq, "changed", f"the {noun}'s head hash differs from the log's last hash"
    return None


def check_case_rows(
    session: Session,
    registry: WorkflowRegistry,
    case_id: str,
    rows: Sequence[EventTuple],
    case_row: CaseRowTuple | None,
    *,
    replay: bool = True,
    merchant_logs: Mapping[str, Mapping[int, bool] | None] | None = None,
) -> Damage | None:
    """The first damage in one case's stored events (sorted by seq) and projection, or None.

    The chain is walked as :func:`walk_log` says. ``replay=False`` checks the chain only: no
    fold, no comparison with the projection. With ``merchant_logs`` (merchant -> whether flagged
    after each seq of its log; None for a log found damaged), each decision's recorded standing
    must be what that log says.
    """
    if case_row is None:
        return Damage(case_id, 0, "deleted", "the case row is missing")
    version, head_hash, stored_snapshot = case_row[:3]
    folded: list[CaseSnapshot] = []

    def fold(doc: dict[str, Any], stored_prev: str, stored_hash: str) -> tuple[str, str] | None:
        try:
            event = event_from_doc(doc, prev_hash=stored_prev, hash_=stored_hash)
            snapshot = evolve(registry.pinned(event.workflow_version, session), folded[-1] if folded else None, event)
        except (ReplayError, KeyError, TypeError, ValueError, NotFoundError) as exc:
            return "changed", f"does not replay: {exc}"
        folded[:] = [snapshot]
        wrong = standing_problem(snapshot.merchant_id, event.data, merchant_logs)
        return ("standing", wrong) if wrong is not None else None

    found = walk_log(case_id, rows, version, head_hash, key="case_id", noun="case", step=fold if replay else None)
    if found is not None:
        return Damage(case_id, *found)
    if not replay:
        return None
    last_seq = len(rows)
    snapshot = folded[-1] if folded else None
    if snapshot is None or not _same_snapshot(snapshot, snapshot_from_json(stored_snapshot)):
        return Damage(case_id, last_seq, "projection", "replaying the log does not give the stored case")
    replayed = case_columns(snapshot)
    for column, stored in zip(DERIVED_COLUMNS, case_row[3:], strict=True):
        if stored != replayed[column.name]:
            return Damage(
                case_id,
                last_seq,
                "projection",
                f"the stored {column.name} column says {stored!r}, replaying the log gives {replayed[column.name]!r}",
            )
    return None


MerchantRowTuple = tuple[int, str, bool]
"""The merchant projection as verification reads it: seq, head_hash, flagged."""


def check_merchant_rows(
    merchant_id: str, rows: Sequence[EventTuple], merchant_row: MerchantRowTuple | None, *, replay: bool = True
) -> MerchantDamage | None:
    """The first damage in one merchant's stored events (sorted by seq) and row, or None.

    The same walk as a case's (:func:`walk_log`, the body naming this merchant); then
    (``replay``) the fold, which must give the row's flag. A row without events, or events
    without a row, is damage too: supervision writes both in one transaction.
    """
    if merchant_row is None:
        return MerchantDamage(merchant_id, 0, "deleted", "the merchant row is missing; its log remains")
    version, head_hash, flagged = merchant_row
    states = [MerchantState(merchant_id)]

    def fold(doc: dict[str, Any], stored_prev: str, stored_hash: str) -> tuple[str, str] | None:
        try:
            event = merchant_event_from_doc(doc, prev_hash=stored_prev, hash_=stored_hash)
            states[:] = [evolve_merchant(states[-1], event)]
        except (MerchantReplayError, KeyError, TypeError, ValueError) as exc:
            return "changed", f"does not replay: {exc}"
        return None

    found = walk_log(
        merchant_id, rows, version, head_hash, key="merchant_id", noun="merchant", step=fold if replay else None
    )
    if found is not None:
        return MerchantDamage(merchant_id, *found)
    state = states[-1]
    if replay and state.flagged != bool(flagged):
        return MerchantDamage(
            merchant_id,
            len(rows),
            "projection",
            f"the merchant row says flagged={bool(flagged)}, replaying the log gives flagged={state.flagged}",
        )
    return None


def standing_problem(
    merchant_id: str, data: Mapping[str, Any], merchant_logs: Mapping[str, Mapping[int, bool] | None] | None
) -> str | None:
    """Does the merchant standing a decision recorded (workflow/merchant.py) agree with the
    merchant's log? None when it does, or when there is nothing to compare."""
    standing = recorded_standing(data) if merchant_logs is not None else None
    if standing is None or merchant_logs is None:
        return None
    if standing.seq == 0:
        return "records a flagged merchant without a merchant log" if standing.flagged else None
    if merchant_id not in merchant_logs:
        return f"relies on seq {standing.seq} of merchant {merchant_id}'s log, which does not exist"
    log = merchant_logs[merchant_id]
    if log is None:
        return None  # that log's own damage is reported already
    if standing.seq not in log:
        return f"relies on seq {standing.seq} of merchant {merchant_id}'s log, which ends at seq {len(log)}"
    if log[standing.seq] != standing.flagged:
        said = "flagged" if log[standing.seq] else "not flagged"
        return (
            f"records merchant {merchant_id} as {'' if standing.flagged else 'not '}flagged at its seq "
            f"{standing.seq}; the merchant's log says {said}"
        )
    return None


def _same_snapshot(a: CaseSnapshot, b: CaseSnapshot) -> bool:
    """Field by field, nested records included; ``extra`` is left out of the dataclass's
    equality, so it is compared on its own."""
    return a == b and a.extra == b.extra


ChainRow = tuple[int, str, str, str]


"""One stored event as the chain-only check reads it: seq, body, prev_hash, hash."""


CHAIN_COLUMNS = (EVENTS.c.seq, EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)


def first_chain_break(case_id: str, rows: Iterable[ChainRow]) -> int | None:
    """The position of the first row that breaks the chain, or None when every row links.

    A row holds if its seq follows the previous one, it names the previous hash and its
    hash is sha256(previous digest || body); the first row must also carry this case id
    and seq 1 in its body. That is enough: the engine hashes each event over its
    predecessor's hash, so (short of a sha256 collision) a row that links to seq k-1 of
    this case *is* seq k of this case, and its body can name no other seq or case.
    Only a forger who recomputes every later hash gets past any chain check; the signed
    checkpoints catch that, and full verification also parses and replays every body.

    This is the hot loop of chain-only verification (bench B5), so it parses no JSON and
    works on the strings the database returns. A row it rejects is not yet damage: the
    caller reads the full rows and :func:`check_case_rows` decides and names it.
    """
    sha256 = hashlib.sha256
    prev_hex, prev = GENESIS_HASH, bytes(32)
    for position, (seq, body, stored_prev, stored_hash) in enumerate(rows):
        if seq != position + 1 or stored_prev != prev_hex:
            return position
        hasher = sha256(prev)
        hasher.update(body.encode("utf-8"))
        digest = hasher.digest()
        if digest.hex() != stored_hash:
            return position
        if position == 0 and not _names(body, case_id, seq):
            return position
        prev_hex, prev = stored_hash, digest
    return None


def _names(body: str, case_id: str, seq: int) -> bool:
    """Does a canonical event body name this case and seq at its top level?

    RFC 8785 sorts keys (actor, at, case_id, data, policy_version, seq, type,
    workflow_version). Only strings come before ``case_id`` and only strings after
    ``seq``, and a string cannot hold an unescaped quote, so the first ``"case_id":``
    and the last ``,"seq":`` are the top-level ones.
    """
    case_key = '"case_id":' + canonical_bytes(case_id).decode("utf-8") + ","
    return body.startswith(case_key, body.find('"case_id":')) and body.startswith(
        f',"seq":{seq},', body.rfind(',"seq":')
    )


def _classify(
    case_id: str,
    rows: Sequence[EventTuple],
    docs: Sequence[dict[str, Any] | None],
    position: int,
    prev_hash: str,
    key: str = "case_id",
) -> tuple[int, str, str]:
    """Name what happened at the first row that does not link (seq = position + 1).

    The checks run from the most specific explanation to the most general, and each
    is what the listed tampering leaves behind (the tests in tests/audit/ make them):
    an event inserted with the later rows renumbered, two events swapped, a foreign
    event, an event deleted with the later rows renumbered; anything else is a change.
    ``key`` is the body's member naming the log's owner (``merchant_id`` in a merchant's log).
    """
    seq = position + 1
    _id, _seq, body, stored_prev, stored_hash, *_ = rows[position]
    doc = docs[position]
    self_consistent = _digest(stored_prev, body) == stored_hash
    before_previous = rows[position - 2][4] if position >= 2 else GENESIS_HASH
    if position >= 1 and self_consistent and stored_prev == before_previous and stored_prev != prev_hash:
        # This event links over the previous one, which is therefore the stranger.
        return seq - 1, "inserted", f"seq {seq} links to seq {seq - 2}: seq {seq - 1} was put in between"
    if doc is not None and doc.get(key) == case_id and doc.get("seq") != seq:
        owner = next(
            (i for i, d in enumerate(docs) if i != position and d is not None and d.get("seq") == seq),
            None,
        )
        if owner is not None:
            return seq, "reordered", f"row seq {seq} holds the event of seq {doc.get('seq')}"
    if position + 1 < len(rows):
        _nid, _nseq, next_body, next_prev, next_hash, *_ = rows[position + 1]
        if next_prev == prev_hash and _digest(next_prev, next_body) == next_hash:
            return seq, "inserted", f"seq {seq + 1} links straight to seq {seq - 1}"
    if doc is not None and self_consistent and doc.get(key) != case_id:
        log = "case" if key == "case_id" else "merchant"
        return seq, "inserted", f"the event belongs to {log} {doc.get(key)}"
    if doc is not None and self_consistent and isinstance(doc.get("seq"), int) and doc["seq"] > seq:
        return seq, "deleted", f"row seq {seq} holds the event of seq {doc['seq']}; seq {seq} is gone"
    if doc is None:
        return seq, "changed", "the event body is not valid JSON"
    if stored_prev != prev_hash and self_consistent:
        return seq, "changed", "the event does not link to the previous one"
    return seq, "changed", "hash does not match the event body"


def _digest(prev_hash: str, body: str) -> str:
    try:
        return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("utf-8")).hexdigest()
    except ValueError:
        return ""  # a prev_hash that is not hex links to nothing


def _parse(body: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _actor(doc: dict[str, Any], key: str) -> Any:
    actor = doc.get("actor")
    return actor.get(key) if isinstance(actor, dict) else None


def _instant(value: Any) -> datetime | None:
    try:
        return from_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


@contextlib.contextmanager
def snapshot_read(db: Database) -> Iterator[Session]:
    """A read transaction that sees the database at one instant on both backends.

    PostgreSQL's default READ COMMITTED gives each statement its own snapshot, so a
    command committing between reading a case's events and its row would look like
    an insertion or a truncation; REPEATABLE READ holds one snapshot for the whole
    transaction. SQLite (WAL) already reads one snapshot per transaction.
    """
    with Session(db.engine, expire_on_commit=False) as session, session.begin():
        if db.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session
