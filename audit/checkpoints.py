"""Signed checkpoints: a Merkle tree over every case's and every merchant's chain head, and inclusion proofs.

A checkpoint commits, under an Ed25519 signature, to the head (seq, hash) of every
case's log and of every merchant's log (cases/merchants.py) at one moment, and to
the previous checkpoint. Anyone holding a published checkpoint can then detect a
log that was later rewritten, truncated or lost, even when the tamperer recomputed
every hash and fixed the projection. The two families of logs are two trees (a
:class:`Ledger` each) whose roots the one document signs; checkpoints written before
merchant logs existed (type v1) sign the cases' tree only and still verify. The tree's
maths is audit/merkle.py, the keys audit/keys.py; this module stores and proves.
docs/audit.md states the formats for third parties; tools/verify_export.py
re-implements them without this code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ColumnElement, Integer, Select, Table, exists, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from audit.keys import public_key_hex
from audit.merkle import (
    MerkleAccumulator,
    audit_path,
    delta_digest,
    leaf_bytes,
    leaf_hash,
    merchant_leaf_bytes,
    verify_inclusion,
)
from store.db import Database
from store.errors import AuditIntegrityError
from store.tables import (
    CASES,
    CHECKPOINT_HEADS,
    CHECKPOINT_MERCHANT_HEADS,
    CHECKPOINTS,
    EVENTS,
    MERCHANT_EVENTS,
    MERCHANTS,
)
from workflow.chain import GENESIS_HASH
from workflow.errors import NotFoundError
from workflow.model import to_iso

# v2 signs the merchant logs' tree too; v1 documents (the cases' tree only) stay valid.
CHECKPOINT_TYPE = "dispute-engine/checkpoint/v2"


CHECKPOINT_TYPE_V1 = "dispute-engine/checkpoint/v1"


# One fixed key for pg_try_advisory_xact_lock, derived so it will not collide by accident.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"dispute-engine:checkpoints").digest()[:8], "big", signed=True)


# Advisory locks belong to the whole database, and one database may hold several desks,
# each in its own schema (and the test suite's workers do): the key is mixed with the
# schema's name, so only writers of the same ledger exclude each other.
TRY_CHECKPOINT_LOCK = text("SELECT pg_try_advisory_xact_lock(:key # hashtextextended(current_schema(), 0))").bindparams(
    key=LOCK_KEY
)


_STREAM = {"yield_per": 1000}


class Head(NamedTuple):
    """A case's chain head: its last event's seq and hash."""

    case_id: str
    seq: int
    hash: str


"""A head of either family of logs: (case or merchant id, seq, hash)."""


@dataclass(frozen=True)
class Checkpoint:
    """A stored checkpoint. ``document`` is the exact canonical JSON that was hashed and signed."""

    number: int
    created_at: datetime
    case_count: int
    event_count: int
    merkle_root: str
    delta_count: int
    delta_hash: str
    previous_hash: str
    hash: str
    public_key: str
    signature: str
    document: str
    # The merchant logs' tree (None on a v1 checkpoint, which did not sign one).
    merchant_count: int | None = None
    merchant_event_count: int | None = None
    merchant_root: str | None = None
    merchant_delta_count: int | None = None
    merchant_delta_hash: str | None = None

    @property
    def signs_merchants(self) -> bool:
        return self.merchant_root is not None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["created_at"] = to_iso(self.created_at)
        return values


@dataclass(frozen=True)
class InclusionProof:
    """That a case's head is leaf ``index`` of the ``tree_size``-leaf tree with root ``root``."""

    checkpoint: int
    case_id: str
    seq: int
    hash: str
    leaf: str  # the leaf's canonical JSON text
    index: int
    tree_size: int
    path: tuple[str, ...]  # sibling subtree hashes, hex, from the leaf upwards
    root: str

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["path"] = list(self.path)
        return values

    def verify(self) -> bool:
        return verify_inclusion(
            leaf=self.leaf.encode("utf-8"), index=self.index, tree_size=self.tree_size, path=self.path, root=self.root
        )


