"""Erasure and retention: a person's data destroyed, every proof left verifying.

Erasing a case (:func:`_erase_case`) deletes its value rows, destroys its data key (the
``case_keys`` row stays as a tombstone with the time), deletes evidence content no other case
references and any stored HTTP answer naming the case, and appends ``personal_data_erased``
(which refs, which key, the basis, who approved; no personal data). The events keep their
markers, so every hash, checkpoint and replay stands; renderings show ``[erased]``.

:func:`erase_subject` erases every case of a consumer and then nulls their pseudonym's mapping,
holding the pseudonym's row from before it lists the cases, as a filing holds it from its read
(:func:`_hold_subject`): a filing under it is listed, or comes after and files under a new one.
A case still open, or under legal hold, is not erased yet: ``erasure_deferred`` records why,
the ``erasures`` row keeps the case as deferred, and :func:`sweep_personal_data` (run by the
ticker, like the SLA sweep) carries it out once the case is closed and released. The same sweep
erases every case a configured time after it closed (retention), unless held. On SQLite the
deleted bytes are overwritten (``secure_delete``) and the WAL is checkpointed and truncated
(:func:`_scrub`), so neither file keeps what was erased.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlmodel import Session

from cases.commands import CommandContext, UnitOfWork
from cases.queries import load_case
from notify.plan import inbox_keys
from store.db import Database
from store.tables import (
    BLOBS,
    CASE_KEYS,
    CASES,
    CONTACTS,
    ERASURES,
    EVIDENCE,
    IDEMPOTENCY_KEYS,
    ORDER_REFS,
    PERSONAL_VALUES,
    SUBJECTS,
)
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.events import LEGAL_HOLD, Event
from workflow.model import SYSTEM, Actor, to_iso
from workflow.text import free_text, identifier

log = logging.getLogger("disputes.privacy")

RETENTION_BASIS = "retention period ended"


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    """What one erasure did: the pseudonym, the cases erased now, those deferred (with why)."""

    erasure_id: int | None
    subject: str | None
    erased: tuple[str, ...] = ()
    deferred: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.subject is not None and not self.deferred


@dataclass(frozen=True, slots=True)
class ErasureRecord:
    """A row of ``erasures``: what a restore carries out again when it is newer than its backup."""

    erasure_id: int
    subject: str
    basis: str
    approved_by: str
    requested_at: datetime
    updated_at: datetime
    status: str
    erased: tuple[str, ...]
    deferred: dict[str, str]


def _require_privacy(service: CommandContext) -> None:
    if service.privacy is None:
        raise InvalidCommandError("this engine keeps no personal data apart (no key provider): nothing to erase")


def erase_subject(service: CommandContext, *, user_id: str, basis: str, approved_by: str) -> ErasureOutcome:
    """Erase a consumer's personal data (the marketplace's user id): every closed case of theirs
    now, open or held cases when they close and are released. One transaction; then the
    database files are scrubbed. NotFoundError when the user has no pseudonym (never filed, or
    already erased)."""
    _require_privacy(service)
    basis = free_text(basis, "basis", limit=200)
    approved_by = identifier(approved_by, "approved_by")
    assert service.privacy is not None
    privacy = service.privacy

    def find(session: Session) -> str | None:
        return privacy.subject_of(session, user_id)

    with service.db.read() as session:
        subject = find(session)
    if subject is None:
        raise NotFoundError("subject", user_id)
    return erase_pseudonym(service, subject=subject, basis=basis, approved_by=approved_by)


def erase_pseudonym(
    service: CommandContext, *, subject: str, basis: str, approved_by: str, requested_at: datetime | None = None
) -> ErasureOutcome:
    """Erase the data of the consumer known to the log as ``subject`` (what :func:`erase_subject`
    and a restore re-applying a newer erasure call). ``requested_at``: when it was first asked
    (a re-applied erasure keeps its original time)."""
    _require_privacy(service)
    now = service.clock.now()

    def work(session: Session) -> ErasureOutcome:
        _hold_subject(session, subject)
        case_ids = _cases_of(session, subject)
        erased: list[str] = []
        deferred: dict[str, str] = {}
        row = session.execute(
            insert(ERASURES)
            .values(
                subject=subject,
                basis=basis,
                approved_by=approved_by,
                requested_at=requested_at or now,
                updated_at=now,
                status="deferred",
                erased="[]",
                deferred="{}",
            )
            .returning(ERASURES.c.id)
        )
        erasure_id = int(row.scalar_one())
        for case_id in case_ids:
            why = _erase_or_defer(session, service, case_id, basis, approved_by, erasure_id, now)
            if why is None:
                erased.append(case_id)
            else:
                deferred[case_id] = why
        _finish(session, erasure_id, subject, erased, deferred, now)
        return ErasureOutcome(erasure_id, subject, tuple(erased), deferred)

    outcome = service.db.run_write(work)
    _after_commit(service, outcome.erased)
    log.info(
        "erasure %s of %s: %d cases erased, %d deferred",
        outcome.erasure_id,
        subject,
        len(outcome.erased),
        len(outcome.deferred),
    )
    return outcome


def _hold_subject(session: Session, subject: str) -> None:
    """Lock the pseudonym's row before its cases are listed (FOR UPDATE on PostgreSQL; SQLite
    serialises writers). A writer under it holds the row from its read until it commits
    (cases/personal.py, ``_SUBJECT_HELD``): one that read it first has committed when this
    returns, and its case is listed; one that reads it later waits, and finds it forgotten if
    this transaction forgets it. Taken before any case's rows, by every erasure: two of them
    wait for each other here, not in the middle."""
    session.execute(select(SUBJECTS.c.subject).where(SUBJECTS.c.subject == subject).with_for_update())


def _cases_of(session: Session, subject: str) -> list[str]:
    return list(
        session.execute(select(CASES.c.id).where(CASES.c.consumer_id == subject).order_by(CASES.c.pk)).scalars()
    )


def _finish(
    session: Session, erasure_id: int, subject: str, erased: Sequence[str], deferred: dict[str, str], now: datetime
) -> None:
    """Record what the erasure did; when nothing is left deferred, forget who the subject is."""
    session.execute(
        update(ERASURES)
        .where(ERASURES.c.id == erasure_id)
        .values(
            status="deferred" if deferred else "done",
            erased=json.dumps(sorted(erased)),
            deferred=json.dumps(deferred, sort_keys=True),
            updated_at=now,
        )
    )
    if not deferred:
        _forget_subject(session, subject, now)


def _append(session: Session, service: CommandContext, case_id: str, events: list[Event], now: datetime) -> None:
    """Append system events to a case (no policy decides them: the erasure was approved)."""
    before, _standing = load_case(session, case_id)
    definition = service.registry.machine(before.workflow_version, session).definition
    work = UnitOfWork(service, definition, before, case_id, now)
    work.add(events, SYSTEM)
    work.write(session)


def _erase_or_defer(
    session: Session,
    service: CommandContext,
    case_id: str,
    basis: str,
    approved_by: str,
    erasure_id: int,
    now: datetime,
) -> str | None:
    """Erase one case now, or say why not (and record ``erasure_deferred``). None: erased."""
    # The key row first (:func:`_erase_case`): erased by the sweep meanwhile, it is seen so here.
    key = session.execute(
        select(CASE_KEYS.c.erased_at, CASE_KEYS.c.wrapped).where(CASE_KEYS.c.case_id == case_id).with_for_update()
    ).first()
    snapshot, _standing = load_case(session, case_id)
    if key is not None and key.wrapped is None:
        return None  # erased before, and nothing written since
    reason = None
    if snapshot.closed_at is None:
        reason = "the case is open"
    elif LEGAL_HOLD in snapshot.flags:
        reason = "the case is under legal hold"
    if reason is not None:
        data = {"reason": reason, "basis": basis, "approved_by": approved_by, "erasure": erasure_id}
        _append(session, service, case_id, [Event("erasure_deferred", data)], now)
        return reason
    _erase_case(session, service, case_id, basis=basis, approved_by=approved_by, erasure_id=erasure_id, now=now)
    return None


def _erase_case(
    session: Session,
    service: CommandContext,
    case_id: str,
    *,
    basis: str,
    approved_by: str,
    erasure_id: int | None,
    now: datetime,
) -> None:
    if service.db.dialect == "sqlite":
        # Deleted cells and freed pages are overwritten with zeros, not left in the file.
        session.execute(text("PRAGMA secure_delete = ON"))
    # The key row is locked before the rows it opens are deleted, by every erasure as by the
    # sweep's claim (FOR UPDATE SKIP LOCKED): two erasing one case wait for each other on it,
    # not each on a row the other deleted (a deadlock on PostgreSQL).
    kek_id = session.execute(
        select(CASE_KEYS.c.kek_id).where(CASE_KEYS.c.case_id == case_id).with_for_update()
    ).scalar()
    refs = sorted(session.execute(select(PERSONAL_VALUES.c.ref).where(PERSONAL_VALUES.c.case_id == case_id)).scalars())
    session.execute(delete(PERSONAL_VALUES).where(PERSONAL_VALUES.c.case_id == case_id))
    session.execute(delete(ORDER_REFS).where(ORDER_REFS.c.case_id == case_id))
    session.execute(
        update(CASE_KEYS).where(CASE_KEYS.c.case_id == case_id).values(wrapped=None, kek_id=None, erased_at=now)
    )
    # Evidence content no other case references.
    digests = select(EVIDENCE.c.sha256).where(EVIDENCE.c.case_id == case_id)
    shared = select(EVIDENCE.c.sha256).where(EVIDENCE.c.case_id != case_id)
    session.execute(delete(BLOBS).where(and_(BLOBS.c.sha256.in_(digests), BLOBS.c.sha256.not_in(shared))))
    # Answers kept for Idempotency-Key retries that name the case hold its texts as sent.
    if service.db.dialect == "postgresql":
        found = func.strpos(func.encode(IDEMPOTENCY_KEYS.c.response_body, "escape"), case_id)
    else:
        found = func.instr(IDEMPOTENCY_KEYS.c.response_body, case_id.encode("ascii"))
    session.execute(delete(IDEMPOTENCY_KEYS).where(found > 0))
    data: dict[str, Any] = {
        "refs": refs,
        "key": {"case_id": case_id, "kek_id": kek_id, "destroyed_at": to_iso(now)},
        "basis": basis,
        "approved_by": approved_by,
    }
    if erasure_id is not None:
        data["erasure"] = erasure_id
    _append(session, service, case_id, [Event("personal_data_erased", data)], now)


def _after_commit(service: CommandContext, case_ids: Sequence[str]) -> None:
    if not case_ids:
        return
    assert service.privacy is not None
    service.privacy.forget(case_ids)
    _scrub(service.db)


def _scrub(db: Database) -> None:
    """SQLite: fold the WAL into the database file and truncate it, so the log of page images
    holds nothing erased (a reader still on an old snapshot can delay it: tried a few times)."""
    for attempt in range(5):
        if db.truncate_wal():
            return
        time.sleep(0.05 * (attempt + 1))
    log.warning("the WAL could not be truncated after an erasure (readers busy); the next checkpoint will")


# --- legal holds --------------------------------------------------------------------------


def set_legal_hold(service: CommandContext, *, case_id: str, reason: str, actor: Actor) -> None:
    """Hold a case's personal data: no erasure or retention touches it until released."""
    reason = free_text(reason, "reason", limit=2000)

    def work(session: Session) -> None:
        snapshot, _ = load_case(session, case_id)
        if LEGAL_HOLD not in snapshot.flags:
            _append(
                session,
                service,
                case_id,
                [Event("legal_hold_set", {"reason": reason, "by": actor.id})],
                service.clock.now(),
            )

    service.db.run_write(work)


