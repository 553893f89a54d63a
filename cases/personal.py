"""Personal data beside the chain: pseudonyms, each case's data key, the sealed values, and the
one way every rendering reads them back (:meth:`PersonalData.reveal`).

The write path (cases/commands.py) replaces personal fields by markers before sealing
(privacy/fields.py) and hands the secrets to :meth:`PersonalData.store`, in the command's
transaction: the case's data key is made (and wrapped by the key provider) with the case's
first value, and each value is sealed under it. Reading collects the markers and pseudonyms in
whatever is rendered, loads their rows in one query, opens them under the case keys (unwrapped
once and kept in a bounded cache) and substitutes values, or ``[erased]`` when the row or the
key is gone. Erasure and retention are cases/erasure.py.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    LargeBinary,
    String,
    and_,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from privacy.fields import markers_in, substitute
from privacy.keys import KeyProvider
from privacy.markers import ERASED, Secret, is_pseudonym, new_pseudonym, parse
from privacy.sealing import TamperedValueError, new_data_key, open_value, seal_value
from store.errors import AuditIntegrityError
from store.fastpath import Prepared, inserting
from store.tables import CASE_KEYS, INDEX_KEYS, ORDER_REFS, PERSONAL_VALUES, SUBJECTS
from workflow.errors import ConflictError, InvalidCommandError
from workflow.model import Actor, CaseSnapshot
from workflow.text import is_identifier

T = TypeVar("T")
# Unwrapped data keys kept in memory, most recently used first out last: an active case's
# commands and reads unwrap its key once.
KEY_CACHE_SIZE = 4096
# Values opened under a cached key, at most this many per case: every command's answer reveals
# the filing's texts again, and opening one is decrypting and hashing it again. Kept only while
# the case's key is (it opens them anyway), dropped with it and on erasure; looked up by marker
# and sealed bytes, so an altered or swapped row is opened and checked afresh.
OPENED_PER_CASE = 64

# Every command answers with its case revealed, so these statements are on the command path: compiled
# once (store/fastpath.py), with a fixed number of slots (unused ones match nothing) so that one
# compiled form serves any number of refs.
REF_SLOTS = 16
SUBJECT_SLOTS = 4
_VALUES = Prepared(
    select(PERSONAL_VALUES.c.ref, PERSONAL_VALUES.c.case_id, PERSONAL_VALUES.c.sealed).where(
        PERSONAL_VALUES.c.ref.in_([bindparam(f"r{i}") for i in range(REF_SLOTS)])
    )
)
_USERS = Prepared(
    select(SUBJECTS.c.subject, SUBJECTS.c.user_id).where(
        SUBJECTS.c.subject.in_([bindparam(f"s{i}") for i in range(SUBJECT_SLOTS)])
    )
)
# Values and user ids in one round trip (kind 0: a value row; kind 1: a subject's user id).
_LOOKUP = Prepared(
    union_all(
        select(
            literal_column("0").label("kind"),
            PERSONAL_VALUES.c.ref.label("key"),
            PERSONAL_VALUES.c.case_id,
            PERSONAL_VALUES.c.sealed,
            cast(null(), String(100)).label("user_id"),
        ).where(PERSONAL_VALUES.c.ref.in_([bindparam(f"r{i}") for i in range(REF_SLOTS)])),
        select(
            literal_column("1"),
            SUBJECTS.c.subject,
            cast(null(), String(40)),
            cast(null(), LargeBinary()),
            SUBJECTS.c.user_id,
        ).where(SUBJECTS.c.subject.in_([bindparam(f"s{i}") for i in range(SUBJECT_SLOTS)])),
    )
)
_SUBJECT_OF = Prepared(select(SUBJECTS.c.subject).where(SUBJECTS.c.user_id == bindparam("user_id")))
# What a writer under the pseudonym reads (a filing, a contact's setting): the row held until it
# commits (FOR SHARE on PostgreSQL; SQLite's writers are serialised). An erasure locks the row
# before it lists the cases (cases/erasure.py): it waits for a writer holding it, and lists that
# writer's case; a writer that comes second waits for the erasure, and the row no longer matches
# (its user id is nulled), so it makes a new pseudonym.
_SUBJECT_HELD = Prepared(
    select(SUBJECTS.c.subject).where(SUBJECTS.c.user_id == bindparam("user_id")).with_for_update(read=True)
)
_CASE_KEY = Prepared(select(CASE_KEYS.c.kek_id, CASE_KEYS.c.wrapped).where(CASE_KEYS.c.case_id == bindparam("case_id")))
_INSERT_VALUES = inserting(PERSONAL_VALUES)
_INSERT_CASE_KEY = inserting(CASE_KEYS)
# A drawn case id that is taken fails the filing when its events are written (and the filing
# draws another id): the order's row must not fail it first, hence DO NOTHING on the case id.
_ORDER_COLUMNS = ["case_id", "merchant_id", "token", "created_at"]
_INSERT_ORDER = {
    "postgresql": Prepared(pg_insert(ORDER_REFS).on_conflict_do_nothing(index_elements=["case_id"]), _ORDER_COLUMNS),
    "sqlite": Prepared(sqlite_insert(ORDER_REFS).on_conflict_do_nothing(index_elements=["case_id"]), _ORDER_COLUMNS),
}
# Keys of ``Session.info`` (one transaction's session): the command answers with its case
# revealed; the lookup that answer needs, queued with the command's writes (or its table, known
# without a lookup); the pseudonyms this transaction read with their user ids.
_ANSWERING = "personal_data.answering"
_PREFETCHED = "personal_data.prefetched"
_LEARNED = "personal_data.learned"
# Pseudonyms a filing took from memory (user id -> pseudonym), and then their rows' cursors,
# read with the filing's writes (PersonalData.confirm_subjects).
_CONFIRM = "personal_data.confirm"
_CONFIRMING = "personal_data.confirming"


def _rows(session: Session, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
    cursor = statement.execute(session.connection(), params)
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _upsert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT that can do nothing on conflict (rows two first writers may race for)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _split(texts: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Markers (ref -> marker) and pseudonyms among ``texts``."""
    markers: dict[str, str] = {}
    subjects: list[str] = []
    for text in texts:
        parsed = parse(text)
        if parsed is not None:
            markers[parsed[0]] = text
        elif is_pseudonym(text):
            subjects.append(text)
    return markers, subjects


