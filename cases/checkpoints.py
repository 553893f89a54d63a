"""Signed checkpoints: RFC 6962 Merkle trees over every case's and every merchant's chain head, and inclusion proofs.

A checkpoint commits, under an Ed25519 signature, to the head (seq, hash) of every
case's log and of every merchant's log (cases/merchants.py) at one moment, and to
the previous checkpoint. Anyone holding a published checkpoint can then detect a
log that was later rewritten, truncated or lost, even when the tamperer recomputed
every hash and fixed the projection. The two families of logs are two trees (a
:class:`Ledger` each) whose roots the one document signs; checkpoints written before
merchant logs existed (type v1) sign the cases' tree only and still verify.
docs/audit.md states the formats for third parties; tools/verify_export.py
re-implements them without this code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ColumnElement, Integer, Select, Table, exists, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.db import Database
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
from workflow.errors import DisputeError, NotFoundError
from workflow.model import to_iso

# v2 signs the merchant logs' tree too; v1 documents (the cases' tree only) stay valid.
CHECKPOINT_TYPE = "dispute-engine/checkpoint/v2"
CHECKPOINT_TYPE_V1 = "dispute-engine/checkpoint/v1"
# RFC 6962: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
# One fixed key for pg_try_advisory_xact_lock, derived so it will not collide by accident.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"dispute-engine:checkpoints").digest()[:8], "big", signed=True)
# Advisory locks belong to the whole database, and one database may hold several desks,
# each in its own schema (and the test suite's workers do): the key is mixed with the
# schema's name, so only writers of the same ledger exclude each other.
TRY_CHECKPOINT_LOCK = text("SELECT pg_try_advisory_xact_lock(:key # hashtextextended(current_schema(), 0))").bindparams(
    key=LOCK_KEY
)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Printable ASCII other than '"' and '\\': JSON strings of these need no escaping.
_PLAIN = re.compile(r"[ !#-\[\]-~]*")
_STREAM = {"yield_per": 1000}


class AuditIntegrityError(DisputeError):
    """Stored audit data does not match what was signed (the checkpoint tables were changed)."""

    type_slug = "audit-integrity"


class Head(NamedTuple):
    """A case's chain head: its last event's seq and hash."""

    case_id: str
    seq: int
    hash: str


HeadTuple = tuple[str, int, str]
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


# --- keys ----------------------------------------------------------------------------


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted: what settings and key files hold."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 hex digits, the form checkpoints name it in."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(source: str | bytes | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) text, a 32-byte seed (raw, hex or base64),
    or a path to a file holding either. Errors never echo the key material."""
    data = _key_material(source)
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"the signing key PEM cannot be read ({type(exc).__name__}); it must be unencrypted"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"the signing key is {type(key).__name__}, not Ed25519")
        return key
    return Ed25519PrivateKey.from_private_bytes(_seed(data))


def load_public_key(source: str | bytes | os.PathLike[str]) -> str:
    """A trusted public key as 64 hex digits, from hex, PEM (SubjectPublicKeyInfo) or a file."""
    data = _key_material(source)
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"the public key is {type(key).__name__}, not Ed25519")
        return public_key_hex(key)
    stripped = data.strip()
    if len(stripped) == 64 and _HEX64.fullmatch(stripped.decode("ascii", "replace")):
        return stripped.decode("ascii").lower()
    raise ValueError("a public key must be 64 hex digits or a PEM public key")


def _key_material(source: str | bytes | os.PathLike[str]) -> bytes:
    if isinstance(source, os.PathLike):
        return Path(source).expanduser().read_bytes()
    if isinstance(source, bytes):
        return source
    text_ = source.strip()
    if "-----BEGIN" in text_:
        # Keys put in environment variables often carry literal "\n" for newlines.
        return text_.replace("\\n", "\n").encode("ascii", "replace")
    if _looks_like_seed(text_):
        return text_.encode("ascii")
    path = Path(text_).expanduser()
    if text_ and path.is_file():
        return path.read_bytes()
    raise ValueError("the key is neither PEM, a 32-byte seed in hex or base64, nor a readable file")


def _looks_like_seed(value: str) -> bool:
    if _HEX64.fullmatch(value):
        return True
    try:
        return len(_b64(value)) == 32
    except ValueError:
        return False