@dataclass(frozen=True)
class Ledger:
    """One family of logs a checkpoint covers: where their current heads are, where the
    checkpoints' changed heads are stored, the events they are heads of, and their leaf."""

    name: str  # "case" or "merchant", as findings name it
    heads: Table  # (key, checkpoint, seq, hash): the changed heads per checkpoint
    key: str  # the id column's name in ``heads`` and ``events``
    source: Table  # the projection holding each log's head now
    source_key: str
    source_seq: str
    source_hash: str
    events: Table  # the logs themselves: (key, seq, hash)
    leaf: Callable[[str, int, str], bytes]


CASE_LOGS = Ledger("case", CHECKPOINT_HEADS, "case_id", CASES, "id", "version", "head_hash", EVENTS, leaf_bytes)


MERCHANT_LOGS = Ledger(
    "merchant",
    CHECKPOINT_MERCHANT_HEADS,
    "merchant_id",
    MERCHANTS,
    "merchant_id",
    "seq",
    "head_hash",
    MERCHANT_EVENTS,
    merchant_leaf_bytes,
)


def checkpoint_document(
    *,
    number: int,
    created_at: str,
    case_count: int,
    event_count: int,
    merkle_root: str,
    delta_count: int,
    delta_hash: str,
    previous_hash: str,
    public_key: str,
    merchant_count: int | None = None,
    merchant_event_count: int | None = None,
    merchant_root: str | None = None,
    merchant_delta_count: int | None = None,
    merchant_delta_hash: str | None = None,
) -> dict[str, Any]:
    """The mapping whose RFC 8785 JSON is hashed (the checkpoint's hash) and signed: type v2
    with the merchant logs' tree, or v1 (cases only) when ``merchant_root`` is None."""
    document: dict[str, Any] = {
        "type": CHECKPOINT_TYPE_V1 if merchant_root is None else CHECKPOINT_TYPE,
        "number": number,
        "created_at": created_at,
        "case_count": case_count,
        "event_count": event_count,
        "merkle_root": merkle_root,
        "delta_count": delta_count,
        "delta_hash": delta_hash,
        "previous_hash": previous_hash,
        "public_key": public_key,
    }
    if merchant_root is not None:
        document.update(
            merchant_count=merchant_count,
            merchant_event_count=merchant_event_count,
            merchant_root=merchant_root,
            merchant_delta_count=merchant_delta_count,
            merchant_delta_hash=merchant_delta_hash,
        )
    return document