def _lookup_params(markers: Mapping[str, str], subjects: Sequence[str]) -> dict[str, str] | None:
    """The parameters of the one-round-trip lookup (:data:`_LOOKUP`), or None when the texts
    need more slots than it has."""
    if len(markers) > REF_SLOTS or len(subjects) > SUBJECT_SLOTS:
        return None
    return {**next(_slots(sorted(markers), "r", REF_SLOTS)), **next(_slots(subjects, "s", SUBJECT_SLOTS))}


@dataclass(frozen=True, slots=True)
class _Prefetched:
    """What a command's answer reveals: the texts it covers, their markers, and the rows of its
    lookup (on PostgreSQL the cursor, read once the pipelined write has synced), or, when every
    text was known (:attr:`PersonalData._known`), the ``table`` itself and no lookup. ``case_id``
    and ``head``: the case and the head hash the table is remembered under once read."""

    value: Any
    texts: frozenset[str]
    markers: dict[str, str]
    rows: Any
    case_id: str
    head: str
    table: dict[str, str] | None = None


def _slots(values: Sequence[str], prefix: str, size: int) -> Iterator[dict[str, str]]:
    """``values`` in chunks of ``size`` as bind parameters, the last padded with "" (matches
    nothing); no values give one chunk of padding."""
    if not values:
        yield dict.fromkeys((f"{prefix}{i}" for i in range(size)), "")
        return
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield {f"{prefix}{i}": chunk[i] if i < len(chunk) else "" for i in range(size)}


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A personal value with what proves it against its marker: ``sha256(salt || value)``."""

    ref: str
    case_id: str
    salt: bytes
    value: str


class TamperedValue(AuditIntegrityError):
    """A personal value row does not open under its case's key or does not match its marker."""

    type_slug = "audit-integrity"


