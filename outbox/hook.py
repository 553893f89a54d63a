"""The outbox's write hook: one ``outbox`` row per write to a case, in the write's transaction.

The row names the case and the events' range and carries the notices and reminders the pure
planner (notify/plan.py) decided, as JSON of ids and instants. Webhook deliveries are not
decided here: which endpoints want an event is read when the row is fanned out
(outbox/fanout.py), so registering an endpoint needs no lock against the command path, and a
command pays one pipelined insert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlmodel import Session

from notify.plan import Notice, Reminder, plan
from notify.rules import NotificationRules
from store.fastpath import inserting
from store.tables import OUTBOX
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, from_iso

# ``fanned_out`` is left to its server default (false): one parameter less to convert per row.
_INSERT = inserting(OUTBOX, omit=("fanned_out",))
# A write that plans nothing (4 of bench B1's 11 commands) stores this, not an encoding of two
# empty lists; fan-out reads a missing list as empty.
_NOTHING = "{}"
# One encoder for every row: json.dumps with options other than its defaults builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class OutboxHook:
    """``CaseService.on_written``: writes the outbox row. ``rules`` is swapped by a desk reload."""

    def __init__(self, rules: NotificationRules) -> None:
        self.rules = rules

    def __call__(
        self, session: Session, before: CaseSnapshot | None, after: CaseSnapshot, events: Sequence[RecordedEvent]
    ) -> None:
        if not events:
            return
        planned = plan(self.rules, before, after, events)
        last = events[-1]
        _INSERT.execute(
            session.connection(),
            {
                "case_id": after.id,
                "first_seq": events[0].seq,
                "last_seq": last.seq,
                "planned": _encode(planned.notices, planned.reminders) if planned else _NOTHING,
                "created_at": from_iso(last.at),
            },
        )


def _encode(notices: Sequence[Notice], reminders: Sequence[Reminder]) -> str:
    # Flat dicts by hand, not dataclasses.asdict: that deep-copies every value through its
    # recursion (a third of the hook's time); a notice's data is already plain JSON values.
    body = {
        "notices": [
            {"recipient": n.recipient, "kind": n.kind, "case_id": n.case_id, "seq": n.seq, "data": n.data}
            for n in notices
        ],
        "reminders": [{"case_id": r.case_id, "timer": r.timer, "due_at": r.due_at, "at": r.at} for r in reminders],
    }
    return _JSON.encode(body)