def release_legal_hold(service: CommandContext, *, case_id: str, reason: str, actor: Actor) -> None:
    reason = free_text(reason, "reason", limit=2000)

    def work(session: Session) -> None:
        snapshot, _ = load_case(session, case_id)
        if LEGAL_HOLD in snapshot.flags:
            data = {"reason": reason, "by": actor.id}
            _append(session, service, case_id, [Event("legal_hold_released", data)], service.clock.now())

    service.db.run_write(work)


# --- the sweep: deferred erasures and retention -------------------------------------------


def sweep_personal_data(service: CommandContext, *, keep_for: timedelta, batch: int = 100) -> list[str]:
    """Carry out deferred erasures whose cases are now closed and not held, and erase every case
    closed ``keep_for`` ago or earlier and not held. Returns the case ids erased. Claims rows with
    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers), so concurrent tickers
    share the work."""
    if service.privacy is None:
        return []
    now = service.clock.now()
    erased = _complete_deferred(service, now)
    while True:
        done, busy = service.db.run_write(
            lambda session: _retention_batch(session, service, now - keep_for, now, batch)
        )
        if busy:
            # Pseudonyms another transaction held: decided once it is done, holding no case key.
            service.db.run_write(partial(_forget_finished_subjects, subjects=busy, now=now, wait=True))
        _after_commit(service, done)
        erased.extend(done)
        if len(done) < batch:
            return erased


