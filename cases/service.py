"""CaseService: file, act and query. One command = one transaction.

The facade over the case room: each command runs the command path (cases/commands.py) in a
write transaction of its own, each query the reads of cases/queries.py in a read transaction.
A request's Idempotency-Key and the answer it got are written in the command's transaction
(cases/idempotency.py), so a retry after a crash never acts twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import and_, select
from sqlmodel import Session

from cases import idempotency
from cases.commands import WriteHook, execute_command, file_case, new_case_id, store_blob
from cases.erasure import ErasureOutcome, erase_subject, release_legal_hold, set_legal_hold, sweep_personal_data
from cases.labels import PartyStatus, declared_label, party_status
from cases.learning import Retraining, Uncertain, applicable, cited_on, retrain, triage_queue
from cases.personal import PersonalData
from cases.queries import (
    MAX_PAGE,
    NO_FILTERS,
    ActionInfo,
    CaseFilters,
    Page,
    activity_query,
    count_cases,
    count_open_claims,
    encode_activity_cursor,
    encode_cursor,
    evidence_visible,
    fill_page,
    list_query,
    load_seen,
    seen_all,
    viewable,
)
from cases.registry import WorkflowRegistry
from cases.triage import Triage, route_case, route_waiting
from desk.loader import DEFAULT_RETENTION_YEARS, retention_period
from intake.rulebook import Rulebook, RuleEntry
from policies.base import Authorizer, require
from policies.visibility import FALSE, Condition, restrict
from sla.calendar import Calendar
from sla.clock import Clock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.codec import snapshot_from_json
from store.db import Database
from store.tables import BLOBS, CASES, EVENTS, MESSAGES
from workflow.categories import DEFAULT_CATEGORIES, Categories
from workflow.chain import event_from_body
from workflow.definition import WorkflowDefinition
from workflow.errors import (
    ConflictError,
    InvalidCommandError,
    NotFoundError,
    PolicyDeniedError,
)
from workflow.model import MEDIATOR_ROLES, Actor, CaseSnapshot, Evidence, NewCase

FILING_ATTEMPTS = 3
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Message:
    """A message as a reader gets it (the ``messages`` projection's row, texts revealed)."""

    case_id: str
    message_id: str
    seq: int
    party: str
    author_id: str
    body: str
    internal: bool
    at: datetime


# Called after a clock's warning is recorded (and before it breaches), in the sweep's transaction:
# (session, service, case id, timer name, now). Wired at bootstrap (runtime/bootstrap.py): the
# router's :func:`reroute_on_warning` tries again to assign a case whose assignment clock nears breach.
WarnHandler = Callable[[Session, "CaseService", str, str, datetime], None]


@dataclass
class CaseService:
    """The case room's facade: file, act and query, one transaction per command.

    Built once by the composition root (runtime/bootstrap.py) from concrete parts: ``clock`` is
    the time source, ``sla`` the SLA planner (None: no clocks, for tests of other rooms),
    ``triage`` the desk's classification, priority and routing on filing (None: the filer's
    category stands). A desk reload swaps ``authorizer`` and ``triage`` between commands.
    """

    db: Database
    registry: WorkflowRegistry
    authorizer: Authorizer
    clock: Clock
    sla: SlaPlanner | None = None
    triage: Triage | None = None
    # The provisions and platform rules decisions cite (None: citations are not checked).
    rulebook: Rulebook | None = None
    id_factory: Callable[[datetime], str] = field(default=new_case_id)
    on_timer_warned: tuple[WarnHandler, ...] = ()
    # Personal data beside the chain (cases/personal.py); None: texts and user ids stay in the
    # log as written (tests of other rooms; the engine built from settings always protects).
    privacy: PersonalData | None = None
    # Told of every write to a case in its transaction (runtime/bootstrap.py wires the outbox).
    on_written: tuple[WriteHook, ...] = ()
    # The desk's complaint categories (workflow/categories.py); a desk reload swaps them.
    categories: Categories = DEFAULT_CATEGORIES
    # How long a closed case's personal data is kept: the desk's ``retention_years`` (desk.yaml),
    # set at bootstrap and swapped by a desk reload like ``triage``.
    retention: timedelta = field(default_factory=lambda: retention_period(DEFAULT_RETENTION_YEARS))

    def weight(self, priority: str) -> int:
        """The load units a case of this priority level takes of a mediator's capacity."""
        return self.triage.weight(priority) if self.triage is not None else 1

    def calendars(self) -> Mapping[str, Calendar]:
        """The desk's business calendars (the packaged ones when the service runs without clocks)."""
        return self.sla.calendars if self.sla is not None else default_calendars()

    # --- personal data ---------------------------------------------------------

    def reveal(self, value: T, *, session: Session | None = None) -> T:
        """The one way every rendering reads personal data: a copy of ``value`` (a snapshot,
        events, messages, export lines: any nesting of dataclasses, mappings, lists and text)
        with each marker replaced by its value and each pseudonym by the marketplace's user id,
        or ``[erased]``. Callers have already decided that the viewer may see ``value``; the
        fold, replay and what-if keep markers, and hashes are over markers."""
        privacy = self.privacy
        if privacy is None:
            return value
        if session is not None:
            return privacy.reveal(session, value)
        if not privacy.holds_personal(value):
            # Revealed already (the pages pass every text through here, most of them resolved
            # by the service that returned them): no session to open per text.
            return value
        with self.db.read() as read:
            return privacy.reveal(read, value)

    def erase_subject(self, *, user_id: str, basis: str, approved_by: str) -> ErasureOutcome:
        """Erase a consumer's personal data (cases/erasure.py): closed cases now, open or held
        ones when they close and are released."""
        return erase_subject(self, user_id=user_id, basis=basis, approved_by=approved_by)

    def set_legal_hold(self, *, actor: Actor, case_id: str, reason: str) -> None:
        set_legal_hold(self, case_id=case_id, reason=reason, actor=actor)

    def release_legal_hold(self, *, actor: Actor, case_id: str, reason: str) -> None:
        release_legal_hold(self, case_id=case_id, reason=reason, actor=actor)

    def sweep_personal_data(self, *, keep_for: timedelta | None = None) -> list[str]:
        """Deferred erasures now possible, and retention: cases closed ``keep_for`` ago (default:
        the desk's retention period), not held."""
        return sweep_personal_data(self, keep_for=self.retention if keep_for is None else keep_for)

    def rewrap_keys(self) -> int:
        """Re-wrap every live case key under the key provider's current key (after a rotation)."""
        privacy = self.privacy
        if privacy is None:
            return 0
        total = 0
        while True:
            done = self.db.run_write(privacy.rewrap)
            total += done
            if done == 0:
                return total

    def as_logged(self, actor: Actor) -> Actor:
        """The actor as the log and the policies know them: a consumer by their pseudonym (for
        reads of this room that decide visibility themselves, e.g. the urgency queue)."""
        if self.privacy is None or actor.role != "consumer":
            return actor
        with self.db.read() as session:
            return self._as_logged(session, actor)

    def _as_logged(self, session: Session, actor: Actor) -> Actor:
        """The actor as the log knows them: a consumer by their pseudonym."""
        return actor if self.privacy is None else self.privacy.seen_as(session, actor)

    # --- commands -------------------------------------------------------------

    def file(self, *, actor: Actor, new_case: NewCase, workflow: str | None = None) -> CaseSnapshot:
        """File a complaint: triaged, decided, written, then routed to a mediator when one has room,
        all in one transaction."""
        definition = self.registry.for_filing(workflow, new_case.facts)
        triage = self.triage  # one triage for the whole filing, even if a reload swaps it
        # Classified before the transaction opens (CPU only: no lock held while it works).
        new_case, classified = triage.classify(new_case) if triage is not None else (new_case, {})

        def work(session: Session) -> CaseSnapshot:
            prepare = partial(triage.prepare, classified=classified) if triage is not None else None
            filer, complaint = actor, new_case
            if self.privacy is not None:
                # The consumer enters the log as a pseudonym, made on their first filing.
                subject = self.privacy.subject_of(
                    session, new_case.consumer_id, now=self.clock.now(), confirmed_later=True
                )
                assert subject is not None
                complaint = replace(new_case, consumer_id=subject)
                if actor.role == "consumer":
                    # A consumer files for themselves: their pseudonym is the one just read.
                    same = actor.id == new_case.consumer_id
                    filer = Actor(id=subject, role=actor.role) if same else self._as_logged(session, actor)
                # The answer is revealed: its lookup travels with the filing's writes.
                self.privacy.answering(session)
            case = file_case(session, self, actor=filer, new_case=complaint, definition=definition, prepare=prepare)
            if triage is not None and triage.route:
                case = route_case(session, self, triage, case.id, self.clock.now(), why="on filing") or case
            if self.privacy is not None:
                # A pseudonym taken from memory is still the consumer's (else: filed again).
                self.privacy.confirm_subjects(session)
            return self.reveal(case, session=session)

        for attempt in range(FILING_ATTEMPTS):
            try:
                return self.db.run_write(lambda s: idempotency.command(s, self.clock.now(), lambda: work(s)))
            except ConflictError:
                # A new case has nothing to conflict with but its id: two filings in the
                # same millisecond drew the same random tail; or the consumer's remembered
                # pseudonym was erased meanwhile (PersonalData.confirm_subjects). Nothing was
                # written; the next attempt draws another id and reads the pseudonym.
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
            if self.privacy is not None:
                # The answer is revealed: its lookup travels with the command's writes.
                self.privacy.answering(session)
            case = execute_command(
                session,
                self,
                actor=actor,  # a consumer's pseudonym is read with the case
                case_id=case_id,
                name=name,
                data=data or {},
                reason=reason,
                expected_version=expected_version,
                kind=kind,
                logged=False,
            )
            if then is not None:
                then(session)
            return self.reveal(case, session=session)

        self._check_citations(data or {})
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

    def _check_citations(self, data: dict[str, Any]) -> None:
        cited = data.get("citations")
        if self.rulebook is None or not isinstance(cited, list):
            return
        missing = self.rulebook.missing(str(c) for c in cited)
        if missing:
            raise InvalidCommandError(
                f"data.citations: the rulebook has no entry {', '.join(map(repr, missing))}", field="data.citations"
            )

    def recategorise(
        self, *, actor: Actor, case_id: str, category: str, reason: str, expected_version: int | None = None
    ) -> CaseSnapshot:
        """A mediator corrects the case's category: the ``category_corrected`` event (policy-checked),
        which clears ``needs_triage`` and becomes a training example (cases/learning.py)."""
        return self.execute(
            actor=actor,
            case_id=case_id,
            name="recategorise",
            data={"category": category},
            reason=reason,
            expected_version=expected_version,
            kind="action",
        )

    def retrain(self, *, folds: int = 5) -> Retraining:
        """Retrain the triage from the corrections; serve the new model from now on if promoted."""
        triage = self.triage
        if triage is None:
            raise InvalidCommandError("this desk classifies nothing: there is no triage to retrain")
        result = retrain(self.db, triage, self.clock.now(), folds=folds, privacy=self.privacy)
        if result.promoted:
            self.triage = triage.with_model(result.candidate)
        return result

    def triage_queue(self, *, actor: Actor, limit: int = 100) -> list[Uncertain]:
        """The uncertain open cases, smallest margin first: for mediators only."""
        if actor.role not in MEDIATOR_ROLES:
            raise PolicyDeniedError("view_triage", ["the triage queue is for mediators"], [])
        return triage_queue(self.db, limit=limit)

    def case_rules(self, *, actor: Actor, case_id: str) -> tuple[list[RuleEntry], list[RuleEntry]]:
        """The rulebook entries that apply to the case's category, and those its decisions cite."""
        case = self.get(actor=actor, case_id=case_id)
        if self.rulebook is None:
            return [], []
        return applicable(self.rulebook, case.category, cited_on(self.db, case_id))

    # --- queries ----------------------------------------------------------------

    def get(self, *, actor: Actor, case_id: str) -> CaseSnapshot:
        """The case as the policies see it now: its merchant's current flag among its flags."""
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
            self.require_visible(self._as_logged(session, actor), snapshot)
            return self.reveal(snapshot, session=session)

    def status_for(self, *, actor: Actor, case_id: str) -> PartyStatus:
        """The case's state as ``actor`` reads it (its party's label): the API's, and later the
        console's and notifications'."""
        case = self.get(actor=actor, case_id=case_id)
        with self.db.read() as session:
            definition = self.registry.pinned(case.workflow_version, session)
        return party_status(definition, case, actor)

    def party_labels(self, *, actor: Actor, cases: Iterable[CaseSnapshot]) -> dict[str, str]:
        """The label each case's state declares for ``actor``'s party, by case id, read from the
        workflow version the case is pinned to: the console's and the notifications'. Cases
        whose state declares none are left out (the reader shows its generic title). ``cases``
        are cases the caller already read as ``actor``."""
        found: dict[str, str] = {}
        definitions: dict[str, WorkflowDefinition] = {}
        with self.db.read() as session:
            for case in cases:
                definition = definitions.get(case.workflow_version)
                if definition is None:
                    definition = definitions[case.workflow_version] = self.registry.pinned(
                        case.workflow_version, session
                    )
                label = declared_label(definition, case.state, actor.party)
                if label is not None:
                    found[case.id] = label
        return found

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
            actor = self._as_logged(session, actor)
            self.require_visible(actor, snapshot, "view_history")
            # Internal notes are for those the policies let view_internal, in the history as in
            # the messages (a party's history skips them, as replay does).
            internal = self.authorizer.decide(
                actor=actor, action="view_internal", case=snapshot, now=self.clock.now()
            ).allowed
            rows = session.execute(
                select(EVENTS.c.seq, EVENTS.c.body, EVENTS.c.prev_hash, EVENTS.c.hash)
                .where(and_(EVENTS.c.case_id == case_id, EVENTS.c.seq > after_seq))
                .order_by(EVENTS.c.seq)
                .limit(limit + 1)
            ).all()
            recorded = [event_from_body(r.body, prev_hash=r.prev_hash, hash_=r.hash) for r in rows[:limit]]
            shown = [e for e in recorded if internal or not (e.type == "message" and e.data.get("internal"))]
            events = self.reveal(shown, session=session)
        next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
        return Page(data=events, next_cursor=next_cursor)

    def list_cases(
        self,
        *,
        actor: Actor,
        filters: CaseFilters = NO_FILTERS,
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
        listing = self._listing(actor, filters)
        if listing is None:
            return Page(data=[])
        condition, filters, decide = listing

        def read(below: int | None, count: int) -> list[tuple[int, CaseSnapshot]]:
            with self.db.read() as session:
                rows = session.execute(list_query(condition, filters, below, count)).all()
                # As the policies see them now: with their merchant's current flag.
                seen = seen_all(session, [snapshot_from_json(r.snapshot) for r in rows])
            return [(r.pk, case) for r, case in zip(rows, seen, strict=True)]

        shown, next_pk = fill_page(read, decide, before, limit)
        return Page(
            data=self.reveal([case for _, case in shown]),
            next_cursor=None if next_pk is None else encode_cursor(next_pk),
        )

    def list_by_activity(
        self,
        *,
        actor: Actor,
        filters: CaseFilters = NO_FILTERS,
        after: tuple[datetime, int] | None = None,
        limit: int = 50,
    ) -> Page:
        """:meth:`list_cases` in the order of last activity (``updated_at``: every event moves it),
        newest first, across pages. ``after``: the decoded (``decode_activity_cursor``)
        ``next_cursor`` of the previous page."""
        limit = max(1, min(limit, MAX_PAGE))
        listing = self._listing(actor, filters)
        if listing is None:
            return Page(data=[])
        condition, filters, decide = listing

        def read(position: tuple[datetime, int] | None, count: int) -> list[tuple[tuple[datetime, int], CaseSnapshot]]:
            with self.db.read() as session:
                rows = session.execute(activity_query(condition, filters, position, count)).all()
                seen = seen_all(session, [snapshot_from_json(r.snapshot) for r in rows])
            return [((r.updated_at, r.pk), case) for r, case in zip(rows, seen, strict=True)]

        shown, next_key = fill_page(read, decide, after, limit)
        return Page(
            data=self.reveal([case for _, case in shown]),
            next_cursor=None if next_key is None else encode_activity_cursor(*next_key),
        )

    def _listing(
        self, actor: Actor, filters: CaseFilters
    ) -> tuple[Condition, CaseFilters, Callable[[list[CaseSnapshot]], list[bool]] | None] | None:
        """What a list of cases for ``actor`` reads: the SQL condition the view policies give,
        the filters (a consumer id as the log names them), and Cedar's ``view`` on each row
        where the condition is wider than the policies (None: the condition decides). None
        when the policies show the caller nothing."""
        authorizer = self.authorizer  # one policy set for the page, as for a command
        if self.privacy is not None and (actor.role == "consumer" or filters.consumer_id is not None):
            with self.db.read() as session:
                actor = self._as_logged(session, actor)
                if filters.consumer_id is not None:
                    subject = self.privacy.subject_of(session, filters.consumer_id)
                    filters = replace(filters, consumer_id=subject or f"unknown user {filters.consumer_id}")
        visibility = authorizer.visibility(actor=actor)
        condition = restrict(visibility.condition, filters.equalities())
        if condition == FALSE:
            return None
        decide = None if visibility.decided else viewable(authorizer, actor, self.clock.now())
        return condition, filters, decide

    def allowed_actions(self, *, actor: Actor, case_id: str) -> list[ActionInfo]:
        """Every trigger and action of the case's workflow, for this caller, with reasons."""
        with self.db.read() as session:
            snapshot = load_seen(session, case_id)
            machine = self.registry.machine(snapshot.workflow_version, session)
            actor = self._as_logged(session, actor)
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
            actor = self._as_logged(session, actor)
            self.require_visible(actor, snapshot)
            internal = self.authorizer.decide(
                actor=actor, action="view_internal", case=snapshot, now=self.clock.now()
            ).allowed
            stmt = select(MESSAGES).where(MESSAGES.c.case_id == case_id, MESSAGES.c.seq > after_seq)
            if not internal:
                stmt = stmt.where(MESSAGES.c.internal.is_(False))
            rows = session.execute(stmt.order_by(MESSAGES.c.seq).limit(limit + 1)).all()
            messages = self.reveal([Message(**row._mapping) for row in rows[:limit]], session=session)
        next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
        return Page(data=list(messages), next_cursor=next_cursor)

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

    def route_waiting(self) -> int:
        """Route every case still waiting for a mediator now (e.g. after adding mediators); return
        how many were assigned. Without triage there is no router: 0."""
        triage = self.triage
        return route_waiting(self, triage) if triage is not None else 0

    def open_claims(self, *, actor: Actor) -> int:
        """How many open cases are against the merchant ``actor`` speaks for (0 for anyone else):
        the count of a merchant's own inbox, which a page of the list cannot give."""
        if actor.role != "merchant" or not actor.merchant_id:
            return 0
        with self.db.read() as session:
            return count_open_claims(session, actor.merchant_id)

    def count_cases(self) -> int:
        """How many cases the database holds."""
        with self.db.read() as session:
            return count_cases(session)


def reroute_on_warning(session: Session, service: CaseService, case_id: str, timer: str, now: datetime) -> None:
    """A clock nears breach: if the case still waits for a mediator, try routing it again (the
    subscription runtime/bootstrap.py wires to the sweep's warnings)."""
    triage = service.triage
    if triage is not None and triage.route:
        route_case(session, service, triage, case_id, now, why=f"{timer} clock warning")
