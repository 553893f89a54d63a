"""CaseService: file, act and query. One command = one transaction.

A command runs: load the projection with its version, and its merchant's flag as
the merchant's log stands (cases/merchants.py) -> may the actor see the case (else
NotFound) -> is the trigger possible (else TransitionNotAllowed) -> policy decision
on the case seen with that flag (else PolicyDenied) -> decide() -> clock follow-ups
-> number, hash and append the events, the first recording the flag it relied on ->
fold them into the projection with a compare-and-set on the version. Any failure
rolls the whole command back.
A request's Idempotency-Key and the answer it got are written in the same
transaction (cases/idempotency.py), so a retry after a crash never acts twice.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, bindparam, false, not_, or_, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cases import idempotency
from cases.mediators import require_assignable
from cases.merchants import standing_of, standings
from cases.projection import insert_case, insert_messages, require_updated, update_case
from cases.registry import WorkflowRegistry
from policies.base import Authorizer, require
from policies.loader import version_documents
from policies.visibility import FALSE, TRUE, AllOf, Always, Condition, Equals, Not, Present, restrict
from sla.clock import Clock
from store.codec import snapshot_from_json
from store.db import Database
from store.fastpath import Prepared, inserting, pipelined
from store.tables import BLOBS, CASES, EVENTS, MERCHANTS, MESSAGES
from workflow.chain import GENESIS_HASH, event_from_body, seal
from workflow.currency import currency_problem
from workflow.decide import check_text, decide, kind_of
from workflow.definition import WorkflowDefinition
from workflow.errors import (
    ConflictError,
    InvalidCommandError,
    NotFoundError,
    PolicyDeniedError,
    TransitionNotAllowedError,
)
from workflow.events import Event, RecordedEvent
from workflow.evolve import evolve
from workflow.merchant import NO_LOG, MerchantStanding, seen_with, with_standing
from workflow.model import CATEGORIES, SYSTEM, Actor, CaseSnapshot, Command, Evidence, NewCase, from_iso, to_iso
from workflow.text import free_text, identifier, is_identifier

MAX_PAGE = 200
# Rows one list page may examine (read and have Cedar decide) before it answers with what
# it found: a bound on the work a request can cause, whatever a desk's view rules hide.
MAX_EXAMINED = 1000
K = TypeVar("K")
FILING_ATTEMPTS = 3
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_case_id(now: datetime) -> str:
    """Time-ordered, unguessable public id such as ``DSP-01JH3K8V9Q-7TZ4XW``."""
    millis = int(now.timestamp() * 1000)
    stamp = "".join(_CROCKFORD[(millis >> shift) & 31] for shift in range(45, -1, -5))
    tail = "".join(secrets.choice(_CROCKFORD) for _ in range(6))
    return f"DSP-{stamp}-{tail}"


class ClockKeeper(Protocol):
    """Produces the timer events that follow from a case's change (cases/timers.py)."""

    def follow_up(
        self,
        definition: WorkflowDefinition,
        before: CaseSnapshot | None,
        after: CaseSnapshot,
        command: str,
        now: datetime,
    ) -> list[Event]: ...


class Intake(Protocol):
    """The desk's triage of a new complaint (cases/intake.py): category, priority, routing."""

    def prepare(self, session: Session, new_case: NewCase, now: datetime) -> tuple[NewCase, dict[str, Any]]:
        """The complaint with its category and priority decided, and what the ``filed`` event
        records about how (merged into its data)."""
        ...

    def after_filing(self, session: Session, service: CaseService, case: CaseSnapshot) -> CaseSnapshot:
        """Route the new case, in the filing's transaction; return it as it then stands."""
        ...

    def weight(self, priority: str) -> int:
        """The load units a case of this priority level takes of a mediator's capacity."""
        ...


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