def _b64(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def _seed(data: bytes) -> bytes:
    if len(data) == 32 and not _HEX64.fullmatch(data.decode("latin-1")):
        return data  # a raw binary seed file
    value = data.strip().decode("ascii", "replace")
    if _HEX64.fullmatch(value):
        return bytes.fromhex(value)
    try:
        seed = _b64(value)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed must be 32 bytes (64 hex digits or 44 base64 characters)")
    return seed


# --- the Merkle tree (RFC 6962 section 2.1, RFC 9162 section 2.1) --------------------------


def leaf_bytes(case_id: str, seq: int, hash_: str) -> bytes:
    """A tree leaf: the RFC 8785 JSON of ``{"case_id", "hash", "seq"}``."""
    if _PLAIN.fullmatch(case_id) and _PLAIN.fullmatch(hash_) and 0 <= seq < 2**53:
        # The same bytes rfc8785 gives for these values, ~50x faster: nothing in
        # them needs escaping and a safe integer prints as its decimal digits.
        return f'{{"case_id":"{case_id}","hash":"{hash_}","seq":{seq}}}'.encode("ascii")
    return rfc8785.dumps({"case_id": case_id, "hash": hash_, "seq": seq})


def merchant_leaf_bytes(merchant_id: str, seq: int, hash_: str) -> bytes:
    """A leaf of the merchant logs' tree: the RFC 8785 JSON of ``{"hash", "merchant_id", "seq"}``."""
    if _PLAIN.fullmatch(merchant_id) and _PLAIN.fullmatch(hash_) and 0 <= seq < 2**53:
        return f'{{"hash":"{hash_}","merchant_id":"{merchant_id}","seq":{seq}}}'.encode("ascii")
    return rfc8785.dumps({"hash": hash_, "merchant_id": merchant_id, "seq": seq})


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleAccumulator:
    """The RFC 6962 tree hash of a stream of leaf hashes in O(log n) memory.

    It keeps the perfect subtrees of the leaves seen so far (sizes are the binary
    digits of n, largest first); folding them right to left gives exactly the
    RFC's split at the largest power of two below n.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf_digest: bytes) -> None:
        size, digest = 1, leaf_digest
        while self._stack and self._stack[-1][0] == size:
            digest = node_hash(self._stack.pop()[1], digest)
            size *= 2
        self._stack.append((size, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return bytes.fromhex(EMPTY_ROOT)
        digest = self._stack[-1][1]
        for _size, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def merkle_root(leaf_digests: Iterable[bytes]) -> bytes:
    tree = MerkleAccumulator()
    for digest in leaf_digests:
        tree.add(digest)
    return tree.root()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def path_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) whose subtree hashes form the audit path of ``index``,
    from the leaf upwards (RFC 6962 section 2.1.1, PATH(m, D[n]))."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of {tree_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()  # built from the root down; a path is read from the leaf up
    return ranges


def audit_path(leaf_digests: Iterable[bytes], index: int, tree_size: int) -> tuple[list[bytes], bytes]:
    """The audit path of leaf ``index`` and the tree's root, from one pass over the leaves."""
    ranges = path_ranges(index, tree_size)
    by_start = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    trees = [MerkleAccumulator() for _ in ranges]
    whole = MerkleAccumulator()
    cursor = 0
    for position, digest in enumerate(leaf_digests):
        whole.add(digest)
        while cursor < len(by_start) and ranges[by_start[cursor]][1] <= position:
            cursor += 1
        if cursor < len(by_start) and ranges[by_start[cursor]][0] <= position:
            trees[by_start[cursor]].add(digest)
    if whole.size != tree_size:
        raise AuditIntegrityError(f"the tree has {whole.size} leaves, the checkpoint says {tree_size}")
    return [t.root() for t in trees], whole.root()


def verify_inclusion(
    *, leaf: bytes, index: int, tree_size: int, path: Sequence[str | bytes], root: str | bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` prove ``leaf`` is leaf ``index`` under ``root``?"""
    if not 0 <= index < tree_size:
        return False
    expected = bytes.fromhex(root) if isinstance(root, str) else root
    fn, sn = index, tree_size - 1
    digest = leaf_hash(leaf)
    for item in path:
        sibling = bytes.fromhex(item) if isinstance(item, str) else item
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest == expected


def delta_digest(heads: Iterable[HeadTuple], leaf: Callable[[str, int, str], bytes] = leaf_bytes) -> tuple[int, str]:
    """How many heads changed in a checkpoint and sha256 over their leaf hashes, in order."""
    digest = hashlib.sha256()
    count = 0
    for head in heads:
        digest.update(leaf_hash(leaf(*head)))
        count += 1
    return count, digest.hexdigest()


EMPTY_DELTA = delta_digest(())


# --- the two families of logs ---------------------------------------------------------------


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


# --- the checkpoint document ------------------------------------------------------------


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


# --- storage queries ----------------------------------------------------------------------


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


# --- writing ---------------------------------------------------------------------------------


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


# --- proofs ------------------------------------------------------------------------------------


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
    path, root = audit_path(
        (leaf_hash(leaf_bytes(*h)) for h in iter_heads(session, found.number)), index, found.case_count
    )
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