@dataclass
class PersonalData:
    """The personal data half of the case room: ``keys`` wraps data keys (a key file in
    development, a KMS in production: privacy/keys.py)."""

    keys: KeyProvider
    cache_size: int = KEY_CACHE_SIZE
    _cache: OrderedDict[str, bytes] = field(default_factory=OrderedDict, repr=False)
    # Per case whose key is cached: (marker, sealed bytes) -> (salt, value) (OPENED_PER_CASE).
    _opened: dict[str, dict[tuple[str, bytes], tuple[bytes, str]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Per case, what its last command's answer revealed, under the case's head hash then:
    # case_id -> (head_hash, text -> value or user id). See :meth:`prefetch`.
    _known: OrderedDict[str, tuple[str, dict[str, str]]] = field(default_factory=OrderedDict, repr=False)
    # Marketplace user id -> pseudonym, as filings read them (PostgreSQL; see subject_of).
    _subjects: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)

    _index_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    # --- blind indexes ----------------------------------------------------------

    def _index_key(self, session: Session, name: str, now: datetime) -> bytes:
        """The index key ``name``: made and stored wrapped on first use, unwrapped once."""
        key = self._index_keys.get(name)
        if key is not None:
            return key
        stored = select(INDEX_KEYS.c.kek_id, INDEX_KEYS.c.wrapped).where(INDEX_KEYS.c.name == name)
        row = session.execute(stored).first()
        if row is None:
            # Two first filings at once: the second's insert does nothing and it reads the first's.
            kek_id, wrapped = self.keys.wrap(new_data_key())
            dialect_insert = _upsert(session)
            new = dialect_insert(INDEX_KEYS).values(name=name, kek_id=kek_id, wrapped=wrapped, created_at=now)
            session.execute(new.on_conflict_do_nothing(index_elements=["name"]))
            row = session.execute(stored).one()
        key = self.keys.unwrap(row.kek_id, row.wrapped)
        with self._lock:
            self._index_keys[name] = key
        return key

    def order_token(self, session: Session, order_ref: str, now: datetime) -> str:
        """An order reference's blind index: equal references give equal tokens, and the token
        alone tells nothing without the index key."""
        key = self._index_key(session, "order_ref", now)
        return hmac.new(key, order_ref.encode("utf-8"), hashlib.sha256).hexdigest()

    def record_order(self, session: Session, *, case_id: str, merchant_id: str, token: str, now: datetime) -> None:
        """Index a new case's order reference (``token``: its :meth:`order_token`) for related-case
        counts (cases/related.py)."""
        connection = session.connection()
        # Run on the driver's cursor: inside the command's pipelined write (cases/commands.py)
        # it is queued with the events, no round trip of its own.
        _INSERT_ORDER[connection.dialect.name].execute(
            connection, {"case_id": case_id, "merchant_id": merchant_id, "token": token, "created_at": now}
        )

    # --- pseudonyms -----------------------------------------------------------

    def subject_of(
        self, session: Session, user_id: str, *, now: datetime | None = None, confirmed_later: bool = False
    ) -> str | None:
        """The pseudonym of a marketplace user; with ``now``, made (and recorded) when there is
        none yet. None: the user has no pseudonym (never filed, or erased). With ``now`` (a
        writer under the pseudonym) its row is held until the transaction ends, so an erasure
        cannot forget it meanwhile (:data:`_SUBJECT_HELD`).

        ``confirmed_later`` (a filing, with ``now``) on PostgreSQL: a pseudonym this process read
        before is taken from memory, not read first (a round trip before anything else the
        filing does); the read (holding the row) is queued with the filing's writes instead
        (:meth:`prefetch`), and the caller must call :meth:`confirm_subjects` before committing:
        it refuses the filing, to be run again, if the pseudonym is no longer the user's (erased
        meanwhile)."""
        connection = session.connection()
        if confirmed_later and now is not None and connection.dialect.name == "postgresql":
            with self._lock:
                remembered = self._subjects.get(user_id)
            if remembered is not None:
                session.info.setdefault(_CONFIRM, {})[user_id] = remembered
                self._learn(session, remembered, user_id)
                return remembered
        if now is None:
            found: str | None = _SUBJECT_OF.scalar(connection, {"user_id": user_id})
            if found is not None:
                self._learn(session, found, user_id)
            return found
        found = _SUBJECT_HELD.scalar(connection, {"user_id": user_id})
        if found is None and not is_identifier(user_id):
            raise InvalidCommandError(
                "the filer's user id (the token's subject) is not an identifier", field="consumer_id"
            )
        while found is None:
            # Two first filings of one user at once: the second's insert does nothing (on
            # PostgreSQL it waits for the first to commit) and it reads the pseudonym the first
            # recorded. Still none: that pseudonym was erased in between, and no longer holds
            # the user id; the next insert makes one.
            dialect_insert = _upsert(session)
            row = dialect_insert(SUBJECTS).values(subject=new_pseudonym(), user_id=user_id, created_at=now)
            session.execute(row.on_conflict_do_nothing(index_elements=["user_id"]))
            found = _SUBJECT_HELD.scalar(session.connection(), {"user_id": user_id})
        self._learn(session, found, user_id)
        self._remember_subject(user_id, found)
        return found

    def _remember_subject(self, user_id: str, subject: str) -> None:
        with self._lock:
            self._subjects[user_id] = subject
            self._subjects.move_to_end(user_id)
            while len(self._subjects) > self.cache_size:
                self._subjects.popitem(last=False)

    def confirm_subjects(self, session: Session) -> None:
        """Check the pseudonyms a filing took from memory (:meth:`subject_of`) against the rows
        read with its writes: a ConflictError (the filing is run again, reading them) if one is
        no longer its user's, and it is forgotten. Call after the filing's writes, before commit."""
        for user_id, subject, cursor in session.info.pop(_CONFIRMING, ()):
            row = cursor.fetchone()
            cursor.close()
            if row is None or row[0] != subject:
                with self._lock:
                    self._subjects.pop(user_id, None)
                raise ConflictError(subject, 0)

    @staticmethod
    def _learn(session: Session, subject: str, user_id: str) -> None:
        """This transaction read ``subject``'s user id: a filing's answer needs no lookup for it."""
        session.info.setdefault(_LEARNED, {})[subject] = user_id

    def seen_as(self, session: Session, actor: Actor) -> Actor:
        """The actor as the log knows it: a consumer by their pseudonym. A consumer without one
        has no case yet, and gets an id no case holds (an invalid identifier)."""
        if actor.role != "consumer":
            return actor
        return self.as_subject(actor, self.subject_of(session, actor.id))

    @staticmethod
    def as_subject(actor: Actor, subject: str | None) -> Actor:
        """A consumer as the log knows them, given their pseudonym (None: they have none)."""
        return Actor(id=subject if subject is not None else f"unknown user {actor.id}", role=actor.role)

    # --- keys -------------------------------------------------------------------

    def _cached(self, case_id: str) -> bytes | None:
        with self._lock:
            key = self._cache.get(case_id)
            if key is not None:
                self._cache.move_to_end(case_id)
            return key

    def _remember(self, case_id: str, key: bytes) -> None:
        with self._lock:
            self._cache[case_id] = key
            self._cache.move_to_end(case_id)
            while len(self._cache) > self.cache_size:
                evicted, _ = self._cache.popitem(last=False)
                self._opened.pop(evicted, None)

    def forget(self, case_ids: Iterable[str]) -> None:
        """Drop cached keys, the values they opened and the answers' values (after their cases
        are erased)."""
        with self._lock:
            for case_id in case_ids:
                self._cache.pop(case_id, None)
                self._opened.pop(case_id, None)
                self._known.pop(case_id, None)
            # Erasure may have nulled a pseudonym (rare: all are read again).
            self._subjects.clear()

    def _known_at(self, case_id: str, head: str) -> dict[str, str] | None:
        """What the case's last answer revealed, if the case is still at that answer's head."""
        with self._lock:
            known = self._known.get(case_id)
        return known[1] if known is not None and known[0] == head else None

    def _know(self, case_id: str, head: str, table: dict[str, str]) -> None:
        with self._lock:
            self._known[case_id] = (head, table)
            self._known.move_to_end(case_id)
            while len(self._known) > self.cache_size:
                self._known.popitem(last=False)

    def _data_key_for_writing(
        self, session: Session, case_id: str, subject: str, now: datetime, *, new_case: bool, was_closed: bool
    ) -> bytes:
        key = None if was_closed else self._cached(case_id)
        if key is not None:
            return key
        # A case being filed has no key row yet: nothing to read (a read inside the pipelined
        # write would cost a round trip of its own).
        rows = [] if new_case else _rows(session, _CASE_KEY, {"case_id": case_id})
        row = rows[0] if rows else None
        if row is not None and row[1] is not None:
            key = self.keys.unwrap(row[0], bytes(row[1]))
        else:
            # The case's first value, or its first after an erasure (a new key; the tombstone's
            # erasure time stays).
            key = new_data_key()
            kek_id, wrapped = self.keys.wrap(key)
            if row is None:
                _INSERT_CASE_KEY.execute(
                    session.connection(),
                    {
                        "case_id": case_id,
                        "subject": subject,
                        "kek_id": kek_id,
                        "wrapped": wrapped,
                        "created_at": now,
                        "erased_at": None,
                    },
                )
            else:
                session.execute(
                    update(CASE_KEYS)
                    .where(CASE_KEYS.c.case_id == case_id)
                    .values(kek_id=kek_id, wrapped=wrapped, created_at=now)
                )
                self.forget([case_id])  # the values the old key opened are gone with it
        self._remember(case_id, key)
        return key

    def store(
        self,
        session: Session,
        case_id: str,
        subject: str,
        secrets: Sequence[Secret],
        now: datetime,
        *,
        new_case: bool = False,
        was_closed: bool = False,
    ) -> None:
        """Seal ``secrets`` under the case's data key and write their rows, in the caller's
        transaction (``new_case``: the case is being filed, it has no key yet; ``was_closed``: it
        was closed, and may have been erased by another process, so its key is read, not cached)."""
        if not secrets:
            return
        key = self._data_key_for_writing(session, case_id, subject, now, new_case=new_case, was_closed=was_closed)
        _INSERT_VALUES.execute_many(
            session.connection(), [{"ref": s.ref, "case_id": case_id, "sealed": seal_value(key, s)} for s in secrets]
        )

    def rewrap(self, session: Session, *, batch: int = 500) -> int:
        """Re-wrap every live data key not under the provider's current key; how many were."""
        current = self.keys.current
        rows = session.execute(
            select(CASE_KEYS.c.case_id, CASE_KEYS.c.kek_id, CASE_KEYS.c.wrapped)
            .where(and_(CASE_KEYS.c.wrapped.is_not(None), CASE_KEYS.c.kek_id != current))
            .limit(batch)
        ).all()
        for row in rows:
            kek_id, wrapped = self.keys.wrap(self.keys.unwrap(row.kek_id, bytes(row.wrapped)))
            session.execute(
                update(CASE_KEYS).where(CASE_KEYS.c.case_id == row.case_id).values(kek_id=kek_id, wrapped=wrapped)
            )
        return len(rows)

    # --- reading ----------------------------------------------------------------

    def _key_of(self, session: Session, case_id: str) -> bytes | None:
        """The case's data key (cached), or None when it is destroyed."""
        key = self._cached(case_id)
        if key is None:
            rows = _rows(session, _CASE_KEY, {"case_id": case_id})
            if not rows or rows[0][1] is None:
                return None
            key = self.keys.unwrap(rows[0][0], bytes(rows[0][1]))
            self._remember(case_id, key)
        return key

    def open_values(self, session: Session, markers: Mapping[str, str]) -> Iterator[Disclosure]:
        """The live values of ``markers`` (ref -> marker), opened and checked against their
        markers; refs without a row or under a destroyed key are left out."""
        for params in _slots(sorted(markers), "r", REF_SLOTS):
            for ref, case_id, sealed in _rows(session, _VALUES, params):
                key = self._key_of(session, case_id)
                if key is None:
                    continue
                marker = markers[ref]
                try:
                    salt, value = open_value(key, marker, bytes(sealed))
                except TamperedValueError as exc:
                    raise TamperedValue(str(exc)) from exc
                yield Disclosure(ref=ref, case_id=case_id, salt=salt, value=value)

    def resolve(self, session: Session, texts: Iterable[str]) -> dict[str, str]:
        """For each marker its value (or ``[erased]``), for each pseudonym its user id (or ``[erased]``)."""
        markers, subjects = _split(texts)
        params = _lookup_params(markers, subjects)
        if params is not None:
            # What a case's answer needs, in one round trip.
            return self._table(session, markers, _rows(session, _LOOKUP, params))
        table = {markers[d.ref]: d.value for d in self.open_values(session, markers)}
        for params in _slots(subjects, "s", SUBJECT_SLOTS):
            for subject, user_id in _rows(session, _USERS, params):
                table[subject] = user_id if user_id is not None else ERASED
        for marker in markers.values():
            table.setdefault(marker, ERASED)
        return table

    def _table(self, session: Session, markers: Mapping[str, str], rows: Iterable[Any]) -> dict[str, str]:
        """The lookup's rows (:data:`_LOOKUP`) as a table of values and user ids; a marker
        without a live row or key is ``[erased]``."""
        table: dict[str, str] = {}
        for kind, key, case_id, sealed, user_id in rows:
            if kind == 1:
                table[key] = user_id if user_id is not None else ERASED
                continue
            data_key = self._key_of(session, case_id)
            if data_key is not None:
                table[markers[key]] = self._open(case_id, data_key, markers[key], bytes(sealed))[1]
        for marker in markers.values():
            table.setdefault(marker, ERASED)
        return table

    def _open(self, case_id: str, data_key: bytes, marker: str, sealed: bytes) -> tuple[bytes, str]:
        """``(salt, value)`` of a row, opened and checked against its marker, or as opened before
        under the case's cached key (the same marker and the same sealed bytes)."""
        with self._lock:
            memo = self._opened.get(case_id)
            opened = memo.get((marker, sealed)) if memo is not None else None
        if opened is not None:
            return opened
        try:
            opened = open_value(data_key, marker, sealed)
        except TamperedValueError as exc:
            raise TamperedValue(str(exc)) from exc
        with self._lock:
            if case_id in self._cache:
                memo = self._opened.setdefault(case_id, {})
                if len(memo) < OPENED_PER_CASE:
                    memo[(marker, sealed)] = opened
        return opened

    # --- a command's answer -------------------------------------------------------

    def answering(self, session: Session) -> None:
        """This transaction's command answers with its case revealed (``CaseService.file`` and
        ``execute``): its write queues the lookup the answer needs (:meth:`prefetch`)."""
        session.info[_ANSWERING] = True

    def prefetch(
        self,
        session: Session,
        value: CaseSnapshot,
        *,
        before_head: str | None,
        secrets: Sequence[Secret] = (),
    ) -> None:
        """What revealing ``value``, the case as a command just wrote it, needs, for
        :meth:`reveal` to use instead of querying (only if the transaction answers:
        :meth:`answering`; once). ``before_head``: the case's head hash before the command
        (None: it is being filed); ``secrets``: the values the command stored.

        When the case is still at the head its previous answer here was revealed at, that
        answer's values stand: every erasure appends an event to the case (cases/erasure.py), so
        an unchanged head hash (which commits to the whole log) means nothing was erased since,
        whichever process erased; and this command's own values are its ``secrets``. Then the
        answer needs no lookup, no key and no decryption. Otherwise the lookup is queued with
        the command's writes: on PostgreSQL it travels after the value rows they insert and
        costs no round trip of its own. Called inside the command's pipelined write
        (cases/commands.py)."""
        confirm: dict[str, str] | None = session.info.pop(_CONFIRM, None)
        if confirm:
            connection = session.connection()
            session.info[_CONFIRMING] = [
                (user_id, subject, _SUBJECT_HELD.execute(connection, {"user_id": user_id}))
                for user_id, subject in confirm.items()
            ]
        learned: dict[str, str] = session.info.pop(_LEARNED, {})
        answering = session.info.pop(_ANSWERING, False)
        base = {} if before_head is None else self._known_at(value.id, before_head)
        if base is None and not answering:
            return
        found = markers_in(value, also=is_pseudonym)
        if base is not None:
            fresh = {s.marker: s.value for s in secrets}
            table: dict[str, str] = {}
            for text in found:
                known = fresh.get(text, base.get(text, learned.get(text)))
                if known is not None:
                    table[text] = known
            if len(table) == len(found):
                if len(table) <= OPENED_PER_CASE:
                    self._know(value.id, value.head_hash, table)
                if answering:
                    session.info[_PREFETCHED] = _Prefetched(
                        value, frozenset(found), {}, None, value.id, value.head_hash, table
                    )
                return
            if not answering:
                return
        markers, subjects = _split(found)
        params = _lookup_params(markers, subjects)
        if not found or params is None:
            return
        connection = session.connection()
        cursor = _LOOKUP.execute(connection, params)
        if connection.dialect.name == "postgresql":
            # Read after the pipelined block has synced (psycopg holds a result client-side).
            rows: Any = cursor
        else:
            # SQLite steps a result lazily: read it now, before the writes that follow.
            rows = list(cursor.fetchall())
            cursor.close()
        session.info[_PREFETCHED] = _Prefetched(value, frozenset(found), markers, rows, value.id, value.head_hash)

    def _prefetched_table(self, session: Session, queued: _Prefetched) -> dict[str, str]:
        if queued.table is not None:
            return queued.table
        rows = queued.rows
        if not isinstance(rows, list):
            cursor, rows = rows, list(rows.fetchall())
            cursor.close()
        table = self._table(session, queued.markers, rows)
        # Remembered for the case's next command (prefetch); an erased text is not: it is
        # looked up again, and stays erased.
        live = {t: v for t, v in table.items() if v != ERASED}
        if len(live) == len(queued.texts) and len(live) <= OPENED_PER_CASE:
            self._know(queued.case_id, queued.head, live)
        return table

    def holds_personal(self, value: Any) -> bool:
        """Whether ``value`` holds a marker or a pseudonym to resolve (no database read)."""
        return bool(markers_in(value, also=is_pseudonym))

    def reveal(self, session: Session, value: T) -> T:
        """A copy of ``value`` (a snapshot, events, rows as mappings, any nesting of them) with
        markers replaced by their values and pseudonyms by user ids, or ``[erased]``."""
        # The lookup a command's write queued for its answer (prefetch), read once: the answer
        # itself needs no second walk; anything whose texts it covers uses it too.
        queued: _Prefetched | None = session.info.pop(_PREFETCHED, None)
        if queued is not None and queued.value is value:
            answer: T = substitute(value, self._prefetched_table(session, queued))
            return answer
        found = markers_in(value, also=is_pseudonym)
        if queued is not None:
            if found and found <= queued.texts:
                covered: T = substitute(value, self._prefetched_table(session, queued))
                return covered
            if queued.rows is not None and not isinstance(queued.rows, list):
                queued.rows.close()
        if not found:
            return value
        result: T = substitute(value, self.resolve(session, found))
        return result
