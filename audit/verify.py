"""Verify a whole database with bounded memory: every case's and every merchant's chain, replay
and checkpointed heads, and every checkpoint.

The walk pages through case ids and streams one page's events grouped by case, so
memory holds one page of case rows and one case's events. Each case gets at most
one :class:`Damage` (its first bad seq), each merchant log at most one
:class:`MerchantDamage`; checkpoint-level findings are :class:`CheckpointProblem`.
Callers (CLI, HTTP) use :func:`verify_database`; tests and tools that hold a session
use :func:`check_cases`, :func:`check_merchants` and :func:`check_checkpoints`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlmodel import Session

from audit.chains import (
    CASE_ROW_COLUMNS,
    CHAIN_COLUMNS,
    EVENT_COLUMNS,
    CaseRowTuple,
    ChainRow,
    Damage,
    EventTuple,
    MerchantDamage,
    MerchantRowTuple,
    check_case_rows,
    check_merchant_rows,
    event_rows,
    first_chain_break,
    snapshot_read,
)
from audit.checkpoints import (
    CASE_LOGS,
    MERCHANT_LOGS,
    Checkpoint,
    Head,
    Ledger,
    check_checkpoint,
    heads_as_of,
    iter_checkpoints,
    latest_checkpoint,
)
from audit.merkle import EMPTY_DELTA, MerkleAccumulator, delta_digest, leaf_hash
from cases.registry import WorkflowRegistry
from store.db import Database
from store.tables import CASES, CHECKPOINT_HEADS, CHECKPOINT_MERCHANT_HEADS, EVENTS, MERCHANT_EVENTS, MERCHANTS
from workflow.chain import GENESIS_HASH
from workflow.errors import NotFoundError

PAGE_SIZE = 200
_STREAM = {"yield_per": 1000}


@dataclass(frozen=True)
class CheckpointProblem:
    """A finding about a checkpoint rather than a case: signature, key, chain, numbering,
    document, hash, delta (stored heads differ from the signed delta), root, log."""

    number: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"checkpoint #{self.number}: {self.kind}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.number, "kind": self.kind, "detail": self.detail}


Finding = Damage | MerchantDamage | CheckpointProblem


@dataclass(frozen=True)
class CaseCheck:
    case_id: str
    events: int
    damage: Damage | None


@dataclass(frozen=True)
class MerchantCheck:
    merchant_id: str
    events: int
    damage: MerchantDamage | None


@dataclass
class CheckpointCheck:
    checked: int = 0
    latest: int | None = None
    roots_verified: list[int] = field(default_factory=list)
    problems: list[CheckpointProblem] = field(default_factory=list)


@dataclass
class VerifyReport:
    """What :func:`verify_database` found. ``intact`` is the exit status."""

    cases_total: int = 0
    cases_checked: int = 0
    events_checked: int = 0
    merchants_checked: int = 0
    merchant_events_checked: int = 0
    checkpoints_checked: int = 0
    latest_checkpoint: int | None = None
    roots_verified: list[int] = field(default_factory=list)
    damages: list[Damage] = field(default_factory=list)
    merchant_damages: list[MerchantDamage] = field(default_factory=list)
    checkpoint_problems: list[CheckpointProblem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.damages and not self.merchant_damages and not self.checkpoint_problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "cases_total": self.cases_total,
            "cases_checked": self.cases_checked,
            "events_checked": self.events_checked,
            "merchants_checked": self.merchants_checked,
            "merchant_events_checked": self.merchant_events_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "latest_checkpoint": self.latest_checkpoint,
            "roots_verified": list(self.roots_verified),
            "damages": [d.to_dict() for d in self.damages],
            "merchant_damages": [d.to_dict() for d in self.merchant_damages],
            "checkpoint_problems": [p.to_dict() for p in self.checkpoint_problems],
        }


def verify_database(
    db: Database,
    registry: WorkflowRegistry,
    *,
    case_id: str | None = None,
    since: datetime | None = None,
    trusted_keys: Iterable[str] | None = None,
    all_roots: bool = False,
    replay: bool = True,
    checkpoints: bool = True,
    page_size: int = PAGE_SIZE,
    progress: Callable[[VerifyReport], None] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> VerifyReport:
    """Verify every case (or one, or those changed since ``since``), the merchants' logs
    (the one case's merchant's only, with ``case_id``) and the checkpoints.

        ``trusted_keys``: hex public keys checkpoints must be signed with (None: accept
        the key each checkpoint names, which proves consistency, not origin).
        ``all_roots``: recompute every checkpoint's Merkle root, not only the latest's.
        ``replay=False``: check hashes, links and checkpointed heads only (much faster), no
        fold through the workflow and no comparison with the stored projection.
        ``progress`` is called after each page; ``on_finding`` as soon as something is found.
        A full walk (no ``case_id``, no ``since``) also finds cases whose row or whole log is gone.
    """
    report = VerifyReport()

    def found(finding: Finding) -> None:
        if isinstance(finding, Damage):
            report.damages.append(finding)
        elif isinstance(finding, MerchantDamage):
            report.merchant_damages.append(finding)
        else:
            report.checkpoint_problems.append(finding)
        if on_finding is not None:
            on_finding(finding)

    damaged_merchants: set[str] = set()

    def merchants(merchant_ids: Sequence[str] | None) -> None:
        with snapshot_read(db) as session:
            for check in check_merchants(session, merchant_ids, replay=replay):
                report.merchants_checked += 1
                report.merchant_events_checked += check.events
                if check.damage is not None:
                    damaged_merchants.add(check.merchant_id)
                    found(check.damage)

    keys = list(trusted_keys) if trusted_keys is not None else None
    if checkpoints:
        with snapshot_read(db) as session:
            result = check_checkpoints(session, trusted_keys=keys, all_roots=all_roots)
        report.checkpoints_checked = result.checked
        report.latest_checkpoint = result.latest
        report.roots_verified = result.roots_verified
        for problem in result.problems:
            found(problem)

    if case_id is not None:
        report.cases_total = 1
        with snapshot_read(db) as session:
            merchant_id = session.execute(select(CASES.c.merchant_id).where(CASES.c.id == case_id)).scalar()
        # The merchant's log first: the case's decisions are checked against it once it holds.
        merchants([merchant_id] if merchant_id is not None else [])
        with snapshot_read(db) as session:
            checks = list(check_cases(session, registry, [case_id], replay=replay, damaged=damaged_merchants))
            if checks[0].damage is not None and checks[0].events == 0 and not _known(session, case_id):
                raise NotFoundError("case", case_id)
        _tally(report, checks, found, progress)
        return report

    # A few logs (only merchants ever flagged have one): every one, before the cases.
    merchants(None)

    with snapshot_read(db) as session:
        report.cases_total = session.execute(
            select(func.count()).select_from(_cases_since(since).subquery())
        ).scalar_one()
    after = 0
    while True:
        with snapshot_read(db) as session:
            page = session.execute(
                _cases_since(since).where(CASES.c.pk > after).order_by(CASES.c.pk).limit(page_size)
            ).all()
            if not page:
                break
            checks = list(
                check_cases(session, registry, [row.id for row in page], replay=replay, damaged=damaged_merchants)
            )
        after = page[-1].pk
        _tally(report, checks, found, progress)
    if since is None:
        with snapshot_read(db) as session:
            for damage in missing_cases(session):
                found(damage)
    if progress is not None:
        progress(report)
    return report


def _cases_since(since: datetime | None) -> Any:
    stmt = select(CASES.c.pk, CASES.c.id)
    return stmt.where(CASES.c.updated_at >= since) if since is not None else stmt


def _tally(
    report: VerifyReport,
    checks: Sequence[CaseCheck],
    found: Callable[[Finding], None],
    progress: Callable[[VerifyReport], None] | None,
) -> None:
    for check in checks:
        report.cases_checked += 1
        report.events_checked += check.events
        if check.damage is not None:
            found(check.damage)
    if progress is not None:
        progress(report)


def _known(session: Session, case_id: str) -> bool:
    """Has the case a row, or did a checkpoint see it? (Its events were looked at already.)"""
    in_cases = select(CASES.c.id).where(CASES.c.id == case_id)
    in_heads = select(CHECKPOINT_HEADS.c.case_id).where(CHECKPOINT_HEADS.c.case_id == case_id).limit(1)
    return session.execute(in_cases).first() is not None or session.execute(in_heads).first() is not None


# --- cases -------------------------------------------------------------------------------------


def check_cases(
    session: Session,
    registry: WorkflowRegistry,
    case_ids: Sequence[str],
    *,
    replay: bool = True,
    damaged: Collection[str] = (),
) -> Iterator[CaseCheck]:
    """Check a page of cases in the caller's transaction: chain, replay, projection, the
    standing of its merchant's log each decision recorded (against the log as this
    transaction sees it; not against the logs in ``damaged``, already reported), and the
    heads every checkpoint recorded for them. Events are streamed one case at a time.

    Chain-only checks (``replay=False``) read four columns and run
    :func:`first_chain_break`; only a case that does not hold is read again in full for
    :func:`check_case_rows` to name its damage.
    """
    ids = list(dict.fromkeys(case_ids))
    case_rows: dict[str, CaseRowTuple] = {
        r[0]: tuple(r[1:]) for r in session.execute(select(CASES.c.id, *CASE_ROW_COLUMNS).where(CASES.c.id.in_(ids)))
    }
    logs = merchant_flags_by_seq(session, ids, damaged) if replay else None
    heads: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for r in session.execute(
        select(
            CHECKPOINT_HEADS.c.case_id, CHECKPOINT_HEADS.c.checkpoint, CHECKPOINT_HEADS.c.seq, CHECKPOINT_HEADS.c.hash
        )
        .where(CHECKPOINT_HEADS.c.case_id.in_(ids))
        .order_by(CHECKPOINT_HEADS.c.case_id, CHECKPOINT_HEADS.c.checkpoint)
    ):
        heads[r.case_id].append((r.checkpoint, r.seq, r.hash))
    columns = CHAIN_COLUMNS if not replay else EVENT_COLUMNS
    stmt = (
        select(EVENTS.c.case_id, *columns)
        .where(EVENTS.c.case_id.in_(ids))
        .order_by(EVENTS.c.case_id, EVENTS.c.seq)
        .execution_options(**_STREAM)
    )
    seen: set[str] = set()
    for case_id, group in groupby(session.execute(stmt), key=lambda r: r[0]):
        seen.add(case_id)
        case_row, case_heads = case_rows.get(case_id), heads.get(case_id, [])
        if replay:
            rows: list[EventTuple] = [tuple(r[1:]) for r in group]
            yield _check_one(session, registry, case_id, rows, case_row, case_heads, replay, logs)
            continue
        chain: list[ChainRow] = [tuple(r[1:]) for r in group]
        if _chain_holds(case_id, chain, case_row):
            hashes = {seq: hash_ for seq, _body, _prev, hash_ in chain}
            yield CaseCheck(case_id, len(chain), compare_with_heads(case_id, hashes, case_heads))
        else:
            yield _check_one(session, registry, case_id, event_rows(session, case_id), case_row, case_heads, replay)
    for case_id in ids:
        if case_id not in seen:
            yield _check_one(session, registry, case_id, [], case_rows.get(case_id), heads.get(case_id, []), replay)


def _chain_holds(case_id: str, chain: list[ChainRow], case_row: CaseRowTuple | None) -> bool:
    """Does the chain link all through and end where the case row says it stands?"""
    if case_row is None or first_chain_break(case_id, chain) is not None:
        return False
    version: int = case_row[0]
    head_hash: str = case_row[1]
    return len(chain) == version and (chain[-1][3] if chain else GENESIS_HASH) == head_hash


def _check_one(
    session: Session,
    registry: WorkflowRegistry,
    case_id: str,
    rows: list[EventTuple],
    case_row: CaseRowTuple | None,
    heads: list[tuple[int, int, str]],
    replay: bool,
    merchant_logs: Mapping[str, Mapping[int, bool] | None] | None = None,
) -> CaseCheck:
    chain = check_case_rows(session, registry, case_id, rows, case_row, replay=replay, merchant_logs=merchant_logs)
    checkpointed = compare_with_heads(case_id, {row[1]: row[4] for row in rows}, heads)
    # One finding per case: the earliest seq; on a tie the chain's reading is the more specific.
    damage = chain
    if checkpointed is not None and (chain is None or checkpointed.seq < chain.seq):
        damage = checkpointed
    return CaseCheck(case_id, len(rows), damage)


def merchant_flags_by_seq(
    session: Session, case_ids: Sequence[str], damaged: Collection[str] = ()
) -> dict[str, Mapping[int, bool] | None]:
    """For the merchants of these cases that have a log: whether flagged after each seq (None
    for a log in ``damaged``). Read in the caller's transaction, the same instant as the
    cases' events, so a decision never relies on a merchant event this read cannot see."""
    merchants = select(CASES.c.merchant_id).where(CASES.c.id.in_(list(case_ids)))
    logs: dict[str, Mapping[int, bool] | None] = {}
    for merchant_id, rows in groupby(
        session.execute(
            select(MERCHANT_EVENTS.c.merchant_id, MERCHANT_EVENTS.c.seq, MERCHANT_EVENTS.c.type)
            .where(MERCHANT_EVENTS.c.merchant_id.in_(merchants))
            .order_by(MERCHANT_EVENTS.c.merchant_id, MERCHANT_EVENTS.c.seq)
        ),
        key=lambda r: r[0],
    ):
        logs[merchant_id] = None if merchant_id in damaged else {r.seq: r.type == "flag_raised" for r in rows}
    return logs