def _retention_batch(
    session: Session, service: CommandContext, closed_before: datetime, now: datetime, batch: int
) -> tuple[list[str], list[str]]:
    """The cases erased, and the pseudonyms of theirs left to check (:func:`_forget_finished_subjects`)."""
    stmt = (
        select(CASES.c.id)
        .join(CASE_KEYS, CASE_KEYS.c.case_id == CASES.c.id)
        .where(
            CASES.c.closed_at.is_not(None),
            CASES.c.closed_at <= closed_before,
            CASE_KEYS.c.wrapped.is_not(None),
        )
        .order_by(CASES.c.closed_at)
        .limit(batch)
    )
    if service.db.dialect == "postgresql":
        stmt = stmt.with_for_update(of=CASE_KEYS, skip_locked=True)
    done: list[str] = []
    for case_id in session.execute(stmt).scalars():
        snapshot, _ = load_case(session, case_id)
        if LEGAL_HOLD in snapshot.flags:
            continue
        _erase_case(session, service, case_id, basis=RETENTION_BASIS, approved_by="system", erasure_id=None, now=now)
        done.append(case_id)
    if not done:
        return done, []
    subjects = set(session.execute(select(CASES.c.consumer_id).where(CASES.c.id.in_(done))).scalars())
    return done, _forget_finished_subjects(session, subjects, now, wait=False)


