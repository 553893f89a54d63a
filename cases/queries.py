"""The reads of the case room: loading a case as stored and as the policies see it, lists and
their cursors, and the condition the desk's view policies give a list (policies/visibility.py)
turned into SQL."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, false, func, not_, or_, select, true
from sqlmodel import Session

from cases.merchants import standings
from policies.base import Authorizer
from policies.visibility import TRUE, AllOf, Always, Condition, Equals, Not, Present
from store.codec import snapshot_from_json
from store.fastpath import Prepared, pipelined
from store.tables import CASES, MERCHANTS, SUBJECTS
from workflow.errors import (
    InvalidCommandError,
    NotFoundError,
)
from workflow.merchant import NO_LOG, MerchantStanding, seen_with
from workflow.model import Actor, CaseSnapshot, Evidence

MAX_PAGE = 200


# Rows one list page may examine (read and have Cedar decide) before it answers with what
# it found: a bound on the work a request can cause, whatever a desk's view rules hide.
MAX_EXAMINED = 1000


K = TypeVar("K")


@dataclass(frozen=True)
class CaseFilters:
    state: str | None = None
    category: str | None = None
    merchant_id: str | None = None
    mediator_id: str | None = None
    consumer_id: str | None = None
    breaching: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def equalities(self) -> dict[str, str]:
        """column -> value of the filters that ask a column to equal a value."""
        asked = {
            "state": self.state,
            "category": self.category,
            "merchant_id": self.merchant_id,
            "mediator_id": self.mediator_id,
            "consumer_id": self.consumer_id,
        }
        return {column: value for column, value in asked.items() if value is not None}


NO_FILTERS = CaseFilters()


@dataclass(frozen=True)
class Page:
    data: list[Any]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ActionInfo:
    name: str
    kind: str
    allowed: bool
    reasons: tuple[str, ...] = ()


# A cursor names a position in one list: a case's pk (BIGINT), an event's or message's seq
# (INTEGER), an index. A number beyond its column's range is no position, and the databases
# refuse to bind it (SQLite above 2**63 - 1, PostgreSQL above each column's type).
MAX_POSITION = 2**63 - 1


MAX_SEQ = 2**31 - 1


_POSITION = re.compile(r"0|[1-9][0-9]{0,18}")
_ACTIVITY = re.compile(r"(0|[1-9][0-9]{0,17})\.(0|[1-9][0-9]{0,18})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_activity_cursor(at: datetime, pk: int) -> str:
    """The ``next_cursor`` of a list in activity order: the last case's ``updated_at`` (in
    microseconds since the epoch) and pk, in URL-safe base64, unpadded."""
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{pk}".encode()).decode().rstrip("=")


def decode_activity_cursor(cursor: str) -> tuple[datetime, int]:
    """The position :func:`encode_activity_cursor` wrote; anything else is a ``malformed cursor``."""
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("ascii")
    except ValueError:
        text = ""
    found = _ACTIVITY.fullmatch(text)
    if found is None or int(found.group(2)) > MAX_POSITION:
        raise InvalidCommandError("malformed cursor", field="cursor")
    try:
        at = _EPOCH + timedelta(microseconds=int(found.group(1)))
    except OverflowError:
        raise InvalidCommandError("malformed cursor", field="cursor") from None
    return at, int(found.group(2))


def encode_cursor(value: int) -> str:
    """The opaque ``next_cursor`` for ``value``: its decimal digits in URL-safe base64, unpadded."""
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, maximum: int = MAX_POSITION) -> int:
    """The position a cursor of :func:`encode_cursor` names; anything else (other characters,
    another encoding, a sign, a number above ``maximum``) is a ``malformed cursor``."""
    try:
        # validate=True: b64decode would otherwise skip characters outside the alphabet.
        digits = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("ascii")
    except ValueError:  # binascii.Error, non-ASCII text or bytes (UnicodeError) are all ValueErrors
        digits = ""
    if not _POSITION.fullmatch(digits) or int(digits) > maximum:
        raise InvalidCommandError("malformed cursor", field="cursor")
    return int(digits)


_SELECT_SNAPSHOT = Prepared(select(CASES.c.snapshot).where(CASES.c.id == bindparam("case_id")))


# The case with its merchant's standing, for a decision: one round trip, the merchant row by its key.
_SELECT_CASE = Prepared(
    select(CASES.c.snapshot, MERCHANTS.c.seq, MERCHANTS.c.flagged)
    .select_from(CASES.outerjoin(MERCHANTS, MERCHANTS.c.merchant_id == CASES.c.merchant_id))
    .where(CASES.c.id == bindparam("case_id"))
)


# The same with the pseudonym of the consumer who acts (personal data: cases/personal.py), still
# one round trip: a consumer's command reads who they are in the log with the case.
_SELECT_CASE_AS = Prepared(
    select(
        CASES.c.snapshot,
        MERCHANTS.c.seq,
        MERCHANTS.c.flagged,
        select(SUBJECTS.c.subject).where(SUBJECTS.c.user_id == bindparam("user_id")).scalar_subquery(),
    )
    .select_from(CASES.outerjoin(MERCHANTS, MERCHANTS.c.merchant_id == CASES.c.merchant_id))
    .where(CASES.c.id == bindparam("case_id"))
)


def load_snapshot(session: Session, case_id: str) -> CaseSnapshot:
    """The case as stored: what its log folds to."""
    return snapshot_from_json(_fetch(session, _SELECT_SNAPSHOT, case_id)[0])


def load_case(session: Session, case_id: str) -> tuple[CaseSnapshot, MerchantStanding]:
    """The case as stored and its merchant's flag as the merchant's log stands now."""
    stored, seq, flagged = _fetch(session, _SELECT_CASE, case_id)
    standing = NO_LOG if seq is None else MerchantStanding(int(seq), bool(flagged))
    return snapshot_from_json(stored), standing


def load_case_as(session: Session, case_id: str, user_id: str) -> tuple[CaseSnapshot, MerchantStanding, str | None]:
    """:func:`load_case`, and the pseudonym of the marketplace user ``user_id`` (None: none)."""
    stored, seq, flagged, subject = _fetch(session, _SELECT_CASE_AS, case_id, user_id=user_id)
    standing = NO_LOG if seq is None else MerchantStanding(int(seq), bool(flagged))
    return snapshot_from_json(stored), standing, subject


def load_seen(session: Session, case_id: str) -> CaseSnapshot:
    """The case as the policies see it now (:func:`workflow.merchant.seen_with`)."""
    snapshot, standing = load_case(session, case_id)
    return seen_with(snapshot, standing)


def seen_all(session: Session, snapshots: Sequence[CaseSnapshot]) -> list[CaseSnapshot]:
    """A page of cases as the policies see them now: one query for their merchants."""
    found = standings(session, (s.merchant_id for s in snapshots))
    return [seen_with(s, found.get(s.merchant_id, NO_LOG)) for s in snapshots]


def _fetch(session: Session, statement: Prepared, case_id: str, **params: str) -> Any:
    connection = session.connection()
    with pipelined(connection):  # the transaction's BEGIN and this read in one round trip
        cursor = statement.execute(connection, {"case_id": case_id, **params})
    # Fetched after the block: a fetch inside it would sync once more (strace: 4.8 vs 3.9
    # socket reads per command).
    row = cursor.fetchone()
    cursor.close()
    if row is None or row[0] is None:
        raise NotFoundError("case", case_id)
    return row


def evidence_visible(actor: Actor, item: Evidence) -> bool:
    """Drafts are staged: only their party and mediators see them until submitted."""
    return item.status == "submitted" or actor.party in (item.party, "mediator", "auditor")


def list_query(visible: Condition, filters: CaseFilters, before: int | None, count: int) -> Any:
    """``count`` rows of ``list_cases`` below pk ``before``, newest first: the rows meeting the
    filters and ``visible`` (the condition derived from the view policies)."""
    stmt = _listed(select(CASES.c.pk, CASES.c.snapshot), visible, filters)
    if before is not None:
        stmt = stmt.where(CASES.c.pk < before)
    return stmt.order_by(CASES.c.pk.desc()).limit(count)


def activity_query(visible: Condition, filters: CaseFilters, after: tuple[datetime, int] | None, count: int) -> Any:
    """``count`` rows of ``list_by_activity`` after the position ``after`` (a case's
    ``updated_at`` and pk), newest activity first; ties in time by pk, so every case has one
    place in the walk. A party's own list walks ``ix_cases_consumer_updated`` (or the
    merchant's) rather than sorting all their cases."""
    stmt = _listed(select(CASES.c.pk, CASES.c.updated_at, CASES.c.snapshot), visible, filters)
    if after is not None:
        at, pk = after
        stmt = stmt.where(or_(CASES.c.updated_at < at, and_(CASES.c.updated_at == at, CASES.c.pk < pk)))
    return stmt.order_by(CASES.c.updated_at.desc(), CASES.c.pk.desc()).limit(count)