def compare_with_heads(case_id: str, by_seq: dict[int, str], heads: Iterable[tuple[int, int, str]]) -> Damage | None:
    """Does the log still hold, at each checkpointed seq, the hash a checkpoint recorded?

    This catches what the chain alone cannot: a tail dropped, or a history rewritten
    with every hash recomputed and the projection fixed, after a checkpoint saw it.
    """
    last = max(by_seq, default=0)
    first: Damage | None = None
    for number, seq, hash_ in heads:
        if seq not in by_seq:
            if seq > last:
                damage = Damage(
                    case_id, last + 1, "truncated", f"log ends at seq {last}; checkpoint #{number} saw {seq}"
                )
            else:
                damage = Damage(case_id, seq, "deleted", f"seq {seq}, seen by checkpoint #{number}, is gone")
        elif by_seq[seq] != hash_:
            damage = Damage(case_id, seq, "changed", f"seq {seq} has another hash than checkpoint #{number} saw")
        else:
            continue
        if first is None or damage.seq < first.seq:
            first = damage
    return first


def missing_cases(session: Session) -> Iterator[Damage]:
    """Cases the case walk cannot see: events without a case row, and cases a checkpoint
    saw whose row and events are both gone."""
    orphaned = session.execute(
        select(EVENTS.c.case_id)
        .where(~exists().where(CASES.c.id == EVENTS.c.case_id))
        .group_by(EVENTS.c.case_id)
        .order_by(EVENTS.c.case_id)
    ).scalars()
    for case_id in orphaned:
        yield Damage(case_id, 0, "deleted", "the case row is missing; its events remain")
    lost = session.execute(
        select(CHECKPOINT_HEADS.c.case_id, func.min(CHECKPOINT_HEADS.c.checkpoint).label("since"))
        .where(
            ~exists().where(CASES.c.id == CHECKPOINT_HEADS.c.case_id),
            ~exists().where(EVENTS.c.case_id == CHECKPOINT_HEADS.c.case_id),
        )
        .group_by(CHECKPOINT_HEADS.c.case_id)
        .order_by(CHECKPOINT_HEADS.c.case_id)
    )
    for row in lost:
        yield Damage(row.case_id, 1, "deleted", f"checkpoint #{row.since} saw this case; its row and log are gone")


