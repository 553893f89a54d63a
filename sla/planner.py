"""SLA planning: which timer events a case's change causes, and how a timer reads now.

Pure: from two snapshots of a case, its workflow definition and the desk's calendars, the
planner says which clocks start, stop, pause, resume or are met (``follow_up``), and what a
running clock shows (``view``: business time remaining and elapsed). Firing due timers is the
database's half, ``cases/sweep.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sla.calendar import Calendar
from sla.timers import calendar_for, elapsed, plan_timer, remaining, resume_plan
from workflow.definition import TimerDef, WorkflowDefinition
from workflow.events import Event
from workflow.model import CaseSnapshot, TimerState, from_iso, to_iso

LIVE = ("running", "paused")


@dataclass(frozen=True)
class TimerView:
    """A timer as the API shows it, with business time remaining and elapsed."""

    name: str
    status: str
    started_at: str
    due_at: str
    warn_at: str | None
    warned: bool
    calendar: str
    goal: str
    remaining_seconds: int
    elapsed_seconds: int
    paused_seconds: int
    ended_at: str | None


class SlaPlanner:
    """Decides the timer events that follow from a case's change, on the desk's calendars."""

    def __init__(self, calendars: Mapping[str, Calendar]) -> None:
        self.calendars = dict(calendars)

    def calendar(self, timer: TimerDef) -> Calendar:
        return calendar_for(timer, self.calendars)

    def follow_up(
        self,
        definition: WorkflowDefinition,
        before: CaseSnapshot | None,
        after: CaseSnapshot,
        command: str,
        now: datetime,
    ) -> list[Event]:
        events: list[Event] = []
        status = {t.name: t.status for t in after.timers}
        live = {name for name, s in status.items() if s in LIVE}
        entering = before is None or before.state != after.state
        if entering:
            keep = set(definition.state(after.state).timers)
            old_state = before.state if before else None
            for name in sorted(live - keep):
                kind = "timer_met" if command in definition.timer(name).stop_on else "timer_cancelled"
                events.append(Event(kind, {"timer": name, "by": command, "left_state": old_state}))
                live.discard(name)
            for name in definition.state(after.state).timers:
                if name in live:
                    continue  # a clock listed by both states runs on
                timer = definition.timer(name)
                plan = plan_timer(timer, self.calendar(timer), now)
                events.append(
                    Event(
                        "timer_started",
                        {
                            "timer": name,
                            "due_at": to_iso(plan.due_at),
                            "warn_at": to_iso(plan.warn_at) if plan.warn_at else None,
                            "goal": str(timer.goal),
                            "calendar": self.calendar(timer).name,
                        },
                    )
                )
                status[name] = "running"
                live.add(name)
        else:
            for name in sorted(live):
                if command in definition.timer(name).stop_on:
                    events.append(Event("timer_met", {"timer": name, "by": command}))
                    live.discard(name)
        conditions = {f"awaiting_{party}" for party in after.awaiting}
        for name in sorted(live):
            timer = definition.timer(name)
            should_pause = bool(set(timer.pause_while) & conditions)
            current = after.timer(name)
            if should_pause and status[name] == "running":
                events.append(
                    Event("timer_paused", {"timer": name, "while": sorted(set(timer.pause_while) & conditions)})
                )
            elif not should_pause and status[name] == "paused" and current is not None and current.paused_at:
                plan, total = resume_plan(
                    self.calendar(timer),
                    paused_at=from_iso(current.paused_at),
                    resumed_at=now,
                    due_at=from_iso(current.due_at),
                    warn_at=from_iso(current.warn_at) if current.warn_at else None,
                    paused_business_seconds=current.paused_seconds,
                )
                events.append(
                    Event(
                        "timer_resumed",
                        {
                            "timer": name,
                            "due_at": to_iso(plan.due_at),
                            "warn_at": to_iso(plan.warn_at) if plan.warn_at else None,
                            "paused_seconds": total - current.paused_seconds,
                        },
                    )
                )
        return events

    def view(self, definition: WorkflowDefinition, timer: TimerState, now: datetime) -> TimerView:
        spec = definition.timer(timer.name)
        calendar = self.calendar(spec)
        end = from_iso(timer.ended_at) if timer.ended_at else now
        due = from_iso(timer.due_at)
        return TimerView(
            name=timer.name,
            status=timer.status,
            started_at=timer.started_at,
            due_at=timer.due_at,
            warn_at=timer.warn_at,
            warned=timer.warned,
            calendar=calendar.name,
            goal=str(spec.goal),
            remaining_seconds=remaining(calendar, end, due),
            elapsed_seconds=elapsed(
                calendar,
                from_iso(timer.started_at),
                end,
                timer.paused_seconds,
                paused_since=from_iso(timer.paused_at) if timer.paused_at else None,
            ),
            paused_seconds=timer.paused_seconds,
            ended_at=timer.ended_at,
        )
