"""The command path: one command on one case, inside the caller's transaction.

A command runs: load the projection with its version, and its merchant's flag as the
merchant's log stands (cases/merchants.py) -> may the actor see the case (else NotFound) ->
is the trigger possible (else TransitionNotAllowed) -> policy decision on the case seen with
that flag (else PolicyDenied) -> decide() -> clock follow-ups (sla/planner.py) -> number,
hash and append the events, the first recording the flag it relied on -> fold them into the
projection with a compare-and-set on the version. Any failure rolls the whole command back.

:class:`cases.service.CaseService` runs each command in a transaction of its own; the timer
sweep (cases/sweep.py), the router (cases/triage.py) and the benchmarks call
:func:`execute_command` and :class:`UnitOfWork` inside theirs. What a command reads of the
service that runs it is :class:`CommandContext`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cases.mediators import require_assignable
from cases.merchants import standing_of
from cases.personal import PersonalData
from cases.projection import insert_case, insert_messages, require_updated, update_case
from cases.queries import load_case, load_case_as
from cases.registry import WorkflowRegistry
from cases.related import related_counts
from policies.base import Authorizer, require
from privacy.fields import protect_event
from privacy.markers import Secret
from sla.calendar import Calendar
from sla.clock import Clock
from sla.planner import SlaPlanner
from store.db import Database
from store.fastpath import inserting, pipelined
from store.tables import BLOBS, EVENTS, REPORT_DIRTY
from workflow.categories import Categories
from workflow.chain import GENESIS_HASH, seal
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
from workflow.facts import validate_facts
from workflow.machine import WorkflowMachine
from workflow.merchant import MerchantStanding, seen_with, with_standing
from workflow.model import SYSTEM, Actor, CaseSnapshot, Command, NewCase, from_iso, to_iso
from workflow.text import free_text, identifier, is_identifier

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# A complaint's triage before it is filed: its category and priority decided, and what the
# ``filed`` event records about how (cases.triage.Triage.prepare).
Prepare = Callable[[Session, NewCase, datetime], tuple[NewCase, dict[str, Any]]]
# Told of every write to a case, inside its transaction and its round trip, after the events and
# the projection: (session, the case before (None: filed now), after, the events appended). It
# may only write (on PostgreSQL the statements are pipelined, nothing is read back). Wired at
# bootstrap: the transactional outbox (outbox/hook.py) records what the write must tell.
WriteHook = Callable[[Session, CaseSnapshot | None, CaseSnapshot, Sequence[RecordedEvent]], None]


class CommandContext(Protocol):
    """What a command reads of the case service that runs it (:class:`cases.service.CaseService`),
    at the moment it runs: a desk reload swaps the policy set and the triage between commands."""

    @property
    def db(self) -> Database: ...

    @property
    def registry(self) -> WorkflowRegistry: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def sla(self) -> SlaPlanner | None: ...

    @property
    def id_factory(self) -> Callable[[datetime], str]: ...

    @property
    def categories(self) -> Categories:
        """The desk's complaint categories a filing must name one of."""
        ...

    @property
    def privacy(self) -> PersonalData | None:
        """Where personal values go (None: the engine keeps texts in the log as written)."""
        ...

    def weight(self, priority: str) -> int:
        """The load units a case of this priority level takes of a mediator's capacity."""
        ...

    def calendars(self) -> Mapping[str, Calendar]:
        """The desk's business calendars (mediators' duty hours, the clocks)."""
        ...

    @property
    def on_written(self) -> tuple[WriteHook, ...]:
        """Told of every write, in its transaction (the outbox)."""
        ...


def new_case_id(now: datetime) -> str:
    """Time-ordered, unguessable public id such as ``DSP-01JH3K8V9Q-7TZ4XW``."""
    millis = int(now.timestamp() * 1000)
    stamp = "".join(_CROCKFORD[(millis >> shift) & 31] for shift in range(45, -1, -5))
    tail = "".join(secrets.choice(_CROCKFORD) for _ in range(6))
    return f"DSP-{stamp}-{tail}"


def store_blob(session: Session, digest: str, content: bytes) -> None:
    """Store evidence content once per sha256, in the caller's transaction. The same bytes
    stored by a concurrent upload are already there: nothing to do (no error that would
    abort the transaction on PostgreSQL)."""
    values = {"sha256": digest, "size": len(content), "content": content}
    dialect = session.get_bind().dialect.name
    insert_into = sqlite_insert if dialect == "sqlite" else postgresql_insert
    session.execute(insert_into(BLOBS).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))