@dataclass
class CaseService:
    db: Database
    registry: WorkflowRegistry
    authorizer: Authorizer
    clock: Clock
    clocks: ClockKeeper | None = None
    id_factory: Callable[[datetime], str] = field(default=new_case_id)
    # The reloadable policy set the authorizer came from, if any (api wires it).
    policy_store: Any = None
    # Classification, priority and routing on filing; None: the filer's category stands.
    intake: Intake | None = None

    def __post_init__(self) -> None:
        with self.db.write() as session:
            self.registry.store_active(session, self.clock.now())
        self.record_policy_version()

    def record_policy_version(self) -> None:
        """Store the files of the policy set in force under its version, once."""
        directory = getattr(self.authorizer, "directory", None)
        if directory is None:
            return
        version, documents = version_documents(directory)
        if version != self.authorizer.version:
            return  # the files changed since they were loaded; the next reload records them
        with self.db.write() as session:
            self.registry.store_policy_version(session, version, documents, self.clock.now())

    # --- commands -------------------------------------------------------------

    def file(self, *, actor: Actor, new_case: NewCase, workflow: str | None = None) -> CaseSnapshot:
        definition = self.registry.active(workflow)
        for attempt in range(FILING_ATTEMPTS):
            try:
                return self.db.run_write(
                    lambda s: idempotency.command(
                        s,
                        self.clock.now(),
                        lambda: file_case(s, self, actor=actor, new_case=new_case, definition=definition),
                    )
                )
            except ConflictError:
                # A new case has nothing to conflict with but its id: two filings in the
                # same millisecond drew the same random tail. Nothing was written; the
                # next attempt draws another id.
                if attempt == FILING_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def execute(
        self,
        *,
        actor: Actor,
        case_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        reason: str = "",
        expected_version: int | None = None,
        kind: str | None = None,
        then: Callable[[Session], None] | None = None,
    ) -> CaseSnapshot:
        """Fire a trigger or perform an action. ``expected_version`` is the If-Match;
        ``kind`` ('trigger' or 'action') restricts what ``name`` may be; ``then`` writes what
        the command's events reference, in their transaction, once the command is accepted."""

        def work(session: Session) -> CaseSnapshot:
            case = execute_command(
                session,
                self,
                actor=actor,
                case_id=case_id,
                name=name,
                data=data or {},
                reason=reason,
                expected_version=expected_version,
                kind=kind,
            )
            if then is not None:
                then(session)
            return case

        attempts = 1 if expected_version is not None else 3
        for attempt in range(attempts):
            try:
                return self.db.run_write(lambda s: idempotency.command(s, self.clock.now(), lambda: work(s)))
            except ConflictError:
                # Without an If-Match the caller asked for "on the current state":
                # a lost race is decided again on the fresher state.
                if attempt == attempts - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- queries ----------------------------------------------------------------

    def get(self, *, actor: Actor, case_id: str) -> CaseSnapshot:
        """The case as the policies see it now: its merchant's current flag among its flags."""
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
        self.require_visible(actor, snapshot)
        return snapshot

    def require_visible(
        self, actor: Actor, snapshot: CaseSnapshot, action: str = "view", authorizer: Authorizer | None = None
    ) -> None:
        """A caller who may not view a case is told it does not exist."""
        authorizer = authorizer or self.authorizer
        decision = authorizer.decide(actor=actor, action="view", case=snapshot, now=self.clock.now())
        if not decision.allowed:
            raise NotFoundError("case", snapshot.id)
        if action != "view":
            require(authorizer, actor=actor, action=action, case=snapshot, now=self.clock.now())

    def events(self, *, actor: Actor, case_id: str, after_seq: int = 0, limit: int = 100) -> Page:
        limit = max(1, min(limit, MAX_PAGE))
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
            self.require_visible(actor, snapshot, "view_history")
            rows = session.execute(
                select(EVENTS.c.seq, EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
                .where(and_(EVENTS.c.case_id == case_id, EVENTS.c.seq > after_seq))
                .order_by(EVENTS.c.seq)
                .limit(limit + 1)
            ).all()
        events = [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows[:limit]]
        next_cursor = encode_cursor(events[-1].seq) if len(rows) > limit else None
        return Page(data=events, next_cursor=next_cursor)

    def list_cases(
        self,
        *,
        actor: Actor,
        filters: CaseFilters = CaseFilters(),
        before: int | None = None,
        limit: int = 50,
    ) -> Page:
        """Newest first, the cases the desk's ``view`` policies let the actor see, cursor-paginated.
        ``before``: the decoded ``next_cursor`` of the previous page.

        The database selects the rows meeting the condition derived from the desk's view
        policies for this caller (``policies/visibility.py``). It holds for every case the
        policies show, so nothing is missed; where the policies are beyond what the
        derivation translates exactly, it is wider, and Cedar decides ``view`` on each row
        it returns (:func:`fill_page` says how a page then fills and where it stops)."""
        limit = max(1, min(limit, MAX_PAGE))
        authorizer = self.authorizer  # one policy set for the page, as for a command
        visibility = authorizer.visibility(actor=actor)
        condition = restrict(visibility.condition, filters.equalities())
        if condition == FALSE:
            return Page(data=[])

        def read(below: int | None, count: int) -> list[tuple[int, CaseSnapshot]]:
            with self.db.read() as session:
                rows = session.execute(list_query(condition, filters, below, count)).all()
                # As the policies see them now: with their merchant's current flag.
                seen = seen_all(session, [snapshot_from_json(r.snapshot) for r in rows])
            return [(r.pk, case) for r, case in zip(rows, seen, strict=True)]

        decide = None if visibility.decided else viewable(authorizer, actor, self.clock.now())
        shown, next_pk = fill_page(read, decide, before, limit)
        return Page(data=[case for _, case in shown], next_cursor=None if next_pk is None else encode_cursor(next_pk))

    def allowed_actions(self, *, actor: Actor, case_id: str) -> list[ActionInfo]:
        """Every trigger and action of the case's workflow, for this caller, with reasons."""
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
            machine = self.registry.machine(snapshot.workflow_version, session)
        self.require_visible(actor, snapshot)
        definition = machine.definition
        names = [*definition.trigger_names, *definition.action_names]
        decisions = self.authorizer.decide_many(actor=actor, actions=names, case=snapshot, now=self.clock.now())
        result = []
        for name, decision in zip(names, decisions, strict=True):
            kind = "trigger" if name in definition.trigger_names else "action"
            possible = (
                machine.may(snapshot.state, name) if kind == "trigger" else machine.action_allowed(snapshot.state, name)
            )
            if not possible:
                reason = f"not possible in state {snapshot.state!r}"
                result.append(ActionInfo(name, kind, False, (reason,)))
            else:
                result.append(ActionInfo(name, kind, decision.allowed, decision.reasons))
        return result

    def messages(self, *, actor: Actor, case_id: str, after_seq: int = 0, limit: int = 100) -> Page:
        """Messages in order; internal notes only for callers the policies let ``view_internal``."""
        limit = max(1, min(limit, MAX_PAGE))
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
            self.require_visible(actor, snapshot)
            internal = self.authorizer.decide(
                actor=actor, action="view_internal", case=snapshot, now=self.clock.now()
            ).allowed
            stmt = select(MESSAGES).where(MESSAGES.c.case_id == case_id, MESSAGES.c.seq > after_seq)
            if not internal:
                stmt = stmt.where(MESSAGES.c.internal.is_(False))
            rows = session.execute(stmt.order_by(MESSAGES.c.seq).limit(limit + 1)).all()
        next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
        return Page(data=list(rows[:limit]), next_cursor=next_cursor)

    def add_evidence(
        self,
        *,
        actor: Actor,
        case_id: str,
        content: bytes,
        media_type: str,
        filename: str,
        description: str = "",
        expected_version: int | None = None,
    ) -> CaseSnapshot:
        """Add evidence: the ``add_evidence`` action, its content stored in the same transaction.

        The command is decided first (visibility, version, state, policy, the domain's checks on
        the file's facts) and the content is written only then, with the event that references
        it: a refused upload or a crash before COMMIT leaves no blob behind."""
        digest = hashlib.sha256(content).hexdigest()
        data = {
            "sha256": digest,
            "size": len(content),
            "media_type": media_type,
            "filename": filename,
            "description": description,
        }
        return self.execute(
            actor=actor,
            case_id=case_id,
            name="add_evidence",
            data=data,
            expected_version=expected_version,
            kind="action",
            then=lambda session: store_blob(session, digest, content),
        )

    def evidence_content(self, *, actor: Actor, case_id: str, evidence_id: str) -> tuple[Evidence, bytes]:
        snapshot = self.get(actor=actor, case_id=case_id)
        item = next((e for e in snapshot.evidence if e.evidence_id == evidence_id), None)
        if item is None or not evidence_visible(actor, item):
            raise NotFoundError("evidence", evidence_id)
        with self.db.read() as session:
            content = session.execute(select(BLOBS.c.content).where(BLOBS.c.sha256 == item.sha256)).scalar()
        if content is None:
            raise NotFoundError("evidence content", evidence_id)
        return item, bytes(content)

    def iter_case_ids(self, *, since: datetime | None = None) -> Iterator[str]:
        """Every case id in filing order (for audit walks), in pages."""
        last = 0
        while True:
            stmt = select(CASES.c.pk, CASES.c.id).where(CASES.c.pk > last)
            if since is not None:
                stmt = stmt.where(CASES.c.updated_at >= since)
            with self.db.read() as session:
                rows = session.execute(stmt.order_by(CASES.c.pk).limit(1000)).all()
            if not rows:
                return
            for row in rows:
                yield row.id
            last = rows[-1].pk


# --- the command path, usable inside a caller's transaction (timers use it) ----


def store_blob(session: Session, digest: str, content: bytes) -> None:
    """Store evidence content once per sha256, in the caller's transaction. The same bytes
    stored by a concurrent upload are already there: nothing to do (no error that would
    abort the transaction on PostgreSQL)."""
    values = {"sha256": digest, "size": len(content), "content": content}
    dialect = session.get_bind().dialect.name
    insert_into = sqlite_insert if dialect == "sqlite" else postgresql_insert
    session.execute(insert_into(BLOBS).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))


