"""Checks of a database after a many-process run against the client's books (bench/lifecycles.py).

Each check returns a list of problems (empty = holds), so that a failing test names
every broken case at once instead of the first.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bench.lifecycles import PLANS, Books, CaseRun, Step
from store.db import Database
from store.tables import CASES, EVENTS, SUBJECTS, TIMERS

SYSTEM_ID = "system"
TIMER_TYPES = frozenset(
    {
        "timer_started",
        "timer_met",
        "timer_cancelled",
        "timer_paused",
        "timer_resumed",
        "timer_warned",
        "timer_breached",
        "flag_raised",
    }
)


@dataclass(frozen=True)
class Ev:
    seq: int
    type: str
    actor_id: str
    at: str
    data: dict[str, Any]

    @property
    def trigger(self) -> str | None:
        value = self.data.get("trigger")
        return str(value) if value is not None else None

    def matches(self, event: str, actor_id: str, trigger: str | None) -> bool:
        return self.type == event and self.actor_id == actor_id and (trigger is None or self.trigger == trigger)


def load_logs(db: Database) -> tuple[dict[str, list[Ev]], dict[str, Any]]:
    """Every case's events in seq order, and every case row by id. A consumer acts in the log
    under a pseudonym (cases/personal.py): events carry the marketplace's user id again here,
    as the client's books do."""
    logs: dict[str, list[Ev]] = defaultdict(list)
    with db.read() as session:
        rows = session.execute(
            select(
                EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.type, EVENTS.c.actor_id, EVENTS.c.at, EVENTS.c.body
            ).order_by(EVENTS.c.case_id, EVENTS.c.seq)
        ).all()
        cases = {row.id: row for row in session.execute(select(CASES)).all()}
        user_ids = dict(session.execute(select(SUBJECTS.c.subject, SUBJECTS.c.user_id)).tuples().all())
    for case_id, seq, type_, actor_id, at, body in rows:
        actor = user_ids.get(actor_id) or actor_id
        logs[case_id].append(Ev(seq, type_, actor, at.isoformat(), json.loads(body).get("data", {})))
    return logs, cases


def check_books(db: Database, runs: list[CaseRun], books: Books) -> list[str]:
    """Acknowledged work is all there; unacknowledged work happened whole or not at all
    (as the client found on re-reading); nothing happened twice; no seq gaps."""
    logs, rows = load_logs(db)
    problems: list[str] = []
    by_id = {run.case_id: run for run in runs}
    if len(rows) != len(runs) or set(rows) != set(by_id):
        problems.append(f"{len(rows)} cases stored for {len(runs)} filings (doubled or lost filings)")
    consumers = Counter(row.consumer_id for row in rows.values())
    problems += [f"consumer {c} has {n} cases, filed one" for c, n in consumers.items() if n != 1]
    for case_id, events in logs.items():
        seqs = [e.seq for e in events]
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{case_id}: seq gaps or repeats: {seqs}")
        row = rows.get(case_id)
        if row is not None and row.version != len(seqs):
            problems.append(f"{case_id}: row version {row.version}, log has {len(seqs)} events")
    for ack in books.acks:
        events = logs.get(ack.case_id, [])
        first = events[ack.before] if len(events) > ack.before else None
        if first is None or not first.matches(ack.event, ack.actor_id, ack.trigger):
            problems.append(
                f"{ack.case_id}: acknowledged {ack.step} (v{ack.before}->v{ack.after}) not at seq "
                f"{ack.before + 1}: {first}"
            )
        if len(events) < ack.after:
            problems.append(f"{ack.case_id}: acknowledged v{ack.after}, log ends at {len(events)}")
    # Each slot (case, version sent) holds at most one attempt's effect: the acknowledged
    # one, or an unacknowledged one the client found there on re-reading.
    claims = Counter((a.case_id, a.before) for a in books.acks)
    claims.update((u.case_id, u.before) for u in books.unacked if u.happened)
    problems += [
        f"{case_id}: {n} attempts claim the command after v{before}" for (case_id, before), n in claims.items() if n > 1
    ]
    for lost in books.unacked:
        if not lost.case_id:
            continue  # a filing that never happened: the consumer check above counts cases
        events = logs.get(lost.case_id, [])
        first = events[lost.before] if len(events) > lost.before else None
        found = first is not None and first.matches(lost.event, lost.actor_id, lost.trigger)
        if lost.happened and not found:
            problems.append(
                f"{lost.case_id}: unacknowledged {lost.step} at v{lost.before} was read as done, "
                f"but the log has {first} there"
            )
        if not lost.happened and found and not claims[(lost.case_id, lost.before)]:
            # The slot holds this step's event, yet no later attempt claims it: the lost
            # attempt happened after the client had read that it had not.
            problems.append(f"{lost.case_id}: unacknowledged {lost.step} at v{lost.before} happened unseen")
    for run in runs:
        problems += _exactly_the_plan(run, logs.get(run.case_id, []))
    return problems


