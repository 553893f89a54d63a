"""What the pages show, gathered from the Engine's services (never from SQL or raw storage).

A case page reads the case, its history, its messages, its clocks and the actions the
policies allow this viewer; an inbox reads the merchant's urgency queue. Buttons come from
``allowed_actions``: an action the viewer's role works with is shown when the workflow makes it
possible in the case's state, enabled when the policies allow it and disabled, with the
policies' reason, when they do not. The console never decides access itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cases.queries import ActionInfo, CaseFilters, decode_cursor
from cases.sweep import QueueItem, case_timers, queue
from intake.rulebook import RuleEntry
from reports.merchants import MerchantRow, merchants_report
from runtime.engine import Engine
from sla.planner import TimerView
from workflow.events import RecordedEvent
from workflow.model import Actor, CaseSnapshot

# The reason allowed_actions gives when the workflow, not a policy, rules an action out.
NOT_POSSIBLE_PREFIX = "not possible in state"

# The actions each role works with on a case page; others are not offered at all.
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "consumer": (
        "comment",
        "add_evidence",
        "submit_evidence",
        "propose_offer",
        "accept_offer",
        "reject_offer",
        "provide_info",
        "withdraw",
        "reopen",
        "rate",
    ),
    "merchant": (
        "respond",
        "comment",
        "add_evidence",
        "submit_evidence",
        "propose_offer",
        "accept_offer",
        "reject_offer",
        "provide_info",
        "accept_claim",
        "rate",
    ),
}
_MEDIATOR_ACTIONS = (
    "assign",
    "start_mediation",
    "request_info",
    "comment",
    "escalate",
    "settle",
    "close",
    "reject",
)
ROLE_ACTIONS["mediator"] = _MEDIATOR_ACTIONS
ROLE_ACTIONS["senior_mediator"] = (*_MEDIATOR_ACTIONS, "rule")
PAGE = 200  # the services' largest page


@dataclass(frozen=True)
class ActionButton:
    """One action as a page offers it: enabled, or disabled with the policies' reasons."""

    name: str
    kind: str
    allowed: bool
    reasons: tuple[str, ...]


def buttons(actor: Actor, actions: list[ActionInfo]) -> dict[str, ActionButton]:
    """The actions ``actor``'s role works with that the workflow makes possible now."""
    wanted = ROLE_ACTIONS.get(actor.role, ())
    shown = {}
    for info in actions:
        if info.name not in wanted:
            continue
        if not info.allowed and info.reasons and info.reasons[0].startswith(NOT_POSSIBLE_PREFIX):
            continue
        shown[info.name] = ActionButton(info.name, info.kind, info.allowed, info.reasons)
    return shown


def _pages(fetch: Any) -> Iterator[Any]:
    after = 0
    while True:
        page = fetch(after)
        yield from page.data
        if page.next_cursor is None:
            return
        after = decode_cursor(page.next_cursor)


@dataclass(frozen=True)
class CaseView:
    case: CaseSnapshot
    events: list[RecordedEvent]  # oldest first
    messages: list[Any]  # message rows, oldest first
    actions: dict[str, ActionButton]
    timers: list[TimerView]
    zones: dict[str, Any]  # calendar name -> its zone
    rules: list[RuleEntry] = field(default_factory=list)  # the rulebook entries a ruling may cite
    # What the case's state reads as to the viewer's party, when the desk declares it
    # (a state's ``labels``); None: the page shows its generic state title.
    label: str | None = None

    @property
    def running_timers(self) -> list[TimerView]:
        return [t for t in self.timers if t.status in ("running", "paused")]

    def mine(self, party: str, actor: Actor) -> bool:
        return party == actor.party


def case_view(engine: Engine, actor: Actor, case_id: str) -> CaseView:
    """Everything a case page shows, as ``actor`` may see it (a hidden case: NotFoundError)."""
    service = engine.cases
    case = service.get(actor=actor, case_id=case_id)
    actions = service.allowed_actions(actor=actor, case_id=case_id)
    events = list(_pages(lambda after: service.events(actor=actor, case_id=case_id, after_seq=after, limit=PAGE)))
    messages = list(_pages(lambda after: service.messages(actor=actor, case_id=case_id, after_seq=after, limit=PAGE)))
    timers = case_timers(service, actor=actor, case_id=case_id) if engine.sla is not None else []
    zones = {name: calendar.zone for name, calendar in service.calendars().items()}
    shown = buttons(actor, actions)
    rules: list[RuleEntry] = []
    if "rule" in shown:
        rules = service.case_rules(actor=actor, case_id=case_id)[0]
        shown["rule"] = _ruling_button(engine, actor, case, shown["rule"], rules)
    label = service.party_labels(actor=actor, cases=[case]).get(case.id)
    return CaseView(case, events, messages, shown, timers, zones, rules, label)