# --- merchants ---------------------------------------------------------------------------------


_MERCHANT_EVENT_COLUMNS = tuple(MERCHANT_EVENTS.c[c.name] for c in EVENT_COLUMNS)


def check_merchants(
    session: Session, merchant_ids: Sequence[str] | None = None, *, replay: bool = True
) -> Iterator[MerchantCheck]:
    """Check merchants' logs (every one, or ``merchant_ids``) in the caller's transaction:
    chain, fold, the ``merchants`` row, and the heads every checkpoint recorded for them.
    Each log is read whole: a merchant's log holds one event per flag raised or cleared."""
    ids = merchant_ids
    if ids is None:
        logged = select(MERCHANT_EVENTS.c.merchant_id).distinct()
        rows = select(MERCHANTS.c.merchant_id)
        checkpointed = select(CHECKPOINT_MERCHANT_HEADS.c.merchant_id).distinct()
        ids = sorted(
            set(session.execute(logged).scalars())
            | set(session.execute(rows).scalars())
            | set(session.execute(checkpointed).scalars())
        )
    for merchant_id in ids:
        rows_ = [
            tuple(r)
            for r in session.execute(
                select(*_MERCHANT_EVENT_COLUMNS)
                .where(MERCHANT_EVENTS.c.merchant_id == merchant_id)
                .order_by(MERCHANT_EVENTS.c.seq)
            )
        ]
        head = session.execute(
            select(MERCHANTS.c.seq, MERCHANTS.c.head_hash, MERCHANTS.c.flagged).where(
                MERCHANTS.c.merchant_id == merchant_id
            )
        ).first()
        heads = [
            (r.checkpoint, r.seq, r.hash)
            for r in session.execute(
                select(
                    CHECKPOINT_MERCHANT_HEADS.c.checkpoint,
                    CHECKPOINT_MERCHANT_HEADS.c.seq,
                    CHECKPOINT_MERCHANT_HEADS.c.hash,
                )
                .where(CHECKPOINT_MERCHANT_HEADS.c.merchant_id == merchant_id)
                .order_by(CHECKPOINT_MERCHANT_HEADS.c.checkpoint)
            )
        ]
        if not rows_ and head is None and not heads:
            continue  # a merchant without a log, asked for by name: nothing to check
        yield MerchantCheck(merchant_id, len(rows_), _check_merchant(merchant_id, rows_, head, heads, replay))


