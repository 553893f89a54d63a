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
from dataclasses import asdict

from sqlmodel import Session

from notify.plan import plan
from notify.rules import NotificationRules
from store.fastpath import inserting
from store.tables import OUTBOX
from workflow.events import RecordedEvent
from workflow.model import CaseSnapshot, from_iso

_INSERT = inserting(OUTBOX)


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
        body = {
            "notices": [asdict(n) for n in planned.notices],
            "reminders": [asdict(r) for r in planned.reminders],
        }
        _INSERT.execute(
            session.connection(),
            {
                "case_id": after.id,
                "first_seq": events[0].seq,
                "last_seq": events[-1].seq,
                "planned": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                "created_at": from_iso(events[-1].at),
                "fanned_out": False,
            },
        )