def check_checkpoint(
    checkpoint: Checkpoint, previous: Checkpoint | None, *, trusted_keys: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Problems (kind, detail) of one checkpoint on its own and as the successor of
    ``previous``: document form and fields, hash, chaining, numbering, signature, key."""
    problems: list[tuple[str, str]] = []
    body = checkpoint.document.encode("utf-8")
    try:
        doc = json.loads(body)
        canonical = rfc8785.dumps(doc) == body
    except (ValueError, rfc8785.CanonicalizationError):
        return [("document", "the stored document is not JSON")]
    if not canonical:
        problems.append(("document", "the stored document is not in RFC 8785 canonical form"))
    expected = checkpoint_document(
        number=checkpoint.number,
        created_at=to_iso(checkpoint.created_at),
        case_count=checkpoint.case_count,
        event_count=checkpoint.event_count,
        merkle_root=checkpoint.merkle_root,
        delta_count=checkpoint.delta_count,
        delta_hash=checkpoint.delta_hash,
        previous_hash=checkpoint.previous_hash,
        public_key=checkpoint.public_key,
        merchant_count=checkpoint.merchant_count,
        merchant_event_count=checkpoint.merchant_event_count,
        merchant_root=checkpoint.merchant_root,
        merchant_delta_count=checkpoint.merchant_delta_count,
        merchant_delta_hash=checkpoint.merchant_delta_hash,
    )
    differing = sorted(k for k in expected.keys() | doc.keys() if expected.get(k) != doc.get(k))
    if differing:
        problems.append(("document", f"stored columns differ from the signed document: {', '.join(differing)}"))
    if hashlib.sha256(body).hexdigest() != checkpoint.hash:
        problems.append(("hash", "the hash does not match the document"))
    want_number = previous.number + 1 if previous else 1
    if checkpoint.number != want_number:
        problems.append(("numbering", f"expected checkpoint #{want_number}, found #{checkpoint.number}"))
    want_previous = previous.hash if previous else GENESIS_HASH
    if doc.get("previous_hash") != want_previous:
        problems.append(
            ("chain", f"previous_hash does not name {'#' + str(previous.number) if previous else 'genesis'}")
        )
    key_hex = doc.get("public_key", "")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
        key.verify(bytes.fromhex(checkpoint.signature), body)
    except (ValueError, TypeError, InvalidSignature):
        problems.append(("signature", "the signature does not verify with the document's public key"))
    if trusted_keys is not None and key_hex not in {k.lower() for k in trusted_keys}:
        problems.append(("key", f"signed by key {key_hex[:16]}..., which is not a trusted key"))
    return problems


def _by_case_id(column: ColumnElement[str], dialect: str) -> ColumnElement[str]:
    """Leaves are ordered by the code points of case_id; PostgreSQL's default collation
    may ignore punctuation such as '-', so compare bytes there ("C")."""
    return column.collate("C") if dialect == "postgresql" else column


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def heads_as_of(number: int, ledger: Ledger = CASE_LOGS) -> Select[Any]:
    """(id, seq, hash) of every log as checkpoint ``number`` saw it (unordered); the id
    column is named as in the ledger (``case_id`` or ``merchant_id``)."""
    heads = ledger.heads
    later = heads.alias("later")
    superseded = exists().where(
        later.c[ledger.key] == heads.c[ledger.key],
        later.c.checkpoint > heads.c.checkpoint,
        later.c.checkpoint <= number,
    )
    return select(heads.c[ledger.key], heads.c.seq, heads.c.hash).where(heads.c.checkpoint <= number, ~superseded)


def iter_heads(session: Session, number: int, ledger: Ledger = CASE_LOGS) -> Iterator[Head]:
    """The leaves of checkpoint ``number`` in tree order, streamed."""
    sub = heads_as_of(number, ledger).subquery()
    key = sub.c[ledger.key]
    stmt = select(key, sub.c.seq, sub.c.hash).order_by(_by_case_id(key, _dialect(session)))
    for row in session.execute(stmt.execution_options(**_STREAM)):
        yield Head(row[0], row.seq, row.hash)


def iter_delta(session: Session, number: int, ledger: Ledger = CASE_LOGS) -> Iterator[Head]:
    """The heads checkpoint ``number`` recorded as changed, in tree order."""
    heads = ledger.heads
    stmt = (
        select(heads.c[ledger.key], heads.c.seq, heads.c.hash)
        .where(heads.c.checkpoint == number)
        .order_by(_by_case_id(heads.c[ledger.key], _dialect(session)))
    )
    for row in session.execute(stmt.execution_options(**_STREAM)):
        yield Head(row[0], row.seq, row.hash)


def _from_row(row: Any) -> Checkpoint:
    return Checkpoint(
        number=row.number,
        created_at=row.created_at,
        case_count=row.case_count,
        event_count=row.event_count,
        merkle_root=row.merkle_root,
        delta_count=row.delta_count,
        delta_hash=row.delta_hash,
        previous_hash=row.previous_hash,
        hash=row.hash,
        public_key=row.public_key,
        signature=row.signature,
        document=row.document,
        merchant_count=row.merchant_count,
        merchant_event_count=row.merchant_event_count,
        merchant_root=row.merchant_root,
        merchant_delta_count=row.merchant_delta_count,
        merchant_delta_hash=row.merchant_delta_hash,
    )


def latest_checkpoint(session: Session) -> Checkpoint | None:
    row = session.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.number.desc()).limit(1)).first()
    return _from_row(row) if row is not None else None


def get_checkpoint(session: Session, number: int | None = None) -> Checkpoint:
    """Checkpoint ``number``, or the latest when None; NotFoundError if there is none."""
    if number is None:
        found = latest_checkpoint(session)
    else:
        row = session.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.number == number)).first()
        found = _from_row(row) if row is not None else None
    if found is None:
        raise NotFoundError("checkpoint", "latest" if number is None else str(number))
    return found


def list_checkpoints(session: Session, *, after: int = 0, limit: int = 50) -> list[Checkpoint]:
    """Checkpoints numbered above ``after``, oldest first (a cursor page)."""
    stmt = select(CHECKPOINTS).where(CHECKPOINTS.c.number > after).order_by(CHECKPOINTS.c.number).limit(limit)
    return [_from_row(r) for r in session.execute(stmt)]


def iter_checkpoints(session: Session) -> Iterator[Checkpoint]:
    stmt = select(CHECKPOINTS).order_by(CHECKPOINTS.c.number)
    for row in session.execute(stmt.execution_options(**_STREAM)):
        yield _from_row(row)


def case_head(session: Session, case_id: str, number: int) -> Head | None:
    """The case's head as checkpoint ``number`` saw it, if the case existed then."""
    row = session.execute(
        select(CHECKPOINT_HEADS.c.seq, CHECKPOINT_HEADS.c.hash)
        .where(CHECKPOINT_HEADS.c.case_id == case_id, CHECKPOINT_HEADS.c.checkpoint <= number)
        .order_by(CHECKPOINT_HEADS.c.checkpoint.desc())
        .limit(1)
    ).first()
    return Head(case_id, row.seq, row.hash) if row is not None else None


def write_checkpoint(
    db: Database, signing_key: Ed25519PrivateKey, now: datetime, *, min_interval: timedelta | None = None
) -> Checkpoint | None:
    """Write the next checkpoint, or return None when another worker is writing one now
    (PostgreSQL advisory lock) or the latest is younger than ``min_interval``.

    Safe to call from every worker on a schedule: on PostgreSQL only the holder of
    the advisory lock writes; on SQLite the write transaction serialises writers,
    and ``min_interval`` keeps the ones that queued from writing again at once.
    """
    try:
        return db.run_write(lambda s: append_checkpoint(s, signing_key, now, min_interval=min_interval))
    except IntegrityError:
        return None  # someone outside the lock wrote this number first; theirs stands


def append_checkpoint(
    session: Session, signing_key: Ed25519PrivateKey, now: datetime, *, min_interval: timedelta | None = None
) -> Checkpoint | None:
    """The work of :func:`write_checkpoint` inside the caller's write transaction."""
    dialect = _dialect(session)
    if dialect == "postgresql":
        locked = session.execute(TRY_CHECKPOINT_LOCK).scalar()
        if not locked:
            return None
    previous = latest_checkpoint(session)
    if previous is not None and min_interval is not None and now - previous.created_at < min_interval:
        return None
    number = previous.number + 1 if previous else 1
    cases, merchants = _tree(session, number, CASE_LOGS), _tree(session, number, MERCHANT_LOGS)
    public_key = public_key_hex(signing_key)
    fields: dict[str, Any] = {
        "number": number,
        "case_count": cases.size,
        "event_count": cases.events,
        "merkle_root": cases.root,
        "delta_count": cases.delta[0],
        "delta_hash": cases.delta[1],
        "previous_hash": previous.hash if previous else GENESIS_HASH,
        "public_key": public_key,
        "merchant_count": merchants.size,
        "merchant_event_count": merchants.events,
        "merchant_root": merchants.root,
        "merchant_delta_count": merchants.delta[0],
        "merchant_delta_hash": merchants.delta[1],
    }
    document = rfc8785.dumps(checkpoint_document(created_at=to_iso(now), **fields))
    checkpoint = Checkpoint(
        created_at=now,
        hash=hashlib.sha256(document).hexdigest(),
        signature=signing_key.sign(document).hex(),
        document=document.decode("utf-8"),
        **fields,
    )
    session.execute(insert(CHECKPOINTS).values(**asdict(checkpoint)))
    return checkpoint


@dataclass(frozen=True)
class _Tree:
    size: int
    events: int
    root: str
    delta: tuple[int, str]


def _tree(session: Session, number: int, ledger: Ledger) -> _Tree:
    """Record the ledger's changed heads as of checkpoint ``number``; its tree and delta."""
    _record_changed_heads(session, number, ledger)
    delta = delta_digest(iter_delta(session, number, ledger), ledger.leaf)
    tree = MerkleAccumulator()
    events = 0
    for head in iter_heads(session, number, ledger):
        tree.add(leaf_hash(ledger.leaf(*head)))
        events += head.seq
    return _Tree(tree.size, events, tree.root().hex(), delta)


def _record_changed_heads(session: Session, number: int, ledger: Ledger = CASE_LOGS) -> None:
    """Store, as of checkpoint ``number``, the head of every log whose head differs from
    its latest stored one. One INSERT ... SELECT: the database reads all projection rows at
    one instant, and their (seq, head hash) are written in the same transaction as their
    events, so each head read is a committed event."""
    heads, source = ledger.heads, ledger.source
    key, seq, hash_ = source.c[ledger.source_key], source.c[ledger.source_seq], source.c[ledger.source_hash]
    latest = heads.alias("latest")
    newer = heads.alias("newer")
    unchanged = exists().where(
        latest.c[ledger.key] == key,
        latest.c.seq == seq,
        latest.c.hash == hash_,
        ~exists().where(newer.c[ledger.key] == latest.c[ledger.key], newer.c.checkpoint > latest.c.checkpoint),
    )
    rows = select(key, literal(number, Integer()), seq, hash_).where(~unchanged)
    columns = [heads.c[ledger.key], heads.c.checkpoint, heads.c.seq, heads.c.hash]
    session.execute(insert(heads).from_select(columns, rows))


def inclusion_proof(session: Session, *, case_id: str, checkpoint: int | None = None) -> InclusionProof:
    """Prove that ``case_id``'s head as of ``checkpoint`` (default: the latest) is in its tree.

    Streams the checkpoint's leaves once (O(log n) memory). Raises NotFoundError when
    there is no such checkpoint or the case was not in it, and AuditIntegrityError when
    the stored leaves do not give the signed root.
    """
    found = get_checkpoint(session, checkpoint)
    head = case_head(session, case_id, found.number)
    if head is None:
        raise NotFoundError("case in checkpoint", f"{case_id} in #{found.number}")
    sub = heads_as_of(found.number).subquery()
    index = session.execute(
        select(func.count()).select_from(sub).where(_by_case_id(sub.c.case_id, _dialect(session)) < case_id)
    ).scalar_one()
    try:
        path, root = audit_path(
            (leaf_hash(leaf_bytes(*h)) for h in iter_heads(session, found.number)), index, found.case_count
        )
    except ValueError as exc:  # the stored leaves are not as many as the checkpoint signed
        raise AuditIntegrityError(str(exc)) from exc
    if root.hex() != found.merkle_root:
        raise AuditIntegrityError(f"the stored heads of checkpoint #{found.number} do not give its signed root")
    return InclusionProof(
        checkpoint=found.number,
        case_id=case_id,
        seq=head.seq,
        hash=head.hash,
        leaf=leaf_bytes(*head).decode("utf-8"),
        index=index,
        tree_size=found.case_count,
        path=tuple(p.hex() for p in path),
        root=found.merkle_root,
    )


def checkpoint_page(db: Database, *, after: int = 0, limit: int = 50) -> list[Checkpoint]:
    """:func:`list_checkpoints` in a read transaction of its own."""
    with db.read() as session:
        return list_checkpoints(session, after=after, limit=limit)


def proof_of(db: Database, *, case_id: str, checkpoint: int | None = None) -> tuple[InclusionProof, Checkpoint]:
    """The inclusion proof of the case's head (:func:`inclusion_proof`) and the signed checkpoint
    it proves against, read in one transaction."""
    with db.read() as session:
        found = inclusion_proof(session, case_id=case_id, checkpoint=checkpoint)
        return found, get_checkpoint(session, found.checkpoint)