def _check_merchant(
    merchant_id: str,
    rows: list[Any],
    head: Any,
    heads: list[tuple[int, int, str]],
    replay: bool,
) -> MerchantDamage | None:
    row: MerchantRowTuple | None = (head.seq, head.head_hash, head.flagged) if head is not None else None
    if row is None and not rows:
        number = heads[0][0]
        return MerchantDamage(
            merchant_id, 1, "deleted", f"checkpoint #{number} saw this merchant's log; its row and log are gone"
        )
    chain = check_merchant_rows(merchant_id, rows, row, replay=replay)
    checkpointed = compare_with_heads(merchant_id, {r[1]: r[4] for r in rows}, heads)
    if checkpointed is not None and (chain is None or checkpointed.seq < chain.seq):
        return MerchantDamage(merchant_id, checkpointed.seq, checkpointed.kind, checkpointed.detail)
    return chain


# --- checkpoints -------------------------------------------------------------------------------


def check_checkpoints(
    session: Session, *, trusted_keys: Iterable[str] | None = None, all_roots: bool = False
) -> CheckpointCheck:
    """Every checkpoint's document, hash, signature, numbering and chaining; every
    checkpoint's stored heads against its signed delta; and the latest checkpoint's
    Merkle root recomputed from the stored heads and from the current log."""
    result = CheckpointCheck()
    keys = list(trusted_keys) if trusted_keys is not None else None
    signed_deltas: dict[int, tuple[int, str]] = {}
    merchant_deltas: dict[int, tuple[int, str]] = {}
    latest: Checkpoint | None = None
    for checkpoint in iter_checkpoints(session):
        for kind, detail in check_checkpoint(checkpoint, latest, trusted_keys=keys):
            result.problems.append(CheckpointProblem(checkpoint.number, kind, detail))
        signed_deltas[checkpoint.number] = (checkpoint.delta_count, checkpoint.delta_hash)
        # A v1 checkpoint signed no merchant heads: none may be stored for it.
        merchant_deltas[checkpoint.number] = (
            (checkpoint.merchant_delta_count or 0, checkpoint.merchant_delta_hash or "")
            if checkpoint.signs_merchants
            else EMPTY_DELTA
        )
        latest = checkpoint
        result.checked += 1
    if latest is None:
        return result
    result.latest = latest.number
    result.problems.extend(_check_deltas(session, signed_deltas))
    result.problems.extend(_check_deltas(session, merchant_deltas, MERCHANT_LOGS))
    numbers = list(signed_deltas) if all_roots else [latest.number]
    for checkpoint in _checkpoints(session, numbers):
        result.problems.extend(check_root(session, checkpoint, against_log=checkpoint.number == latest.number))
        result.roots_verified.append(checkpoint.number)
    return result