def _ruling_button(
    engine: Engine, actor: Actor, case: CaseSnapshot, button: ActionButton, rules: list[RuleEntry]
) -> ActionButton:
    """A ruling must cite the rulebook (policy ``ruling-cites-the-rulebook``), and its form
    carries the citations: the policies decide the button as for a ruling that cites one."""
    if button.allowed:
        return button
    service = engine.cases
    decision = service.authorizer.decide(
        actor=actor,
        action="rule",
        case=case,
        now=service.clock.now(),
        payload={"citations": [entry.id for entry in rules[:1]] or ["citation"]},
    )
    return replace(button, allowed=decision.allowed, reasons=tuple(decision.reasons))


@dataclass(frozen=True)
class InboxView:
    items: list[QueueItem]  # open claims with a running clock, nearest deadline first
    others: list[CaseSnapshot]  # on the last page: claims without a running clock, newest first
    next_cursor: str | None
    summary: MerchantRow | None
    open_claims: int
    zones: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)  # case id -> the merchant's label, where declared


def inbox_view(
    engine: Engine,
    actor: Actor,
    *,
    state: str | None = None,
    category: str | None = None,
    after: tuple[Any, str] | None = None,
    limit: int = 50,
) -> InboxView:
    """A merchant's claims (the policies show them only their own merchant id's), nearest
    deadline first, and their summary."""
    service = engine.cases
    items, next_key = queue(service, actor=actor, limit=limit, after=after, state=state, category=category)
    others: list[CaseSnapshot] = []
    if next_key is None:  # the claims without a running clock come after the last deadline
        filters = CaseFilters(state=state, category=category, merchant_id=actor.merchant_id)
        shown = {item.case.id for item in items}
        others = [
            case
            for case in service.list_cases(actor=actor, filters=filters, limit=limit).data
            if case.id not in shown and not any(t.status == "running" for t in case.timers)
        ]
    next_cursor = f"{next_key[0].isoformat()}|{next_key[1]}" if next_key is not None else None
    zones = {name: calendar.zone for name, calendar in service.calendars().items()}
    labels = service.party_labels(actor=actor, cases=[*(item.case for item in items), *others])
    return InboxView(
        items, others, next_cursor, merchant_summary(engine, actor), service.open_claims(actor=actor), zones, labels
    )


SUMMARY_PERIOD = timedelta(days=365)


def merchant_summary(engine: Engine, actor: Actor) -> MerchantRow | None:
    """The merchant's own figures over the last year and their supervision flag, if raised."""
    if actor.role != "merchant" or not actor.merchant_id:
        return None
    now = engine.clock.now()
    report = merchants_report(
        engine.db,
        engine.triage.supervision,
        since=now - SUMMARY_PERIOD,
        until=now,
        merchant_id=actor.merchant_id,
        categories=engine.cases.categories,
    )
    return report.rows[0] if report.rows else None


def my_cases(
    engine: Engine, actor: Actor, *, after: tuple[datetime, int] | None = None, limit: int = 50
) -> tuple[list[Any], Any]:
    """The cases the actor may see, newest activity first across pages (the database's order,
    not a page's), with their clocks and the label each state declares for the actor's side
    (None where it declares none): a consumer's own cases; for anyone else (a mediator, an
    auditor, an admin), every case their view policies show."""
    service = engine.cases
    filters = CaseFilters(consumer_id=actor.id) if actor.role == "consumer" else CaseFilters()
    page = service.list_by_activity(actor=actor, filters=filters, after=after, limit=limit)
    labels = service.party_labels(actor=actor, cases=page.data)
    rows = []
    for case in page.data:
        timers = case_timers(service, actor=actor, case_id=case.id) if engine.sla is not None else []
        rows.append((case, [t for t in timers if t.status in ("running", "paused")], labels.get(case.id)))
    return rows, page.next_cursor