_SELECT_SNAPSHOT = Prepared(select(CASES.c.snapshot).where(CASES.c.id == bindparam("case_id")))
# The case with its merchant's standing, for a decision: one round trip, the merchant row by its key.
_SELECT_CASE = Prepared(
    select(CASES.c.snapshot, MERCHANTS.c.seq, MERCHANTS.c.flagged)
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


def load_seen(session: Session, case_id: str) -> CaseSnapshot:
    """The case as the policies see it now (:func:`workflow.merchant.seen_with`)."""
    snapshot, standing = load_case(session, case_id)
    return seen_with(snapshot, standing)


def seen_all(session: Session, snapshots: Sequence[CaseSnapshot]) -> list[CaseSnapshot]:
    """A page of cases as the policies see them now: one query for their merchants."""
    found = standings(session, (s.merchant_id for s in snapshots))
    return [seen_with(s, found.get(s.merchant_id, NO_LOG)) for s in snapshots]


def _fetch(session: Session, statement: Prepared, case_id: str) -> Any:
    connection = session.connection()
    with pipelined(connection):  # the transaction's BEGIN and this read in one round trip
        cursor = statement.execute(connection, {"case_id": case_id})
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
    stmt = select(CASES.c.pk, CASES.c.snapshot)
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
    if before is not None:
        stmt = stmt.where(CASES.c.pk < before)
    return stmt.order_by(CASES.c.pk.desc()).limit(count)


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


def file_case(
    session: Session,
    service: CaseService,
    *,
    actor: Actor,
    new_case: NewCase,
    definition: WorkflowDefinition,
) -> CaseSnapshot:
    new_case = _validate_new_case(new_case)
    now = service.clock.now()
    triage: dict[str, Any] = {}
    if service.intake is not None:
        new_case, triage = service.intake.prepare(session, new_case, now)
    if new_case.category not in CATEGORIES:
        message = f"unknown category {new_case.category!r}" if new_case.category else "category is required"
        raise InvalidCommandError(message, field="category")
    flags = [*(["vulnerable_consumer"] if new_case.vulnerable_consumer else []), *triage.pop("flags", ())]
    if flags:
        triage["flags"] = flags
    case_id = service.id_factory(now)
    filed = Event(
        "filed",
        {
            "workflow_name": definition.name,
            "state": definition.initial,
            "consumer_id": new_case.consumer_id,
            "merchant_id": new_case.merchant_id,
            "category": new_case.category,
            "subject": new_case.subject,
            "description": new_case.description,
            "order_ref": new_case.order_ref,
            "claim_amount": new_case.claim_amount,
            "currency": new_case.currency,
            "desired_outcome": new_case.desired_outcome,
            "priority": new_case.priority,
            **triage,
        },
    )
    # One policy set decides the whole command and is the version its events record,
    # even if a reload swaps the set while the command runs.
    authorizer = service.authorizer
    provisional = evolve(
        definition,
        None,
        _record(case_id, 1, filed, actor, now, definition.version, authorizer.version, GENESIS_HASH)[0],
    )
    # The merchant's flag as its log stands: what the policies see, and what ``filed`` records.
    standing = standing_of(session, new_case.merchant_id)
    require(authorizer, actor=actor, action="file", case=seen_with(provisional, standing), now=now)
    work = UnitOfWork(service, definition, None, case_id, now, authorizer=authorizer)
    work.add(with_standing([filed], standing, provisional), actor)
    work.follow_up("file", None)
    snapshot = work.write(session)
    if service.intake is not None:
        snapshot = service.intake.after_filing(session, service, snapshot)
    return seen_with(snapshot, standing)


def execute_command(
    session: Session,
    service: CaseService,
    *,
    actor: Actor,
    case_id: str,
    name: str,
    data: dict[str, Any],
    reason: str = "",
    expected_version: int | None = None,
    visible_check: bool = True,
    kind: str | None = None,
) -> CaseSnapshot:
    now = service.clock.now()
    authorizer = service.authorizer  # one policy set for the whole command (see file_case)
    before, standing = load_case(session, case_id)
    # The policies judge the case with its merchant's current flag; the events record it.
    seen = seen_with(before, standing)
    # The view and the command itself are decided in one Cedar batch; the refusals are
    # still raised in the API's order: unknown case (404), stale version, bad command.
    view = visible_check and actor.role != "system"
    asked = ["view", name] if view else [name]
    decisions = authorizer.decide_many(actor=actor, actions=asked, case=seen, now=now, payloads={name: data})
    if view and not decisions[0].allowed:
        raise NotFoundError("case", case_id)
    if expected_version is not None and expected_version != before.version:
        raise ConflictError(case_id, before.version, expected_version)
    machine = service.registry.machine(before.workflow_version, session)
    found = kind_of(machine, name)
    if kind is not None and found != kind:
        raise InvalidCommandError(f"{name!r} is not a {kind} of workflow {machine.definition.name!r}", field=kind)
    kind = found
    if kind == "trigger" and not machine.may(before.state, name):
        raise TransitionNotAllowedError(name, before.state, machine.possible_triggers(before.state))
    if kind == "action" and not machine.action_allowed(before.state, name):
        raise TransitionNotAllowedError(name, before.state, machine.possible_triggers(before.state), kind="action")
    if kind is not None and not decisions[-1].allowed:
        decision = decisions[-1]
        raise PolicyDeniedError(name, decision.reasons, decision.policy_ids)
    events = decide(machine, before, Command(name=name, actor=actor, at=now, data=data, reason=reason))
    _require_assignable(session, service, before, events)
    work = UnitOfWork(service, machine.definition, before, case_id, now, authorizer=authorizer)
    work.add(with_standing(events, standing, before), actor)
    work.follow_up(name, before)
    return seen_with(work.write(session), standing)


def _require_assignable(session: Session, service: CaseService, before: CaseSnapshot, events: list[Event]) -> None:
    """A transition naming a mediator may only name a registered, active one with room for the
    case (cases.mediators.require_assignable), whoever fires it: a mediator, or the router."""
    for event in events:
        mediator_id = event.data.get("mediator_id") if event.type == "transitioned" else None
        if mediator_id is None:
            continue
        intake = service.intake
        weight = intake.weight if intake is not None else (lambda level: 1)
        # Naming the mediator the case already has adds nothing to their load.
        case_weight = 0 if mediator_id == before.mediator_id else weight(before.priority)
        require_assignable(
            session, mediator_id, case_weight=case_weight, weight=weight, lock=service.db.dialect == "postgresql"
        )


def _validate_new_case(new_case: NewCase) -> NewCase:
    """The complaint with its identifiers in their one form, or InvalidCommandError naming the field
    (the rules of workflow/text.py and workflow/currency.py, whichever way the complaint came in)."""
    # The consumer id is the filer's token subject and must match it as it is, so it is checked,
    # not normalised; the merchant id and the order reference are matched against other cases.
    if not is_identifier(new_case.consumer_id):
        raise InvalidCommandError("the filer's user id (the token's subject) is not an identifier", field="consumer_id")
    new_case = replace(
        new_case,
        merchant_id=identifier(new_case.merchant_id, "merchant_id"),
        order_ref=identifier(new_case.order_ref, "order_ref"),
    )
    free_text(new_case.subject, "subject", limit=200)
    free_text(new_case.description, "description")
    check_text(new_case.desired_outcome, "desired_outcome")
    # An empty category is the intake's to choose; without an intake it stays invalid.
    if new_case.category and new_case.category not in CATEGORIES:
        raise InvalidCommandError(f"unknown category {new_case.category!r}", field="category")
    if new_case.claim_amount < 0:
        raise InvalidCommandError("claim amount must not be negative", field="claim.amount")
    problem = currency_problem(new_case.currency)
    if problem is not None:
        raise InvalidCommandError(problem, field="claim.currency")
    return new_case


def _record(
    case_id: str,
    seq: int,
    event: Event,
    actor: Actor,
    now: datetime,
    workflow_version: str,
    policy_version: str,
    prev_hash: str,
) -> tuple[RecordedEvent, bytes]:
    return seal(
        RecordedEvent(
            case_id=case_id,
            seq=seq,
            type=event.type,
            at=to_iso(now),
            actor_id=actor.id,
            actor_role=actor.role,
            data=event.data,
            workflow_version=workflow_version,
            policy_version=policy_version,
            prev_hash=prev_hash,
        )
    )


class UnitOfWork:
    """The events one command appends to one case: numbered, hashed and folded as they
    are added, then written with the projection in the caller's transaction."""

    def __init__(
        self,
        service: CaseService,
        definition: WorkflowDefinition,
        before: CaseSnapshot | None,
        case_id: str,
        now: datetime,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.service = service
        self.policy_version = (authorizer or service.authorizer).version
        self.definition = definition
        self.before = before
        self.snapshot = before
        self.case_id = case_id
        self.now = now
        self.records: list[tuple[RecordedEvent, bytes]] = []

    @property
    def current(self) -> CaseSnapshot:
        assert self.snapshot is not None
        return self.snapshot

    def add(self, events: Sequence[Event], actor: Actor) -> None:
        policy_version = self.policy_version
        for event in events:
            seq = self.snapshot.version + 1 if self.snapshot else 1
            prev = self.snapshot.head_hash if self.snapshot else GENESIS_HASH
            recorded = _record(self.case_id, seq, event, actor, self.now, self.definition.version, policy_version, prev)
            self.records.append(recorded)
            self.snapshot = evolve(self.definition, self.snapshot, recorded[0])

    def follow_up(self, command: str, before: CaseSnapshot | None) -> None:
        """Append the clock events that the change since ``before`` causes."""
        if self.service.clocks is not None and self.snapshot is not None:
            events = self.service.clocks.follow_up(self.definition, before, self.snapshot, command, self.now)
            self.add(events, SYSTEM)

    def write(self, session: Session) -> CaseSnapshot:
        if not self.records:
            return self.current
        before, updated = self.before, None
        first = self.records[0][0]
        try:
            # One round trip on PostgreSQL for the events, the case row and its children.
            with pipelined(session.connection()):
                _insert_events(session, self.records)
                if before is None:
                    insert_case(session, self.current)
                else:
                    updated = update_case(session, before, self.current)
        except IntegrityError as exc:
            if not _seq_taken(exc):
                raise
            # (case_id, seq) is unique: a concurrent writer appended first.
            raise ConflictError(first.case_id, first.seq - 1) from exc
        if before is not None:
            require_updated(session, before, updated)
        return self.current


_INSERT_EVENTS = inserting(EVENTS)


def _insert_events(session: Session, records: list[tuple[RecordedEvent, bytes]]) -> None:
    rows = [
        {
            "case_id": e.case_id,
            "seq": e.seq,
            "type": e.type,
            "at": from_iso(e.at),
            "actor_id": e.actor_id,
            "actor_role": e.actor_role,
            "body": body.decode("utf-8"),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e, body in records
    ]
    _INSERT_EVENTS.execute_many(session.connection(), rows)
    insert_messages(session, (e for e, _ in records))


def _seq_taken(exc: IntegrityError) -> bool:
    """The events' (case_id, seq) key refused the insert (and not some other constraint)."""
    text = str(exc.orig)
    return "uq_events_case_seq" in text or "events.case_id, events.seq" in text