def _checkpoints(session: Session, numbers: list[int]) -> Iterator[Checkpoint]:
    wanted = set(numbers)
    for checkpoint in iter_checkpoints(session):
        if checkpoint.number in wanted:
            yield checkpoint


def _check_deltas(
    session: Session, signed: dict[int, tuple[int, str]], ledger: Ledger = CASE_LOGS
) -> Iterator[CheckpointProblem]:
    """The head rows stored per checkpoint must be exactly the delta it signed; this
    protects every checkpoint's heads in one pass over the table."""
    dialect = session.get_bind().dialect.name
    heads, what = ledger.heads, "heads" if ledger is CASE_LOGS else "merchant heads"
    key = heads.c[ledger.key]
    order = key.collate("C") if dialect == "postgresql" else key
    stmt = (
        select(heads.c.checkpoint, key, heads.c.seq, heads.c.hash)
        .order_by(heads.c.checkpoint, order)
        .execution_options(**_STREAM)
    )
    pending = dict(signed)
    for number, rows in groupby(session.execute(stmt), key=lambda r: r[0]):
        got = delta_digest((Head(r[1], r.seq, r.hash) for r in rows), ledger.leaf)
        want = pending.pop(number, None)
        if want is None:
            yield CheckpointProblem(
                number, "delta", f"{what} are stored for checkpoint #{number}, which does not exist"
            )
        elif got != want:
            yield CheckpointProblem(
                number, "delta", f"the {got[0]} stored {what} do not hash to the signed delta of {want[0]} {what}"
            )
    for number, (count, _hash) in pending.items():
        if count:
            yield CheckpointProblem(number, "delta", f"the checkpoint signed {count} {what}; none are stored")


