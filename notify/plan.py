"""Which notices one write to a case causes: pure, from the case before and after the write and
the events it appended, under the desk's rules (notify/rules.py).

A notice names its recipient as a key, the side they are on and their id: ``consumer:<user id>``,
``mediator:<user id>``, ``merchant:<merchant id>`` (every user of that merchant sees it) and
``user:<user id>`` for anyone else (an endpoint's owner). :func:`inbox_keys` gives a caller's.
A notice's data holds ids, kinds and instants only, never a case's texts: texts are read
through the services when a notice is shown or sent (outbox/texts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notify.rules import NotificationRules
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, from_iso, to_iso


@dataclass(frozen=True, slots=True)
class Notice:
    recipient: str
    kind: str
    case_id: str
    seq: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder to send at ``at`` if the clock still runs towards ``due_at`` then."""

    case_id: str
    timer: str
    due_at: str
    at: str


@dataclass(frozen=True, slots=True)
class Plan:
    notices: tuple[Notice, ...] = ()
    reminders: tuple[Reminder, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.notices or self.reminders)


def user(user_id: str) -> str:
    return f"user:{user_id}"


def consumer(user_id: str) -> str:
    return f"consumer:{user_id}"


def mediator(user_id: str) -> str:
    return f"mediator:{user_id}"


def inbox_keys(user_id: str, party: str, merchant_id: str | None) -> list[str]:
    """The recipient keys whose notices a caller sees: their side's, and their own as a user."""
    keys = [user(user_id)]
    if party == "consumer":
        keys.append(consumer(user_id))
    elif party == "mediator":
        keys.append(mediator(user_id))
    elif party == "merchant" and merchant_id:
        keys.append(merchant(merchant_id))
    return keys


def reader_of(key: str) -> tuple[str, str, str | None]:
    """(user id, role, merchant id) to read a case as the recipient ``key`` sees it."""
    side, _, ident = key.partition(":")
    if side == "merchant":
        return f"{ident}-notices", "merchant", ident
    if side == "mediator":
        return ident, "mediator", None
    return ident, side if side == "consumer" else "user", None


def merchant(merchant_id: str) -> str:
    return f"merchant:{merchant_id}"


def party_keys(case: CaseSnapshot, names: Sequence[str]) -> list[str]:
    """The recipient keys of ``consumer``, ``merchant``, ``mediator`` and ``parties`` on a case."""
    keys: list[str] = []
    for name in names:
        if name in ("consumer", "parties"):
            keys.append(consumer(case.consumer_id))
        if name in ("merchant", "parties"):
            keys.append(merchant(case.merchant_id))
        if name == "mediator" and case.mediator_id:
            keys.append(mediator(case.mediator_id))
    return list(dict.fromkeys(keys))


def acting_keys(rules: NotificationRules, case: CaseSnapshot, timer: str) -> list[str]:
    return party_keys(case, rules.acting.get(timer, ()))


def running_deadlines(case: CaseSnapshot) -> list[dict[str, str]]:
    return [{"timer": t.name, "due_at": t.due_at} for t in case.timers if t.status == "running"]


# The event types plan() acts on (its branches below): a write with none of them (a message, a
# merchant's response, an accepted offer: 3 of bench B1's 11 commands) causes nothing under any
# rules, and is answered before anything is set up, since the outbox plans every write on the
# command path.
PLANNED_TYPES = frozenset(
    {
        "filed",
        "timer_started",
        "transitioned",
        "offer_proposed",
        "info_requested",
        "timer_warned",
        "timer_breached",
        "timer_rescheduled",
        "timer_resumed",
        "timer_paused",
    }
)
NOTHING = Plan()