def file_case(
    session: Session,
    service: CommandContext,
    *,
    actor: Actor,
    new_case: NewCase,
    definition: WorkflowDefinition,
    prepare: Prepare | None = None,
) -> CaseSnapshot:
    """File a complaint as a new case: validated, triaged by ``prepare`` (when the desk has an
    intake), decided by the policies, and written with its clocks. Routing it is the caller's
    next step, in the same transaction (:meth:`cases.service.CaseService.file`)."""
    categories = service.categories
    new_case = _validate_new_case(new_case, categories)
    case_facts = validate_facts(definition.facts, new_case.facts)
    now = service.clock.now()
    triage: dict[str, Any] = {}
    if prepare is not None:
        new_case, triage = prepare(session, new_case, now)
    if new_case.category not in categories:
        message = (
            f"unknown category {new_case.category!r} (the desk's categories: {categories.listing()})"
            if new_case.category
            else "category is required"
        )
        raise InvalidCommandError(message, field="category")
    privacy = service.privacy
    order_token = None
    if privacy is not None and new_case.order_ref and any(r.relation == "same_order" for r in definition.related):
        order_token = privacy.order_token(session, new_case.order_ref, now)
    related = related_counts(session, definition, new_case, now, order_token=order_token) if definition.related else {}
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
            # Only when the workflow declares facts: a case without them records what it always did.
            **({"facts": case_facts} if case_facts else {}),
            **({"related": related} if related else {}),
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
    if privacy is not None and new_case.order_ref:
        # Every case's order is indexed, so a later filing under a workflow that counts the same
        # order finds it (the log will hold only the reference's marker). The token is made now
        # (its key may need a read); the row is written with the events.
        token = order_token or privacy.order_token(session, new_case.order_ref, now)
        merchant_id = new_case.merchant_id
        work.also_write(
            lambda s: privacy.record_order(s, case_id=case_id, merchant_id=merchant_id, token=token, now=now)
        )
    return seen_with(work.write(session), standing)


def execute_command(
    session: Session,
    service: CommandContext,
    *,
    actor: Actor,
    case_id: str,
    name: str,
    data: dict[str, Any],
    reason: str = "",
    expected_version: int | None = None,
    visible_check: bool = True,
    kind: str | None = None,
    logged: bool = True,
) -> CaseSnapshot:
    """``logged``: ``actor`` is as the log knows them; otherwise a consumer is as the marketplace
    knows them, and their pseudonym is read with the case (one round trip)."""
    now = service.clock.now()
    authorizer = service.authorizer  # one policy set for the whole command (see file_case)
    privacy = service.privacy
    if not logged and privacy is not None and actor.role == "consumer":
        before, standing, subject = load_case_as(session, case_id, actor.id)
        actor = privacy.as_subject(actor, subject)
    else:
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
    for event in events:
        # decide() knows a category id's form; which categories exist is the desk's.
        if event.type == "category_corrected" and event.data["to"] not in service.categories:
            raise InvalidCommandError(
                f"data.category must be one of the desk's categories ({service.categories.listing()})",
                field="data.category",
            )
    _require_assignable(session, service, before, events)
    work = UnitOfWork(service, machine.definition, before, case_id, now, authorizer=authorizer)
    work.add(with_standing(events, standing, before), actor)
    work.follow_up(name, before)
    if kind == "action":
        _then_trigger(machine, work, authorizer, actor, name, data, reason, standing, now)
    return seen_with(work.write(session), standing)


def _then_trigger(
    machine: WorkflowMachine,
    work: UnitOfWork,
    authorizer: Authorizer,
    actor: Actor,
    name: str,
    data: dict[str, Any],
    reason: str,
    standing: MerchantStanding,
    now: datetime,
) -> None:
    """An action with ``then: <trigger>`` also fires that trigger, as the same actor, in the same
    command: when the state machine allows it from where the action left the case, the policies
    must allow it too, or the whole command is refused and nothing is written."""
    action = machine.definition.action(name)
    trigger = action.then if action is not None else None
    if trigger is None:
        return
    middle = work.current
    if not machine.may(middle.state, trigger):
        return
    decision = authorizer.decide(actor=actor, action=trigger, case=seen_with(middle, standing), now=now, payload=data)
    if not decision.allowed:
        raise PolicyDeniedError(trigger, decision.reasons, decision.policy_ids)
    events = decide(machine, middle, Command(name=trigger, actor=actor, at=now, data=data, reason=reason))
    work.add(with_standing(events, standing, middle), actor)
    work.follow_up(trigger, middle)