def check_root(
    session: Session, checkpoint: Checkpoint | None = None, *, against_log: bool = True
) -> list[CheckpointProblem]:
    """Recompute a checkpoint's root (default: the latest) from its stored heads and, when
    ``against_log``, from the hashes the current log holds at the checkpointed seqs."""
    if checkpoint is None:
        checkpoint = latest_checkpoint(session)
        if checkpoint is None:
            return []
    signed = [(CASE_LOGS, checkpoint.merkle_root, checkpoint.case_count, checkpoint.event_count)]
    if checkpoint.signs_merchants:
        signed.append(
            (
                MERCHANT_LOGS,
                checkpoint.merchant_root or "",
                checkpoint.merchant_count or 0,
                checkpoint.merchant_event_count or 0,
            )
        )
    problems: list[CheckpointProblem] = []
    for ledger, root, count, events in signed:
        problems.extend(_root_problems(session, checkpoint.number, ledger, (root, count, events), against_log))
    return problems


def _root_problems(
    session: Session, number: int, ledger: Ledger, signed: tuple[str, int, int], against_log: bool
) -> Iterator[CheckpointProblem]:
    """The ledger's tree as checkpoint ``number`` stored it against the signed (root, logs,
    events), and (``against_log``) against the hashes its logs hold now at those seqs."""
    dialect = session.get_bind().dialect.name
    sub = heads_as_of(number, ledger).subquery()
    key = sub.c[ledger.key]
    order = key.collate("C") if dialect == "postgresql" else key
    if against_log:
        log = ledger.events
        stmt = select(key, sub.c.seq, sub.c.hash, log.c.hash.label("log_hash")).select_from(
            sub.outerjoin(log, and_(log.c[ledger.key] == key, log.c.seq == sub.c.seq))
        )
    else:
        stmt = select(key, sub.c.seq, sub.c.hash, sub.c.hash.label("log_hash"))
    stored, current = MerkleAccumulator(), MerkleAccumulator()
    events = differing = 0
    for row in session.execute(stmt.order_by(order).execution_options(**_STREAM)):
        stored.add(leaf_hash(ledger.leaf(row[0], row.seq, row.hash)))
        current.add(leaf_hash(ledger.leaf(row[0], row.seq, row.log_hash or "")))
        events += row.seq
        differing += row.log_hash != row.hash
    root, count, signed_events = signed
    heads, logs = ("heads", "cases") if ledger is CASE_LOGS else ("merchant heads", "merchants")
    if stored.root().hex() != root:
        yield CheckpointProblem(number, "root", f"the stored {heads} do not give the signed Merkle root")
    if (stored.size, events) != (count, signed_events):
        yield CheckpointProblem(
            number,
            "root",
            f"the stored {heads} cover {stored.size} {logs} and {events} events; "
            f"the checkpoint signed {count} and {signed_events}",
        )
    if against_log and current.root().hex() != root:
        yield CheckpointProblem(
            number,
            "log",
            f"the current {'log gives' if ledger is CASE_LOGS else 'merchant logs give'} another root: "
            f"{differing} checkpointed {heads} changed or are gone",
        )
