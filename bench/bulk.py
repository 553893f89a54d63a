"""Large databases of valid cases, fast: clones of template cases made by the engine itself.

Templates are real cases filed (and some assigned or in mediation) through
``CaseService`` on the target database, at instants spread over the 90 minutes
before ``SWEEP_AT``. A clone copies a template's rows (events, case row, timers and
other children) with a new case id, consumer, merchant and mediator put into the
strings, and its hash chain recomputed, so that every clone is a case the engine
accepts: ``verify_case`` passes on them (checked on a sample after each build) and
its timers are ones ``fire_due_timers`` reads. Rows go in with ``executemany`` in big
batches (SQLite) or ``COPY`` (PostgreSQL).

Every case has exactly one running timer, which neither warns nor falls due until after ``SWEEP_AT``
(so no clone is ``breaching``; the case row, that column included, is copied from its template).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table

from audit.chains import verify_case
from bench.common import (
    Backend,
    log,
    make_service,
    new_case,
    template_id_factory,
)
from bench.context import Context
from cases.service import CaseService
from sla.clock import ManualClock
from store.codec import snapshot_from_json
from store.db import Database, make_engine
from store.tables import CASES, EVENTS, EVIDENCE, MESSAGES, OFFERS, TIMERS
from workflow.chain import GENESIS_HASH
from workflow.model import Actor

SWEEP_AT = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # Monday 10:30 Asia/Shanghai
WINDOW_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00
INSTANTS = 60
# Out of every 20 cases: 16 waiting for a mediator, 3 assigned (merchant's clock), 1 in mediation.
KINDS = ("filed",) * 16 + ("assigned",) * 3 + ("mediating",)
TOKEN_CONSUMER = "c-TPLCONSUMERX"
TOKEN_MERCHANT = "m-TPLMERCHANTX"
TOKEN_MEDIATOR = "med-TPLMEDIATORX"
BATCH = 20_000

CHILDREN: tuple[Table, ...] = (TIMERS, MESSAGES, OFFERS, EVIDENCE)
EVENT_COLUMNS = [c.name for c in EVENTS.columns if c.name != "id"]
CASE_COLUMNS = [c.name for c in CASES.columns if c.name != "pk"]
_BODY, _PREV, _HASH = (EVENT_COLUMNS.index(n) for n in ("body", "prev_hash", "hash"))
_HEAD, _SNAPSHOT = CASE_COLUMNS.index("head_hash"), CASE_COLUMNS.index("snapshot")


def people(n: int, total: int) -> tuple[str, str, str]:
    """Consumer, merchant and mediator of clone ``n``: every consumer has 10 cases, every merchant
    100, every mediator ~200 (the assigned and mediating ones of every 50th block of 20)."""
    return f"c-{n // 10}", f"m-{n // 100}", f"med-{(n // len(KINDS)) % max(1, total // 1000)}"


@dataclass
class Template:
    case_id: str
    head_hash: str
    events: list[list[Any]]
    case: list[Any]
    children: dict[str, list[list[Any]]]
    # Strings that name the case or a person: (row kind, row index, column, which names).
    spots: list[tuple[str, int, int, tuple[int, ...]]]


@dataclass
class ScaleDb:
    url: str
    cases: int
    open_timers: int
    seconds: float
    first_pk: int
    last_pk: int


def _placeholders(sqlite: bool, count: int) -> str:
    return ", ".join(["?" if sqlite else "%s"] * count)


def _read(
    conn: Any, sqlite: bool, table: str, columns: Sequence[str], case_id: str, order: str = ""
) -> list[list[Any]]:
    cursor = conn.cursor()
    mark = "?" if sqlite else "%s"
    cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE case_id = {mark} {order}", (case_id,))
    rows = [list(r) for r in cursor.fetchall()]
    cursor.close()
    return rows


def _read_case(conn: Any, sqlite: bool, case_id: str) -> list[Any]:
    cursor = conn.cursor()
    mark = "?" if sqlite else "%s"
    cursor.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = {mark}", (case_id,))
    row = list(cursor.fetchone())
    cursor.close()
    return row


def make_templates(service: CaseService, instants: int = INSTANTS) -> list[list[Template]]:
    """Real cases, one per kind and instant, and their stored rows (as the driver returns them)."""
    clock = service.clock
    assert isinstance(clock, ManualClock)
    consumer = Actor(TOKEN_CONSUMER, "consumer")
    merchant = Actor("mu-1", "merchant", merchant_id=TOKEN_MERCHANT)
    mediator = Actor(TOKEN_MEDIATOR, "mediator")
    service.id_factory = template_id_factory
    made: list[list[str]] = []
    span = SWEEP_AT - WINDOW_START
    for i in range(instants):
        # (WINDOW_START, SWEEP_AT]: the assignment clock warns at 75% of its 2 business hours,
        # 90 minutes after filing, so a case filed at WINDOW_START itself would warn at SWEEP_AT.
        clock.set(WINDOW_START + span * (i + 1) / instants)
        ids = []
        for kind in sorted(set(KINDS)):
            case = service.file(
                actor=consumer, new_case=new_case(consumer_id=TOKEN_CONSUMER, merchant_id=TOKEN_MERCHANT)
            )
            if kind in ("assigned", "mediating"):
                case = service.execute(actor=mediator, case_id=case.id, name="assign", expected_version=case.version)
            if kind == "mediating":
                case = service.execute(
                    actor=merchant, case_id=case.id, name="respond", data={"statement": "We are looking into it."}
                )
                case = service.execute(actor=mediator, case_id=case.id, name="start_mediation")
            ids.append(case.id)
        made.append(ids)
    proxy = service.db.engine.raw_connection()
    sqlite = service.db.is_sqlite
    try:
        conn: Any = proxy.driver_connection
        templates = []
        for ids in made:
            row = []
            for case_id in ids:
                events = _read(conn, sqlite, "events", EVENT_COLUMNS, case_id, "ORDER BY seq")
                case_row = _read_case(conn, sqlite, case_id)
                children = {t.name: _read(conn, sqlite, t.name, [c.name for c in t.columns], case_id) for t in CHILDREN}
                row.append(_template(case_id, events, case_row, children))
            templates.append(row)
        if not sqlite:
            conn.rollback()
    finally:
        proxy.close()
    by_kind = sorted(set(KINDS))
    return [[row[by_kind.index(kind)] for kind in KINDS] for row in templates]


def _template(case_id: str, events: list[list[Any]], case: list[Any], children: dict[str, list[list[Any]]]) -> Template:
    tokens = (case_id, TOKEN_CONSUMER, TOKEN_MERCHANT, TOKEN_MEDIATOR)

    def marked(kind: str, rows: list[list[Any]]) -> list[tuple[str, int, int, tuple[int, ...]]]:
        found = []
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    which = tuple(i for i, t in enumerate(tokens) if t in value)
                    if which:
                        found.append((kind, r, c, which))
        return found

    spots = marked("events", events) + marked("case", [case])
    for name, rows in children.items():
        spots += marked(name, rows)
    return Template(case_id, case[_HEAD], events, case, {k: v for k, v in children.items() if v}, spots)


def clone(
    t: Template, new_id: str, consumer: str, merchant: str, mediator: str
) -> tuple[list[list[Any]], list[Any], dict[str, list[list[Any]]]]:
    """A template's rows for a new case: names put in, the hash chain recomputed."""
    events = [list(r) for r in t.events]
    case = list(t.case)
    children = {name: [list(r) for r in rows] for name, rows in t.children.items()}
    pairs = ((t.case_id, new_id), (TOKEN_CONSUMER, consumer), (TOKEN_MERCHANT, merchant), (TOKEN_MEDIATOR, mediator))
    for kind, r, c, which in t.spots:
        row = events[r] if kind == "events" else case if kind == "case" else children[kind][r]
        value = row[c]
        for index in which:
            old, new = pairs[index]
            value = value.replace(old, new)
        row[c] = value
    prev = GENESIS_HASH
    for row in events:
        row[_PREV] = prev
        prev = hashlib.sha256(bytes.fromhex(prev) + row[_BODY].encode("utf-8")).hexdigest()
        row[_HASH] = prev
    case[_HEAD] = prev
    case[_SNAPSHOT] = case[_SNAPSHOT].replace(t.head_hash, prev)
    return events, case, children