def _listed(stmt: Any, visible: Condition, filters: CaseFilters) -> Any:
    """``stmt`` restricted to the rows meeting the filters and ``visible``."""
    if visible != TRUE:
        stmt = stmt.where(condition_sql(visible))
    for column, value in filters.equalities().items():
        stmt = stmt.where(CASES.c[column] == value)
    if filters.created_from is not None:
        stmt = stmt.where(CASES.c.created_at >= filters.created_from)
    if filters.created_to is not None:
        stmt = stmt.where(CASES.c.created_at < filters.created_to)
    if filters.breaching is not None:
        # The projection's column, so that the (breaching, pk) index serves the newest-first walk.
        stmt = stmt.where(CASES.c.breaching == filters.breaching)
    return stmt


def condition_sql(condition: Condition) -> Any:
    """A condition of ``policies.visibility`` on the cases table (its columns are the cases'
    columns; an absent mediator is NULL, as the condition expects)."""
    if isinstance(condition, Always):
        return true() if condition.value else false()
    if isinstance(condition, Equals):
        column = CASES.c[condition.column]
        values = sorted(condition.values)
        return column == values[0] if len(values) == 1 else column.in_(values)
    if isinstance(condition, Present):
        return CASES.c[condition.column].is_not(None)
    if isinstance(condition, Not):
        return not_(condition_sql(condition.part))
    parts = [condition_sql(part) for part in condition.parts]
    return and_(*parts) if isinstance(condition, AllOf) else or_(*parts)