def plan(
    rules: NotificationRules,
    before: CaseSnapshot | None,
    after: CaseSnapshot,
    events: Sequence[RecordedEvent],
) -> Plan:
    """The notices and reminders the events of one write cause. Several changes of one kind
    to one recipient in one write (two clocks moved by one calendar change) are one notice."""
    for event in events:
        if event.type in PLANNED_TYPES:
            break
    else:
        return NOTHING
    notices: dict[tuple[str, str], Notice] = {}
    reminders: list[Reminder] = []
    last = events[-1].seq if events else after.version

    def send(kind: str, names: Sequence[str] | None, data: dict[str, Any], *, keys: Sequence[str] = ()) -> None:
        wanted = rules.recipients(kind)
        if not wanted:
            return
        targets = list(keys) if names is None else party_keys(after, names)
        for key in targets:
            found = notices.get((key, kind))
            if found is None:
                notices[(key, kind)] = Notice(key, kind, after.id, last, dict(data))
            elif "changes" in data:
                found.data["changes"] = [*found.data.get("changes", []), *data["changes"]]

    def recipients(kind: str) -> list[str]:
        out: list[str] = []
        for name in rules.recipients(kind):
            if name not in ("acting", "asked"):
                out.append(name)
        return out

    # Whether a clock the merchant acts on ran before this write: worked out at the first clock
    # that starts (None until then), as most writes start none.
    merchant_clock_before: bool | None = None
    for event in events:
        data = event.data
        kind = event.type
        if kind == "filed":
            send(
                "acknowledgement",
                recipients("acknowledgement"),
                {"category": after.category, "deadlines": running_deadlines(after), "state": after.state},
            )
        elif kind == "timer_started":
            name = data["timer"]
            if merchant_clock_before is None:
                merchant_clock_before = before is not None and any(
                    "merchant" in _parties(rules, t.name) for t in before.timers
                )
            if "merchant" in _parties(rules, name) and not merchant_clock_before and not after.merchant_responded:
                merchant_clock_before = True
                send("new_claim", recipients("new_claim"), {"timer": name, "due_at": data["due_at"]})
            reminder = _reminder(rules, after.id, name, data["due_at"], event.at)
            if reminder is not None:
                reminders.append(reminder)
        elif kind == "transitioned":
            mediator_id = data.get("mediator_id")
            if mediator_id and (before is None or before.mediator_id != mediator_id):
                send(
                    "assigned",
                    None,
                    {"deadlines": running_deadlines(after), "state": data["to"]},
                    keys=[mediator(mediator_id)] if "mediator" in rules.recipients("assigned") else [],
                )
            if data.get("trigger") == "rule":
                send(
                    "ruling",
                    recipients("ruling"),
                    {"outcome": data.get("outcome"), "awarded_amount": data.get("awarded_amount")},
                )
        elif kind == "offer_proposed":
            asked = "merchant" if data.get("party") == "consumer" else "consumer"
            names = [*recipients("offer"), *([asked] if "asked" in rules.recipients("offer") else [])]
            send(
                "offer",
                names,
                {
                    "offer_id": data["offer_id"],
                    "amount": data["amount"],
                    "currency": data["currency"],
                    "deadlines": running_deadlines(after),
                },
            )
        elif kind == "info_requested":
            asked = str(data["party"])
            names = [*recipients("info_request"), *([asked] if "asked" in rules.recipients("info_request") else [])]
            send("info_request", names, {"request_id": data["request_id"], "deadlines": running_deadlines(after)})
        elif kind == "timer_warned":
            name = data["timer"]
            names = [
                *recipients("reminder"),
                *(_parties(rules, name) if "acting" in rules.recipients("reminder") else []),
            ]
            send("reminder", names, {"timer": name, "due_at": data["due_at"], "when": "warning"})
        elif kind == "timer_breached":
            send("breach", recipients("breach"), {"timer": data["timer"], "due_at": data["due_at"]})
        elif kind in ("timer_rescheduled", "timer_resumed", "timer_paused"):
            name = data["timer"]
            old = before.timer(name) if before is not None else None
            previous = data.get("previous_due_at") or (old.due_at if old is not None else None)
            new = None if kind == "timer_paused" else data.get("due_at")
            if previous == new:
                continue
            why = {
                "timer_rescheduled": data.get("reason") or "calendar changed",
                "timer_paused": "paused while " + ", ".join(data.get("while", [])),
                "timer_resumed": "resumed",
            }[kind]
            names = [*recipients("deadline_changed")]
            if "acting" in rules.recipients("deadline_changed"):
                names.extend(_parties(rules, name))
            send(
                "deadline_changed",
                names,
                {"changes": [{"timer": name, "old_due_at": previous, "new_due_at": new, "why": why, "kind": kind}]},
            )
            if new is not None:
                reminder = _reminder(rules, after.id, name, new, event.at)
                if reminder is not None:
                    reminders.append(reminder)
    return Plan(tuple(notices.values()), tuple(reminders))


def _parties(rules: NotificationRules, timer: str) -> list[str]:
    return list(rules.acting.get(timer, ()))


def _reminder(rules: NotificationRules, case_id: str, timer: str, due_at: str, at: str) -> Reminder | None:
    if rules.before_breach is None or not rules.recipients("reminder"):
        return None
    when = from_iso(due_at) - rules.before_breach
    if when <= from_iso(at):
        return None
    return Reminder(case_id, timer, due_at, to_iso(when))


def reminder_due(reminder_due_at: str, timer_due_at: str | None, status: str | None, now: datetime) -> bool:
    """A stored reminder still applies: the clock runs towards the same deadline, not yet passed."""
    return status == "running" and timer_due_at == reminder_due_at and from_iso(reminder_due_at) > now
