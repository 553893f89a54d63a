"""The dispatcher: fans out new outbox rows, claims due deliveries, sends them and records
every attempt.

Claiming is the SLA sweep's way (cases/sweep.py): ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several dispatchers share the work; SQLite has one writer, so one claimer at a time. A claimed
delivery gets a lease instead of a lock held across the network: the claim commits, the
message is sent outside any transaction, and the result is recorded in another; a dispatcher
killed in between leaves the lease to run out and the delivery is sent again, with the same
``webhook-id`` (at least once). Only the head of each (endpoint, case) line may be claimed (no
pending delivery of the line with a lower seq), so at most one is in flight per (endpoint,
case) and a receiver sees a case's events in order.

Throughput comes from many lines at once, not from one line faster: a claim leases each head
together with the next due rows of its line (``line_depth``), and one pool thread walks the line,
sending its next event only once the previous one's delivery is committed (a dispatcher killed
after that commit cannot send the earlier event again after the later one). The answers of all
lines in flight are recorded together, in one transaction per drain of the answer queue, and new
lines are claimed while others are still being sent.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Row, and_, literal, or_, select, true, tuple_, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from cases.queries import load_snapshot
from cases.service import CaseService
from notify import signing
from notify.plan import Notice, party_keys, reminder_due, user
from notify.retry import SCHEDULE, judge, next_attempt
from notify.rules import NotificationRules
from notify.templates import Rendered, digest, language_of, render
from outbox import mail
from outbox.endpoints import secrets_in_force
from outbox.fanout import deliver_notices, fan_out
from outbox.texts import shown
from sla.clock import Clock, SystemClock
from store.tables import CONTACTS, DELIVERIES, DELIVERY_ATTEMPTS, NOTICES, OUTBOX, WEBHOOK_ENDPOINTS
from workflow.errors import DisputeError

log = logging.getLogger("disputes.outbox")
# How long the recorder waits for more answers before a transaction records those it has.
GATHER_SECONDS = 0.01
# Record transactions of one dispatcher that may run at once (each batch holds other lines).
RECORDERS = 2


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch: int = 100
    concurrency: int = 16
    # Rows of one (endpoint, case) line leased with its head and sent one after the other.
    line_depth: int = 20
    lease_seconds: float = 60.0
    timeout_seconds: float = 10.0
    schedule: tuple[float, ...] = SCHEDULE
    smtp: mail.SmtpSettings | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    pk: int
    channel: str
    target: str
    case_id: str
    seq: int
    message_id: str
    payload: str
    attempts: int
    url: str = ""
    secrets: tuple[str, ...] = ()
    email: str | None = None
    language: str = "en"
    claimed_at: float = 0.0  # time.monotonic() at the claim: the lease runs from here
    lease_until: datetime | None = None  # the lease this dispatcher holds (as written)


@dataclass(slots=True)
class Outcome:
    """One attempt's result. ``status`` None: no answer (timeout, reset, refused)."""

    item: Claimed
    status: int | None = None
    error: str = ""
    retry_after: str | None = None
    duration_ms: int = 0
    drop: str = ""  # a reason not to try again (no address, the clock moved on)
    # Not sent: the lease ran too short to start it safely; released for the next claim.
    released: bool = False
    notices: list[Notice] = field(default_factory=list)
    rest: tuple[int, ...] = ()  # the pks of the line's later events, leased with this one


@dataclass(slots=True)
class DispatchStats:
    rounds: int = 0
    fanned_out: int = 0
    attempts: int = 0
    delivered: int = 0
    failures: int = 0


