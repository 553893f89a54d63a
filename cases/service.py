"""CaseService: file, act and query. One command = one transaction.

The facade over the case room: each command runs the command path (cases/commands.py) in a
write transaction of its own, each query the reads of cases/queries.py in a read transaction.
A request's Idempotency-Key and the answer it got are written in the command's transaction
(cases/idempotency.py), so a retry after a crash never acts twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from cases import idempotency
from cases.commands import execute_command, file_case, new_case_id, store_blob
from cases.queries import (
    MAX_PAGE,
    NO_FILTERS,
    ActionInfo,
    CaseFilters,
    Page,
    count_cases,
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
from policies.base import Authorizer, require
from policies.visibility import FALSE, restrict
from sla.calendar import Calendar
from sla.clock import Clock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.codec import snapshot_from_json
from store.db import Database
from store.tables import BLOBS, CASES, EVENTS, MESSAGES
from workflow.chain import event_from_body
from workflow.errors import (
    ConflictError,
    NotFoundError,
)
from workflow.model import Actor, CaseSnapshot, Evidence, NewCase

FILING_ATTEMPTS = 3


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
    id_factory: Callable[[datetime], str] = field(default=new_case_id)
    on_timer_warned: tuple[WarnHandler, ...] = ()

    def weight(self, priority: str) -> int:
        """The load units a case of this priority level takes of a mediator's capacity."""
        return self.triage.weight(priority) if self.triage is not None else 1

    def calendars(self) -> Mapping[str, Calendar]:
        """The desk's business calendars (the packaged ones when the service runs without clocks)."""
        return self.sla.calendars if self.sla is not None else default_calendars()

    # --- commands -------------------------------------------------------------

    def file(self, *, actor: Actor, new_case: NewCase, workflow: str | None = None) -> CaseSnapshot:
        """File a complaint: triaged, decided, written, then routed to a mediator when one has room,
        all in one transaction."""
        definition = self.registry.active(workflow)
        triage = self.triage  # one triage for the whole filing, even if a reload swaps it

        def work(session: Session) -> CaseSnapshot:
            prepare = triage.prepare if triage is not None else None
            case = file_case(session, self, actor=actor, new_case=new_case, definition=definition, prepare=prepare)
            if triage is not None and triage.route:
                routed = route_case(session, self, triage, case.id, self.clock.now(), why="on filing")
                return routed or case
            return case

        for attempt in range(FILING_ATTEMPTS):
            try:
                return self.db.run_write(lambda s: idempotency.command(s, self.clock.now(), lambda: work(s)))
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

    def route_waiting(self) -> int:
        """Route every case still waiting for a mediator now (e.g. after adding mediators); return
        how many were assigned. Without triage there is no router: 0."""
        triage = self.triage
        return route_waiting(self, triage) if triage is not None else 0

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