def _forget_subject(session: Session, subject: str, now: datetime) -> None:
    """Forget who the subject is (their mapping nulled) and delete their notification contact
    settings (e-mail address, language: personal data kept beside the log, outbox/inbox.py)."""
    session.execute(update(SUBJECTS).where(SUBJECTS.c.subject == subject).values(user_id=None, erased_at=now))
    session.execute(delete(CONTACTS).where(CONTACTS.c.recipient.in_(inbox_keys(subject, "consumer", None))))


def _forget_finished_subjects(session: Session, subjects: Collection[str], now: datetime, *, wait: bool) -> list[str]:
    """A subject all of whose cases are erased is forgotten (their mapping nulled). The rows are
    locked before the keys are counted (as an erasure does, :func:`_hold_subject`): a filing
    under one has committed and is counted, or waits and finds it forgotten. Not ``wait``: the
    caller holds case keys, which an erasure holding a row may be waiting for, so a row another
    transaction holds is skipped, not waited for (no deadlock); the skipped ones are returned."""
    held = (
        select(SUBJECTS.c.subject)
        .where(SUBJECTS.c.subject.in_(sorted(subjects)))
        .order_by(SUBJECTS.c.subject)
        .with_for_update(skip_locked=not wait)
    )
    locked = list(session.execute(held).scalars())
    for subject in locked:
        live = session.execute(
            select(func.count())
            .select_from(CASE_KEYS)
            .join(CASES, CASES.c.id == CASE_KEYS.c.case_id)
            .where(CASES.c.consumer_id == subject, CASE_KEYS.c.wrapped.is_not(None))
        ).scalar_one()
        if live == 0:
            session.execute(update(SUBJECTS).where(SUBJECTS.c.subject == subject).values(user_id=None, erased_at=now))
    return sorted(set(subjects) - set(locked))


