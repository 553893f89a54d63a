"""SLA planning: which timer events a case's change causes, and how a timer reads now.

Pure: from two snapshots of a case, its workflow definition and the desk's calendars, the
planner says which clocks start, stop, pause, resume or are met (``follow_up``), and what a
running clock shows (``view``: business time remaining and elapsed). Firing due timers is the
database's half, ``cases/sweep.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sla.calendar import Calendar
from sla.timers import TimerPlan, calendar_for, elapsed, end_of_local_day, plan_timer, remaining, resume_plan
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
            keep = set(definition.state(after.state).timers) | {t.name for t in definition.timers if t.action_clock}
            old_state = before.state if before else None
            for name in sorted(live - keep):
                kind = "timer_met" if command in definition.timer(name).stop_on else "timer_cancelled"
                events.append(Event(kind, {"timer": name, "by": command, "left_state": old_state}))
                live.discard(name)
            for name in definition.state(after.state).timers:
                if name in live:
                    continue  # a clock listed by both states runs on
                events.append(self._started(definition.timer(name), after, now))
                status[name] = "running"
                live.add(name)
        else:
            for name in sorted(live):
                if command in definition.timer(name).stop_on:
                    events.append(Event("timer_met", {"timer": name, "by": command}))
                    live.discard(name)
        # Action clocks run across state changes: met by their stop_on command (also one that
        # changes the state), cancelled only when the case reaches a final state.
        final = definition.state(after.state).final
        for timer in definition.timers:
            if not timer.action_clock:
                continue
            if timer.name in live and entering and command in timer.stop_on:
                events.append(Event("timer_met", {"timer": timer.name, "by": command}))
                live.discard(timer.name)
            elif timer.name in live and final:
                events.append(Event("timer_cancelled", {"timer": timer.name, "by": command, "left_state": None}))
                live.discard(timer.name)
            if command in timer.start_on and timer.name not in live and not final:
                events.append(self._started(timer, after, now))
                status[timer.name] = "running"
                live.add(timer.name)
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

    def _started(self, timer: TimerDef, case: CaseSnapshot, now: datetime) -> Event:
        """``timer_started`` for ``timer`` starting at ``now``, or at the instant of its
        ``start_from`` fact; due at its ``due_from`` fact when the case carries it."""
        calendar = self.calendar(timer)
        zone = self._zone(timer)
        start = _fact_instant(case, timer.start_from, zone, end_of_day=False) or now
        plan = plan_timer(timer, calendar, start)
        due_at = _fact_instant(case, timer.due_from, zone, end_of_day=True)
        if due_at is not None:
            length = (due_at - start).total_seconds()
            warn = start + timedelta(seconds=round(length * timer.warn_at)) if timer.warn_at is not None else None
            plan = TimerPlan(due_at=due_at, warn_at=warn)
        data: dict[str, object] = {
            "timer": timer.name,
            "due_at": to_iso(plan.due_at),
            "warn_at": to_iso(plan.warn_at) if plan.warn_at else None,
            "goal": str(timer.goal),
            "calendar": calendar.name,
        }
        if start != now:
            data["started_at"] = to_iso(start)
        if due_at is not None:
            data["due_from"] = timer.due_from
        return Event("timer_started", data)

    def _zone(self, timer: TimerDef) -> str:
        named = self.calendars.get(timer.calendar)
        return named.timezone if named is not None else "UTC"

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


def _fact_instant(case: CaseSnapshot, name: str | None, zone: str, *, end_of_day: bool) -> datetime | None:
    """The instant a clock takes from fact ``name``: an instant fact as it is; a date fact as the
    start (or the end) of that local day in the clock's calendar zone. None when absent."""
    if name is None:
        return None
    value = case.facts.get(name)
    if not isinstance(value, str):
        return None
    if len(value) == 10:
        day = date.fromisoformat(value)
        if end_of_day:
            return end_of_local_day(zone, datetime.combine(day, time(12), tzinfo=ZoneInfo(zone)), 0)
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return from_iso(value)