def _require_assignable(session: Session, service: CommandContext, before: CaseSnapshot, events: list[Event]) -> None:
    """A transition naming a mediator may only name a registered, active one with room for the
    case (cases.mediators.require_assignable), whoever fires it: a mediator, or the router."""
    for event in events:
        mediator_id = event.data.get("mediator_id") if event.type == "transitioned" else None
        if mediator_id is None:
            continue
        weight = service.weight
        # Naming the mediator the case already has adds nothing to their load.
        case_weight = 0 if mediator_id == before.mediator_id else weight(before.priority)
        require_assignable(
            session, mediator_id, case_weight=case_weight, weight=weight, lock=service.db.dialect == "postgresql"
        )


def _validate_new_case(new_case: NewCase, categories: Categories) -> NewCase:
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
    if new_case.category and new_case.category not in categories:
        raise InvalidCommandError(
            f"unknown category {new_case.category!r} (the desk's categories: {categories.listing()})",
            field="category",
        )
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
        service: CommandContext,
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
        # The personal values the events' markers stand for, stored with the events (write()).
        self.secrets: list[Secret] = []
        # Other rows the command writes, sent with its events (write()).
        self.others: list[Callable[[Session], None]] = []

    def also_write(self, write: Callable[[Session], None]) -> None:
        """Write more rows with the events, in the same pipelined block (``write`` must not read
        a result there: that would cost a round trip of its own)."""
        self.others.append(write)

    @property
    def current(self) -> CaseSnapshot:
        assert self.snapshot is not None
        return self.snapshot

    def add(self, events: Sequence[Event], actor: Actor) -> None:
        policy_version = self.policy_version
        protecting = self.service.privacy is not None
        for event in events:
            if protecting:
                # Everything that read the plaintext (decide(), the intake's classification and
                # priority rules) has run; from here on the log and the fold carry markers.
                data, secrets = protect_event(event.type, event.data)
                if secrets:
                    event = Event(event.type, data)
                    self.secrets.extend(secrets)
            seq = self.snapshot.version + 1 if self.snapshot else 1
            prev = self.snapshot.head_hash if self.snapshot else GENESIS_HASH
            recorded = _record(self.case_id, seq, event, actor, self.now, self.definition.version, policy_version, prev)
            self.records.append(recorded)
            self.snapshot = evolve(self.definition, self.snapshot, recorded[0])

    def follow_up(self, command: str, before: CaseSnapshot | None) -> None:
        """Append the clock events that the change since ``before`` causes."""
        sla = self.service.sla
        if sla is not None and self.snapshot is not None:
            events = sla.follow_up(self.definition, before, self.snapshot, command, self.now)
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
                privacy = self.service.privacy
                if privacy is not None and self.secrets:
                    # The values the events' markers stand for, sealed under the case's key.
                    privacy.store(
                        session,
                        self.case_id,
                        self.current.consumer_id,
                        self.secrets,
                        self.now,
                        new_case=before is None,
                        # Only a closed case can have been erased meanwhile by another process,
                        # whose key this one may still hold: its key row is read, not the cache.
                        was_closed=before is not None and before.closed_at is not None,
                    )
                for other in self.others:
                    other(session)
                # The reports' read model folds this case again at its next refresh
                # (reports/readmodel.py); marked here so the mark commits with the events.
                _MARK_DIRTY.execute(session.connection(), {"case_id": self.case_id})
                events = [e for e, _ in self.records]
                for hook in self.service.on_written:
                    hook(session, before, self.current, events)
                if privacy is not None:
                    # Last, so that it sees the rows above: what the command's answer reveals.
                    privacy.prefetch(
                        session,
                        self.current,
                        before_head=before.head_hash if before is not None else None,
                        secrets=self.secrets,
                    )
        except IntegrityError as exc:
            if not _seq_taken(exc):
                raise
            # (case_id, seq) is unique: a concurrent writer appended first.
            raise ConflictError(first.case_id, first.seq - 1) from exc
        if before is not None:
            require_updated(session, before, updated)
        return self.current


_INSERT_EVENTS = inserting(EVENTS)
_MARK_DIRTY = inserting(REPORT_DIRTY)


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