def _complete_deferred(service: CommandContext, now: datetime) -> list[str]:
    with service.db.read() as session:
        pending = [_record(r) for r in session.execute(select(ERASURES).where(ERASURES.c.status == "deferred")).all()]
    erased: list[str] = []
    for record in pending:

        def work(session: Session, record: ErasureRecord = record) -> list[str]:
            _hold_subject(session, record.subject)
            done: list[str] = []
            still: dict[str, str] = {}
            for case_id, reason in record.deferred.items():
                snapshot, _ = load_case(session, case_id)
                if snapshot.closed_at is None or LEGAL_HOLD in snapshot.flags:
                    still[case_id] = reason
                    continue
                _erase_case(
                    session,
                    service,
                    case_id,
                    basis=record.basis,
                    approved_by=record.approved_by,
                    erasure_id=record.erasure_id,
                    now=now,
                )
                done.append(case_id)
            if done and not still:
                # Cases filed under the pseudonym since the erasure was asked are the subject's
                # too: erased or deferred before it is forgotten, or they would be left under a
                # forgotten pseudonym with their keys alive.
                known = {*record.erased, *record.deferred}
                for case_id in _cases_of(session, record.subject):
                    if case_id in known:
                        continue
                    why = _erase_or_defer(
                        session, service, case_id, record.basis, record.approved_by, record.erasure_id, now
                    )
                    if why is None:
                        done.append(case_id)
                    else:
                        still[case_id] = why
            if done:
                _finish(session, record.erasure_id, record.subject, [*record.erased, *done], still, now)
            return done

        done = service.db.run_write(work)
        _after_commit(service, done)
        erased.extend(done)
    return erased


# --- the record, for restores -------------------------------------------------------------


def _record(row: object) -> ErasureRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return ErasureRecord(
        erasure_id=int(r["id"]),
        subject=r["subject"],
        basis=r["basis"],
        approved_by=r["approved_by"],
        requested_at=r["requested_at"],
        updated_at=r["updated_at"],
        status=r["status"],
        erased=tuple(json.loads(r["erased"])),
        deferred=dict(json.loads(r["deferred"])),
    )


def erasures_since(db: Database, since: datetime) -> list[ErasureRecord]:
    """Every erasure asked for, or progressed, at or after ``since`` (oldest first): what a
    restore from a backup taken at ``since`` must carry out again."""
    with db.read() as session:
        rows = session.execute(
            select(ERASURES).where(ERASURES.c.updated_at >= since).order_by(ERASURES.c.requested_at, ERASURES.c.id)
        ).all()
    return [_record(r) for r in rows]


def reapply_erasures(service: CommandContext, records: Sequence[ErasureRecord]) -> list[ErasureOutcome]:
    """Carry ``records`` (from :func:`erasures_since` on the newer database) out again on this
    one, e.g. a restored backup: each subject's cases are erased or deferred as they stand here."""
    return [
        erase_pseudonym(
            service,
            subject=r.subject,
            basis=r.basis,
            approved_by=r.approved_by,
            requested_at=r.requested_at,
        )
        for r in records
    ]