def _exactly_the_plan(run: CaseRun, events: list[Ev]) -> list[str]:
    """The case's people's events are exactly its completed steps, once each, in order."""
    expected: list[tuple[str, str, str | None]] = [("filed", run.consumer, None)]
    steps: dict[str, Step] = {s.name: s for s in PLANS[run.plan]}
    steps["close"] = steps.get("close") or Step("close", "mediator", "", {}, "transitioned", "close")
    for name in run.done[1:]:
        step = steps[name]
        expected.append((step.event, run.actor(step.role)[0], step.trigger))
    actual = [
        (e.type, e.actor_id, e.trigger if e.type == "transitioned" else None)
        for e in events
        if e.type not in TIMER_TYPES and e.actor_id != SYSTEM_ID
    ]
    if actual != expected:
        return [f"{run.case_id} ({run.plan}): events {actual} != the steps done {expected}"]
    return []


@dataclass
class TimerFindings:
    firings: int  # (case, timer, instant) triples with a warning or breach
    breaches: Counter[str]
    system_moves: Counter[str]
    problems: list[str]


def check_timers(db: Database, *, swept_at: datetime | None = None) -> TimerFindings:
    """Every timer effect at most once per run of the clock, every breach's trigger fired once
    by the system right after it, and (given the sweep instant) no due clock left running."""
    logs, _ = load_logs(db)
    problems: list[str] = []
    firings: set[tuple[str, str, str]] = set()
    breaches: Counter[str] = Counter()
    system_moves: Counter[str] = Counter()
    for case_id, events in logs.items():
        runs: dict[str, Counter[str]] = {}
        for i, e in enumerate(events):
            timer = str(e.data.get("timer", ""))
            if e.type == "timer_started":
                runs[timer] = Counter()
            elif e.type in ("timer_warned", "timer_breached"):
                firings.add((case_id, timer, e.at))
                counts = runs.setdefault(timer, Counter())
                counts[e.type] += 1
                if counts[e.type] > 1:
                    problems.append(f"{case_id}: {e.type} {timer} twice in one run (seq {e.seq})")
                if e.type == "timer_breached":
                    breaches[timer] += 1
                    trigger = e.data.get("trigger")
                    nxt = events[i + 1] if i + 1 < len(events) else None
                    if trigger and (nxt is None or not nxt.matches("transitioned", SYSTEM_ID, trigger)):
                        problems.append(f"{case_id}: breach of {timer} at seq {e.seq} not followed by {trigger}")
            elif e.type == "transitioned" and e.actor_id == SYSTEM_ID:
                system_moves[e.trigger or ""] += 1
                prev = events[i - 1] if i else None
                if prev is None or prev.type != "timer_breached" or prev.data.get("trigger") != e.trigger:
                    problems.append(f"{case_id}: system {e.trigger} at seq {e.seq} without a breach before it")
    if swept_at is not None:
        with db.read() as session:
            left = session.execute(
                select(TIMERS.c.case_id, TIMERS.c.name).where(TIMERS.c.next_fire_at <= swept_at)
            ).all()
        problems += [f"{c}: timer {n} due by the sweep but still live" for c, n in left]
    return TimerFindings(len(firings), breaches, system_moves, problems)