class Dispatcher:
    """Delivers the outbox. ``rules`` gives the desk's notification rules in force (a reload
    swaps them); ``run_once`` does everything due now and returns how many were delivered."""

    def __init__(
        self,
        cases: CaseService,
        rules: Callable[[], NotificationRules],
        config: DispatchConfig | None = None,
        *,
        rng: random.Random | None = None,
        wall: Clock | None = None,
    ) -> None:
        self.cases = cases
        # A webhook's timestamp is the real sending time (receivers reject old ones against their
        # own clock), whatever instant the engine's clock says for due times and leases.
        self.wall = wall or SystemClock()
        self.rules = rules
        self.config = config or DispatchConfig()
        self.rng = rng or random.Random()
        self.stats = DispatchStats()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.config.timeout_seconds),
            limits=httpx.Limits(max_connections=self.config.concurrency * 2),
            follow_redirects=False,
        )
        self._pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="webhook")
        self._recorders = ThreadPoolExecutor(max_workers=RECORDERS, thread_name_prefix="outbox-record")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._recorders.shutdown(wait=True)
        self._client.close()

    # --- one pass ---------------------------------------------------------------

    def run_once(self, *, max_rounds: int = 100) -> int:
        if not self._anything_due(self.cases.clock.now()):
            self._digests()
            return 0
        self.stats.fanned_out += fan_out(self.cases.db, self.cases.clock.now())
        delivered = self._pump(max_rounds)
        self._digests()
        return delivered

    def _pump(self, max_rounds: int) -> int:
        """Claim, send and record until nothing more is due (or ``max_rounds`` claims were made).

        Webhook lines run on the pool; each answer goes to ``answers`` with a waiter the line
        blocks on until the answer is recorded. This thread gathers the queued answers into
        batches, each recorded in one transaction on a recorder thread (two overlap: a record
        mostly waits on the database), and claims more lines whenever there is room.
        """
        db = self.cases.db
        answers: queue.SimpleQueue[tuple[Outcome, _Waiter | None]] = queue.SimpleQueue()
        lines: set[Future[None]] = set()
        records: dict[Future[int], int] = {}  # a batch being recorded: the lines it holds
        delivered = 0
        claims = 0
        claim_again = True
        try:
            while True:
                # A line per pool thread, claimed in batches (once half of them are free), so
                # that several dispatchers share a backlog rather than the first taking it all.
                room = self.config.concurrency - len(lines)
                if claim_again and claims < max_rounds and room >= max(1, self.config.concurrency // 2):
                    claimed = db.run_write(partial(self._claim, limit=room))
                    claims += 1
                    claim_again = bool(claimed)
                    if claimed:
                        self.stats.rounds += 1
                    for line in _lines(c for c in claimed if c.channel == "webhook"):
                        lines.add(self._pool.submit(self._walk, line, answers))
                    others = [c for c in claimed if c.channel != "webhook"]
                    for outcome in self._send(others):
                        answers.put((outcome, None))
                if len(records) >= RECORDERS:
                    wait(records, return_when=FIRST_COMPLETED)
                for record in [r for r in records if r.done()]:
                    del records[record]
                    delivered += record.result()
                # Lines whose answer is being recorded cannot answer again before it is.
                busy = sum(records.values())
                batch = _drain(answers, block=len(lines) > busy, lines=len(lines) - busy)
                if batch:
                    walking = sum(1 for _, w in batch if w is not None)
                    records[self._recorders.submit(self._record_batch, batch)] = walking
                finished = {f for f in lines if f.done()}
                if finished:
                    lines -= finished
                    claim_again = True
                if not lines and not records and answers.empty() and not (claim_again and claims < max_rounds):
                    break
                if not batch and len(lines) <= sum(records.values()) and records:
                    wait(records, return_when=FIRST_COMPLETED)
        finally:
            # On an error, the lines still walking stop (their leases run out; sent again later).
            wait(records)
            while lines:
                for _, waiter in _drain(answers, block=False):
                    if waiter is not None:
                        waiter.resolve(False)
                lines = {f for f in lines if not f.done()}
                if lines:
                    time.sleep(0.01)
        return delivered

    def _record_batch(self, batch: list[tuple[Outcome, _Waiter | None]]) -> int:
        """Record one batch of answers and tell each line how its answer was recorded."""
        resolved = False
        try:
            # The lease of a line's rest is renewed with its event's delivery, from an instant
            # read before the transaction (so the local deadline ends first); only while the old
            # lease surely holds (nobody else can have claimed them).
            renewed_from = time.monotonic()
            renew = {
                o.item.pk: o.rest
                for o, w in batch
                if w is not None and o.rest and renewed_from - o.item.claimed_at < self._send_window
            }
            recorded, renewed = self.cases.db.run_write(
                partial(self._record, outcomes=[o for o, _ in batch], now=self.cases.clock.now(), renew=renew)
            )
            for outcome, waiter in batch:
                if waiter is not None:
                    pk = outcome.item.pk
                    lease = renewed.get(pk)
                    waiter.resolve(pk in recorded, (renewed_from, lease) if lease is not None else None)
            resolved = True
            return len(recorded)
        finally:
            if not resolved:
                for _, waiter in batch:
                    if waiter is not None:
                        waiter.resolve(False)

    def _walk(self, line: list[Claimed], answers: queue.SimpleQueue[tuple[Outcome, _Waiter | None]]) -> None:
        """Send one (endpoint, case) line in seq order, each event after the previous one's
        delivery is committed; after an event that was not delivered, release the rest."""
        lease_from, lease_until = line[0].claimed_at, line[0].lease_until
        for index, item in enumerate(line):
            item = replace(item, claimed_at=lease_from, lease_until=lease_until)
            waiter = _Waiter()
            outcome = self._post(item)
            outcome.rest = tuple(later.pk for later in line[index + 1 :])
            answers.put((outcome, waiter))
            delivered, renewed = waiter.wait(self.config.lease_seconds)
            if renewed is not None:
                lease_from, lease_until = renewed
            if not delivered:
                for rest in line[index + 1 :]:
                    held = replace(rest, claimed_at=lease_from, lease_until=lease_until)
                    answers.put((Outcome(held, released=True), None))
                return

    @property
    def _send_window(self) -> float:
        """How long after its lease began a send may start: it must end (answered or timed out)
        well before the lease does, when another dispatcher may send the line's next event."""
        return self.config.lease_seconds - self.config.timeout_seconds * 1.5

    def _anything_due(self, now: datetime) -> bool:
        """A read first, so an idle dispatcher takes no write lock (SQLite has one writer)."""
        d = DELIVERIES
        with self.cases.db.read() as session:
            unfanned = session.execute(select(OUTBOX.c.pk).where(OUTBOX.c.fanned_out.is_(False)).limit(1)).first()
            if unfanned is not None:
                return True
            e = WEBHOOK_ENDPOINTS
            endpoint_open = (
                select(literal(1))
                .where(
                    e.c.id == d.c.target, e.c.enabled.is_(True), or_(e.c.slow_until.is_(None), e.c.slow_until <= now)
                )
                .exists()
            )
            due = session.execute(
                select(d.c.pk)
                .where(
                    d.c.status == "pending",
                    d.c.due_at <= now,
                    or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                    # A disabled or slowed-down endpoint's backlog is no reason to take the write lock.
                    or_(d.c.channel != "webhook", endpoint_open),
                )
                .limit(1)
            ).first()
        return due is not None

    # --- claim ------------------------------------------------------------------

    def _claim(self, session: Session, limit: int | None = None) -> list[Claimed]:
        # The lease and the local deadline of its sends start from the same instant, read inside
        # the transaction: a claim that waited for the write lock must not start with a lease
        # already partly (or wholly) run out, or two dispatchers could walk one line at once.
        now = self.cases.clock.now()
        started = time.monotonic()
        d = DELIVERIES
        earlier = DELIVERIES.alias("earlier")
        e = WEBHOOK_ENDPOINTS
        waiting_before = (
            select(literal(1))
            .where(
                earlier.c.channel == d.c.channel,
                earlier.c.target == d.c.target,
                earlier.c.case_id == d.c.case_id,
                earlier.c.status == "pending",
                earlier.c.seq < d.c.seq,
            )
            .exists()
        )
        endpoint_open = (
            select(literal(1))
            .where(e.c.id == d.c.target, e.c.enabled.is_(True), or_(e.c.slow_until.is_(None), e.c.slow_until <= now))
            .exists()
        )
        stmt = (
            select(d.c.pk, d.c.channel, d.c.target, d.c.case_id, d.c.seq, d.c.message_id, d.c.payload, d.c.attempts)
            .where(
                d.c.status == "pending",
                d.c.due_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                or_(d.c.channel != "webhook", and_(endpoint_open, ~waiting_before)),
            )
            .order_by(d.c.due_at, d.c.pk)
            .limit(min(self.config.batch, limit or self.config.batch))
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=d)
        rows = session.execute(stmt).all()
        if not rows:
            return []
        rows = [*rows, *self._followers(session, [r for r in rows if r.channel == "webhook"], now)]
        leased = now + timedelta(seconds=self.config.lease_seconds)
        session.execute(update(d).where(d.c.pk.in_([r.pk for r in rows])).values(lease_until=leased))
        endpoint_ids = sorted({r.target for r in rows if r.channel == "webhook"})
        endpoints: dict[str, Row[Any]] = {}
        if endpoint_ids:
            endpoints = {x.id: x for x in session.execute(select(e).where(e.c.id.in_(endpoint_ids))).all()}
        recipients = sorted({r.target for r in rows if r.channel == "email"})
        contacts: dict[str, Row[Any]] = {}
        if recipients:
            contacts = {
                c.recipient: c
                for c in session.execute(
                    select(CONTACTS.c.recipient, CONTACTS.c.email, CONTACTS.c.language).where(
                        CONTACTS.c.recipient.in_(recipients)
                    )
                ).all()
            }
        claimed = []
        for r in rows:
            item = Claimed(
                r.pk,
                r.channel,
                r.target,
                r.case_id,
                r.seq,
                r.message_id,
                r.payload,
                r.attempts,
                claimed_at=started,
                lease_until=leased,
            )
            if r.channel == "webhook" and r.target in endpoints:
                endpoint = endpoints[r.target]
                item = replace(item, url=endpoint.url, secrets=tuple(secrets_in_force(endpoint, now)))
            elif r.channel == "email" and r.target in contacts:
                contact = contacts[r.target]
                item = replace(item, email=contact.email, language=language_of(contact.language))
            claimed.append(item)
        return claimed

    def _followers(self, session: Session, heads: list[Row[Any]], now: datetime) -> list[Row[Any]]:
        """The due rows right behind each claimed head, up to the line's depth. Nobody else can
        claim them while the head is pending (they are not heads), and their lease keeps them
        from being claimed between the head's delivery and their own send."""
        depth = self.config.line_depth - 1
        if depth <= 0 or not heads:
            return []
        d = DELIVERIES
        head_seq = {(r.target, r.case_id): r.seq for r in heads}
        candidates = session.execute(
            select(
                d.c.pk,
                d.c.channel,
                d.c.target,
                d.c.case_id,
                d.c.seq,
                d.c.message_id,
                d.c.payload,
                d.c.attempts,
                d.c.due_at,
                d.c.lease_until,
            )
            .where(
                d.c.channel == "webhook",
                tuple_(d.c.target, d.c.case_id).in_(list(head_seq)),
                d.c.status == "pending",
            )
            .order_by(d.c.target, d.c.case_id, d.c.seq)
        ).all()
        taken: list[Row[Any]] = []
        stopped: set[tuple[str, str]] = set()
        count: dict[tuple[str, str], int] = {}
        for r in candidates:
            key = (r.target, r.case_id)
            if key in stopped or r.seq <= head_seq[key]:
                continue
            # A later row that is not due yet (or leased) ends the walk: none after it may pass it.
            leased = r.lease_until is not None and r.lease_until > now
            if count.get(key, 0) >= depth or r.due_at > now or leased:
                stopped.add(key)
                continue
            count[key] = count.get(key, 0) + 1
            taken.append(r)
        return taken  # leased with the heads by the caller

    # --- send -------------------------------------------------------------------

    def _send(self, claimed: list[Claimed]) -> list[Outcome]:
        hooks = [c for c in claimed if c.channel == "webhook"]
        outcomes = list(self._pool.map(self._post, hooks)) if hooks else []
        mails = [c for c in claimed if c.channel == "email"]
        if mails:
            outcomes.extend(self._mail(mails))
        for item in claimed:
            if item.channel == "reminder":
                outcomes.append(self._remind(item))
        return outcomes

    def _post(self, item: Claimed) -> Outcome:
        if not item.url or not item.secrets:
            return Outcome(item, drop="the endpoint was removed")
        # Start a send only if it ends, at the latest, well inside the lease: after the lease
        # another dispatcher may send the line's next event, and this one must not arrive after it.
        if time.monotonic() - item.claimed_at > self._send_window:
            return Outcome(item, released=True)
        body = item.payload.encode("utf-8")
        timestamp = int(self.wall.now().timestamp())
        headers = signing.headers(item.secrets, item.message_id, timestamp, body)
        started = time.perf_counter()
        try:
            response = self._client.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(item, error=f"{type(exc).__name__}: {exc}"[:400], duration_ms=_ms(started))
        return Outcome(
            item,
            status=response.status_code,
            retry_after=response.headers.get("retry-after"),
            duration_ms=_ms(started),
            error="" if response.is_success else f"HTTP {response.status_code}",
        )

    def _mail(self, items: list[Claimed]) -> list[Outcome]:
        smtp = self.config.smtp
        outcomes: list[Outcome] = []
        ready = []
        rules = self.rules()
        for item in items:
            if smtp is None:
                outcomes.append(Outcome(item, drop="no SMTP server is configured"))
                continue
            if not item.email:
                outcomes.append(Outcome(item, drop="the recipient has no e-mail address"))
                continue
            payload = json.loads(item.payload)
            rendered = _render(self.cases, rules, payload, item.language)
            ready.append((item, mail.message(smtp, item.email, rendered, item.message_id)))
        if ready and smtp is not None:
            started = time.perf_counter()
            try:
                mail.send(smtp, [m for _, m in ready])
            except Exception as exc:  # noqa: BLE001 - any SMTP or network failure is retried
                error = f"{type(exc).__name__}: {exc}"[:400]
                outcomes.extend(Outcome(item, error=error, duration_ms=_ms(started)) for item, _ in ready)
            else:
                outcomes.extend(Outcome(item, status=250, duration_ms=_ms(started)) for item, _ in ready)
        return outcomes

    def _remind(self, item: Claimed) -> Outcome:
        reminder = json.loads(item.payload)
        with self.cases.db.read() as session:
            try:
                case = load_snapshot(session, item.case_id)
            except DisputeError:
                return Outcome(item, drop="the case is gone")
        timer = case.timer(reminder["timer"])
        now = self.cases.clock.now()
        if not reminder_due(reminder["due_at"], timer.due_at if timer else None, timer.status if timer else None, now):
            return Outcome(item, drop="the clock no longer runs towards this deadline")
        rules = self.rules()
        keys = (
            party_keys(case, rules.acting.get(reminder["timer"], ()))
            if "acting" in rules.recipients("reminder")
            else []
        )
        keys += party_keys(case, [r for r in rules.recipients("reminder") if r not in ("acting", "asked")])
        data = {"timer": reminder["timer"], "due_at": reminder["due_at"], "when": "before_breach"}
        # Numbered by the write that started the clock (the delivery's seq), not the case's version:
        # the warning's reminder carries the version, and both must reach the inbox.
        notices = [Notice(k, "reminder", case.id, item.seq, data) for k in dict.fromkeys(keys)]
        return Outcome(item, status=200, notices=notices)

    # --- record -----------------------------------------------------------------

    def _record(
        self, session: Session, outcomes: list[Outcome], now: datetime, renew: dict[int, tuple[int, ...]] | None = None
    ) -> tuple[set[int], dict[int, datetime]]:
        """Record a batch of answers in one transaction. ``renew``: for a delivered event, the
        later events of its line whose lease starts again. Returns the pks recorded as delivered,
        and for those whose line's lease was renewed, the new lease."""
        delivered: set[int] = set()
        d = DELIVERIES
        notices: list[Notice] = []
        attempts = []
        # Delivered rows are most of them: one UPDATE per answer status, not one per row.
        delivered_by_status: dict[int | None, list[int]] = {}
        for outcome in outcomes:
            item = outcome.item
            mine = and_(d.c.pk == item.pk, d.c.status == "pending")
            if outcome.released:
                # Only a lease still this dispatcher's: after it ran out, another may have
                # claimed the row and be walking its line; clearing theirs would let a third in.
                held = d.c.lease_until == item.lease_until if item.lease_until is not None else true()
                session.execute(update(d).where(mine, held).values(lease_until=None))
                continue
            if outcome.drop:
                session.execute(
                    update(d).where(mine).values(status="dropped", last_error=outcome.drop[:400], lease_until=None)
                )
                continue
            attempts.append(
                {
                    "delivery_pk": item.pk,
                    "at": now,
                    "status_code": outcome.status,
                    "error": outcome.error[:400],
                    "duration_ms": outcome.duration_ms,
                }
            )
            self.stats.attempts += 1
            verdict = judge(outcome.status, outcome.retry_after, now)
            if verdict.delivered:
                delivered.add(item.pk)
                self.stats.delivered += 1
                notices.extend(outcome.notices)
                delivered_by_status.setdefault(outcome.status, []).append(item.pk)
                continue
            self.stats.failures += 1
            failures = item.attempts + 1
            if verdict.disable:
                session.execute(
                    update(d)
                    .where(mine)
                    .values(
                        attempts=failures,
                        lease_until=None,
                        due_at=now,
                        last_status=outcome.status,
                        last_error=outcome.error[:400],
                    )
                )
                notices.extend(self._disable(session, item.target, "the endpoint answered 410 Gone", now))
                continue
            retry_at = next_attempt(failures, now, schedule=self.config.schedule, rng=self.rng)
            if retry_at is None:
                session.execute(
                    update(d)
                    .where(mine)
                    .values(
                        status="failed",
                        attempts=failures,
                        lease_until=None,
                        last_status=outcome.status,
                        last_error=outcome.error[:400],
                    )
                )
                if item.channel == "webhook":
                    notices.extend(self._disable(session, item.target, "a delivery failed after the last retry", now))
                continue
            if verdict.slow_down:
                slow_until = now + timedelta(seconds=verdict.slow_down)
                retry_at = max(retry_at, slow_until)
                if item.channel == "webhook":
                    session.execute(
                        update(WEBHOOK_ENDPOINTS)
                        .where(WEBHOOK_ENDPOINTS.c.id == item.target)
                        .values(slow_until=slow_until)
                    )
            session.execute(
                update(d)
                .where(mine)
                .values(
                    attempts=failures,
                    due_at=retry_at,
                    lease_until=None,
                    last_status=outcome.status,
                    last_error=outcome.error[:400],
                )
            )
        for answer, pks in delivered_by_status.items():
            session.execute(
                update(d)
                .where(d.c.pk.in_(pks), d.c.status == "pending")
                .values(
                    status="delivered",
                    delivered_at=now,
                    attempts=d.c.attempts + 1,
                    lease_until=None,
                    last_status=answer,
                    last_error="",
                )
            )
        renewed = self._renew(session, outcomes, delivered, renew or {}, now)
        if attempts:
            session.execute(DELIVERY_ATTEMPTS.insert(), attempts)
        deliver_notices(session, notices, now)
        return delivered, renewed

    def _renew(
        self,
        session: Session,
        outcomes: list[Outcome],
        delivered: set[int],
        renew: dict[int, tuple[int, ...]],
        now: datetime,
    ) -> dict[int, datetime]:
        """Start the lease of each delivered event's later line events again, where they still
        carry this dispatcher's lease (another's claim after it ran out is left alone)."""
        d = DELIVERIES
        lease = now + timedelta(seconds=self.config.lease_seconds)
        by_lease: dict[datetime, list[int]] = {}
        next_of: dict[int, int] = {}
        for outcome in outcomes:
            rest = renew.get(outcome.item.pk)
            if outcome.item.pk in delivered and rest and outcome.item.lease_until is not None:
                by_lease.setdefault(outcome.item.lease_until, []).extend(rest)
                next_of[outcome.item.pk] = rest[0]
        for held, pks in by_lease.items():
            session.execute(
                update(d)
                .where(d.c.pk.in_(pks), d.c.status == "pending", d.c.lease_until == held)
                .values(lease_until=lease)
            )
        if not next_of:
            return {}
        ours = set(
            session.execute(
                select(d.c.pk).where(d.c.pk.in_(list(next_of.values())), d.c.lease_until == lease)
            ).scalars()
        )
        return {pk: lease for pk, following in next_of.items() if following in ours}

    def _disable(self, session: Session, endpoint_id: str, reason: str, now: datetime) -> list[Notice]:
        """Disable the endpoint and tell its owner (once: only when it was enabled)."""
        e = WEBHOOK_ENDPOINTS
        row = session.execute(select(e.c.owner_id, e.c.url, e.c.enabled).where(e.c.id == endpoint_id)).first()
        if row is None or not row.enabled:
            return []
        session.execute(update(e).where(e.c.id == endpoint_id).values(enabled=False, disabled_reason=reason))
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
        data = {"endpoint_id": endpoint_id, "url": row.url, "reason": reason, "at": now.isoformat()}
        return [Notice(user(row.owner_id), "endpoint_disabled", "", int(now.timestamp()), data)]

    # --- daily digests ----------------------------------------------------------

    def _digests(self) -> None:
        smtp = self.config.smtp
        if smtp is None:
            return
        now = self.cases.clock.now()
        with self.cases.db.read() as session:
            due = session.execute(
                select(CONTACTS).where(
                    CONTACTS.c.digest.is_(True),
                    CONTACTS.c.email.is_not(None),
                    or_(CONTACTS.c.last_digest_at.is_(None), CONTACTS.c.last_digest_at <= now - timedelta(days=1)),
                )
            ).all()
        rules = self.rules()
        for contact in due:
            since = contact.last_digest_at or now - timedelta(days=1)
            with self.cases.db.read() as session:
                rows = session.execute(
                    select(NOTICES)
                    .where(NOTICES.c.recipient == contact.recipient, NOTICES.c.created_at > since)
                    .order_by(NOTICES.c.pk)
                    .limit(200)
                ).all()
            language = language_of(contact.language)
            entries = [
                _render(
                    self.cases,
                    rules,
                    {"recipient": r.recipient, "kind": r.kind, "case_id": r.case_id, "data": json.loads(r.data)},
                    language,
                )
                for r in rows
            ]
            if entries:
                try:
                    mail.send(smtp, [mail.message(smtp, contact.email, digest(language, entries), "digest")])
                except Exception:  # noqa: BLE001 - the digest is tried again on the next pass
                    log.exception("daily digest to %s failed; tried again later", contact.recipient)
                    continue
            self.cases.db.run_write(partial(_digested, recipient=contact.recipient, now=now))


def _render(cases: CaseService, rules: NotificationRules, payload: dict[str, Any], language: str) -> Rendered:
    facts = shown(cases, payload["recipient"], payload["case_id"], payload.get("data") or {})
    return render(payload["kind"], language, facts, rules.category(str(facts.get("category", ""))))


def _digested(session: Session, *, recipient: str, now: datetime) -> None:
    session.execute(update(CONTACTS).where(CONTACTS.c.recipient == recipient).values(last_digest_at=now))


class _Waiter:
    """A line's wait for its answer to be recorded: True once it is committed as delivered."""

    __slots__ = ("_event", "_delivered", "_renewed")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._delivered = False
        self._renewed: tuple[float, datetime] | None = None

    def resolve(self, delivered: bool, renewed: tuple[float, datetime] | None = None) -> None:
        self._delivered = delivered
        self._renewed = renewed
        self._event.set()

    def wait(self, timeout: float) -> tuple[bool, tuple[float, datetime] | None]:
        """Delivered (and committed), and when the lease of the line's rest began again."""
        if not self._event.wait(timeout):
            return False, None
        return self._delivered, self._renewed


def _lines(claimed: Iterable[Claimed]) -> list[list[Claimed]]:
    by_line: dict[tuple[str, str], list[Claimed]] = {}
    for item in claimed:
        by_line.setdefault((item.target, item.case_id), []).append(item)
    return [sorted(items, key=lambda c: c.seq) for items in by_line.values()]


def _drain(
    answers: queue.SimpleQueue[tuple[Outcome, _Waiter | None]], *, block: bool, lines: int = 0
) -> list[tuple[Outcome, _Waiter | None]]:
    """Everything queued now; when ``block``, first wait (briefly) for one answer, then gather
    for a moment more, until every line in flight has answered (each walks one event at a time),
    so that one transaction records many answers (a commit is the dear part, on SQLite above all)."""
    batch = []
    if block:
        try:
            batch.append(answers.get(timeout=0.05))
        except queue.Empty:
            return []
        until = time.monotonic() + GATHER_SECONDS
        while sum(1 for _, waiter in batch if waiter is not None) < lines:
            left = until - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(answers.get(timeout=left))
            except queue.Empty:
                break
    while True:
        try:
            batch.append(answers.get_nowait())
        except queue.Empty:
            return batch


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def run_forever(dispatcher: Dispatcher, interval: float, stop: Callable[[], bool]) -> None:
    """The loop of a dispatcher process: a pass, then a nap unless the pass was full."""
    while not stop():
        try:
            dispatcher.run_once()
        except OperationalError:
            log.exception("dispatcher pass failed (database); trying again")
        except Exception:
            log.exception("dispatcher pass failed; trying again")
        if not stop():
            time.sleep(interval)