def viewable(authorizer: Authorizer, actor: Actor, now: datetime) -> Callable[[list[CaseSnapshot]], list[bool]]:
    """Cedar's ``view`` on each case of a batch, under one policy set."""

    def decide(cases: list[CaseSnapshot]) -> list[bool]:
        return [d.allowed for d in authorizer.decide_each(actor=actor, action="view", cases=cases, now=now)]

    return decide


def fill_page(
    read: Callable[[K | None, int], list[tuple[K, CaseSnapshot]]],
    visible: Callable[[list[CaseSnapshot]], list[bool]] | None,
    after: K | None,
    limit: int,
    budget: int | None = None,
) -> tuple[list[tuple[K, CaseSnapshot]], K | None]:
    """Up to ``limit`` visible cases in the list's order after the key ``after``, and the key
    the next page continues after (None at the end).

    ``read(after, n)`` returns the next ``n`` candidate rows as (key, case); ``visible``
    decides a batch of them (None: every row read is visible). Rows are read in growing
    chunks until ``limit`` visible ones and one more are found (so that a full last page says
    there is no next one), the rows end, or ``budget`` rows (default :data:`MAX_EXAMINED`) were
    examined: a desk whose rules hide most candidate rows from a caller then gets a short (even
    empty) page whose cursor continues after the last row examined, instead of a request that
    walks the whole table."""
    budget = budget or MAX_EXAMINED
    shown: list[tuple[K, CaseSnapshot]] = []
    examined = 0
    position = after
    chunk = limit + 1
    while True:
        count = min(chunk, budget - examined)
        rows = read(position, count)
        verdicts = [True] * len(rows) if visible is None else visible([case for _, case in rows])
        for row, allowed in zip(rows, verdicts, strict=True):
            if not allowed:
                continue
            if len(shown) == limit:
                return shown, shown[-1][0]  # one more visible case follows the page
            shown.append(row)
        examined += len(rows)
        if len(rows) < count:
            return shown, None
        position = rows[-1][0]
        if examined >= budget:
            return shown, position
        chunk = max(limit + 1 - len(shown), 2 * chunk)


def count_open_claims(session: Session, merchant_id: str) -> int:
    """How many cases against ``merchant_id`` are not closed."""
    stmt = (
        select(func.count()).select_from(CASES).where(CASES.c.merchant_id == merchant_id, CASES.c.closed_at.is_(None))
    )
    return int(session.execute(stmt).scalar_one())


def count_cases(session: Session) -> int:
    """How many cases the database holds."""
    return int(session.execute(select(func.count()).select_from(CASES)).scalar_one())