class Loader:
    """Bulk inserts through the raw driver: executemany (SQLite), COPY (PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.proxy = self.engine.raw_connection()
        conn: Any = self.proxy.driver_connection
        self.conn = conn
        if self.sqlite:
            # The loader only: the data is rebuilt if the machine dies mid-way.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-262144")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.sqlite:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_placeholders(True, len(columns))})"
            self.conn.executemany(sql, rows)
            return
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            yield
            self.conn.execute("COMMIT")
        else:
            yield
            self.conn.commit()

    def finish(self) -> None:
        """Make the load durable before anything is measured on it.

        The load writes without waiting for the disk (SQLite: synchronous=OFF; PostgreSQL:
        its checkpoints lag far behind a COPY of gigabytes). Left so, the first fsync after it
        pays for the whole load: the first checkpoint of B7's filing at 1,000,000 cases stalled
        for 0.4 s on the ~600 MB still dirty, and took a filing round with it. Flushed here, the
        measurement sees only its own writes, as on a database that has been running a while."""
        cursor = self.conn.cursor()
        if self.sqlite:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
            database = self.engine.url.database
            assert database is not None
            descriptor = os.open(database, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            return
        for table in ("cases", "events", *(t.name for t in CHILDREN)):
            # What autovacuum would do after such a load; table by table, as a bare ANALYZE
            # would go through every schema of the database, other runs' included.
            cursor.execute(f"ANALYZE {table}")
        self.conn.commit()
        try:
            cursor.execute("CHECKPOINT")  # superuser or pg_checkpoint
        except Exception as exc:  # noqa: BLE001 - without the right, the load settles during the run instead
            self.conn.rollback()
            log(f"  CHECKPOINT refused ({type(exc).__name__}); the load's writes may land during the measurement")
        cursor.close()

    def close(self) -> None:
        self.proxy.close()
        self.engine.dispose()


def load_clones(url: str, templates: list[list[Template]], count: int, *, progress: Callable[[int], None]) -> None:
    loader = Loader(url)
    try:
        columns = {t.name: [c.name for c in t.columns] for t in CHILDREN}
        n = 0
        while n < count:
            upto = min(count, n + BATCH)
            events: list[Sequence[Any]] = []
            cases: list[Sequence[Any]] = []
            children: dict[str, list[Sequence[Any]]] = {t.name: [] for t in CHILDREN}
            for k in range(n, upto):
                template = templates[k * len(templates) // count][k % len(KINDS)]
                consumer, merchant, mediator = people(k, count)
                new_id = f"{template.case_id[:-6]}{_tail(k + 1)}"
                e, c, ch = clone(template, new_id, consumer, merchant, mediator)
                events.extend(e)
                cases.append(c)
                for name, child_rows in ch.items():
                    children[name].extend(child_rows)
            with loader.transaction():
                loader.insert("cases", CASE_COLUMNS, cases)
                loader.insert("events", EVENT_COLUMNS, events)
                for name, batch in children.items():
                    loader.insert(name, columns[name], batch)
            n = upto
            progress(n)
        loader.finish()
    finally:
        loader.close()


def _tail(value: int) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(value >> shift) & 31] for shift in range(25, -1, -5))


def build_scale(
    backend: Backend, stack: contextlib.ExitStack, count: int, label: str, instants: int = INSTANTS
) -> ScaleDb:
    """A fresh database (dropped when ``stack`` closes) holding ``count`` cloned cases."""
    started = time.monotonic()
    url = stack.enter_context(backend.fresh(label))
    service = make_service(url, clock=ManualClock(WINDOW_START))
    try:
        templates = make_templates(service, instants)
        service.db.dispose()  # the loader writes alone
        step = max(BATCH, count // 10)

        def progress(done: int) -> None:
            if done % step == 0 or done == count:
                log(f"  {label}: {done:,}/{count:,} cases loaded")

        load_clones(url, templates, count, progress=progress)
        open_timers, first_pk, last_pk = _facts(service.db)
        _spot_check(service, count)
    finally:
        service.db.dispose()
    seconds = time.monotonic() - started
    log(f"  {label}: {count:,} cases, {open_timers:,} running timers in {seconds:.0f} s")
    return ScaleDb(url, count, open_timers, seconds, first_pk, last_pk)


def _facts(db: Database) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    with db.read() as session:
        running = session.execute(select(func.count()).where(TIMERS.c.status == "running")).scalar_one()
        first, last = session.execute(select(func.min(CASES.c.pk), func.max(CASES.c.pk))).one()
    return int(running), int(first), int(last)


def _spot_check(service: CaseService, count: int) -> None:
    """Clones must be cases the engine accepts: chain, replay and projection verify."""
    from sqlalchemy import select

    rng = random.Random(count)
    with service.db.read() as session:
        last = session.execute(select(CASES.c.pk).order_by(CASES.c.pk.desc()).limit(1)).scalar_one()
        sample = [rng.randint(1, last) for _ in range(20)]
        rows = session.execute(
            select(CASES.c.id, CASES.c.breaching, CASES.c.snapshot).where(CASES.c.pk.in_(sample))
        ).all()
        for case_id, breaching, snapshot in rows:
            damage = verify_case(session, service.registry, case_id)
            if damage:
                raise AssertionError(f"bulk clone does not verify: {damage[0]}")
            # The row is the template's, copied whole: its breaching column must match its clocks.
            if breaching != snapshot_from_json(snapshot).breaching:
                raise AssertionError(f"bulk clone {case_id}: breaching column {breaching} disagrees with its timers")


def scale_db(ctx: Context, count: int) -> ScaleDb:
    """The shared database of ``count`` cases for this backend (built once per harness run)."""
    return ctx.cached(
        f"scale-{count}",
        lambda: build_scale(
            ctx.backend, ctx.stack, count, f"scale{_short(count)}", instants=ctx.pick(quick=6, full=INSTANTS)
        ),
    )


def _short(count: int) -> str:
    return f"{count // 1_000_000}m" if count >= 1_000_000 and count % 1_000_000 == 0 else f"{count // 1000}k"
