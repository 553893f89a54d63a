"""Shared pieces of the benchmarks: databases, services, the command cycle, timing, results."""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables)
from cases.commands import new_case_id
from cases.mediators import MAX_CAPACITY, add_mediator
from cases.personal import PersonalData
from cases.registry import WorkflowRegistry, record_versions
from cases.service import CaseService
from policies.base import Authorizer
from policies.cedar import packaged_policies
from privacy.keys import KeyFile
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.db import Database, make_engine
from store.tables import MEDIATORS
from workflow.model import Actor, CaseSnapshot, NewCase

REPO_ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
CONSUMER = Actor("c-1", "consumer")
MERCHANT = Actor("mu-1", "merchant", merchant_id="m-1")
MEDIATOR = Actor("med-1", "mediator")
SENIOR = Actor("sen-1", "senior_mediator")
AUDITOR = Actor("aud-1", "auditor")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_START = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, with the seconds since the harness started."""
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- numbers --------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return float(ordered[rank])


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def crockford(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        digits.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def clone_id(template_id: str, counter: int) -> str:
    """A case id with the template's time stamp and ``counter`` as its tail (never ``Z...``)."""
    return f"{template_id[:-6]}{crockford(counter, 6)}"


def template_id_factory(now: datetime) -> str:
    """Real-looking ids whose tail starts with ZZ, so clone tails never collide with them."""
    real = new_case_id(now)
    return f"{real[:-6]}ZZ{real[-4:]}"


# --- results ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a results table."""

    benchmark: str
    baseline: str
    engine: str
    ratio: float | None
    target: str
    passed: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "pass" if self.passed else "FAIL"


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt_rate(value: float, unit: str) -> str:
    if value >= 1000:
        return f"{value:,.0f} {unit}"
    if value >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


# --- databases --------------------------------------------------------------------------


@dataclass
class Backend:
    """A kind of database the harness runs on: a SQLite file per run, or a PostgreSQL schema."""

    kind: str  # "sqlite" or "postgresql"
    admin_url: str = ""

    @property
    def title(self) -> str:
        if self.kind == "sqlite":
            return "SQLite (file in a temp dir, WAL, synchronous=FULL)"
        return "PostgreSQL (fresh schema per run, dropped afterwards)"

    def version(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        engine = create_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                full = str(conn.execute(text("select version()")).scalar())
        finally:
            engine.dispose()
        return " ".join(full.split()[:2])

    @contextlib.contextmanager
    def fresh(self, label: str) -> Iterator[str]:
        """A new, empty database with the engine's tables, removed on exit."""
        if self.kind == "sqlite":
            directory = tempfile.mkdtemp(prefix=f"bench-{label}-")
            url = f"sqlite:///{Path(directory) / 'disputes.db'}"
            try:
                create_tables(url)
                yield url
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            return
        schema = f"bench_{label}_{uuid.uuid4().hex[:8]}".lower()
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in self.admin_url else "?"
            url = f"{self.admin_url}{separator}options=-csearch_path%3D{schema}"
            try:
                create_tables(url)
                yield url
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()


def create_tables(url: str) -> None:
    """The engine's tables as the models declare them (what the test suite does too), and the
    mediators the benchmarks act as."""
    engine = make_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
    finally:
        engine.dispose()
    db = Database(url)
    try:
        register_mediators(db)  # for the servers the benchmarks start on it
    finally:
        db.dispose()


# Only registered mediators may be assigned: the ones the benchmarks assign cases to (MEDIATOR,
# the load generator's med-0..med-7, the bulk loader's template mediator), active, with as much
# capacity as a mediator may have. They are skilled in 'other' only: every benchmark case is a
# product_quality complaint, so a server's router never takes one (at any hour of the day) and
# each case is assigned by hand, as its plan says.
BENCH_MEDIATORS = ("med-1", "sen-1", "med-TPLMEDIATORX", *(f"med-{n}" for n in range(8)))


def register_mediators(db: Database) -> None:
    with db.write() as session:
        known = set(session.execute(select(MEDIATORS.c.id)).scalars())
        for ident in dict.fromkeys(BENCH_MEDIATORS):
            if ident not in known:
                add_mediator(
                    session,
                    mediator_id=ident,
                    calendars=["default"],
                    now=T0,
                    fields={
                        "display_name": ident,
                        "categories": ["other"],
                        "languages": ["*"],
                        "capacity": MAX_CAPACITY,
                    },
                )


def sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database is not None
    return database


# --- services -----------------------------------------------------------------------------


def cedar() -> Authorizer:
    return packaged_policies()


# One key set for every service of a run: services sharing a database read each other's cases.
BENCH_KEYS = KeyFile.generate("<bench keys>")


def make_service(
    url: str | Database,
    *,
    authorizer: Authorizer | None = None,
    clock: ManualClock | None = None,
    id_factory: Callable[[datetime], str] | None = None,
    privacy: bool = True,
) -> CaseService:
    """A service as the app builds it (Cedar policies, SLA clocks, personal data sealed beside the
    log under a generated key), on a manual clock; ``privacy=False``: texts kept in the log as
    written, as before issue #18."""
    db = url if isinstance(url, Database) else Database(url)
    service = CaseService(
        db=db,
        registry=WorkflowRegistry.from_directory(),
        authorizer=authorizer or cedar(),
        clock=clock or ManualClock(T0),
        sla=SlaPlanner(default_calendars()),
        id_factory=id_factory or new_case_id,
        privacy=PersonalData(BENCH_KEYS) if privacy else None,
    )
    record_versions(db, service.registry, service.authorizer, service.clock.now())
    register_mediators(db)
    return service


def new_case(**overrides: Any) -> NewCase:
    values: dict[str, Any] = {
        "consumer_id": CONSUMER.id,
        "merchant_id": "m-1",
        "category": "product_quality",
        "subject": "电水壶两天就坏了",
        "description": "The kettle stopped heating after two days; the shop does not answer.",
        "order_ref": "ORD-1001",
        "claim_amount": 29900,
        "currency": "CNY",
    }
    values.update(overrides)
    return NewCase(**values)


# --- the command cycle --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One command of the cycle: who does what, with which data (from the case as it stands)."""

    name: str
    actor: Actor
    kind: str
    data: Callable[[CaseSnapshot], dict[str, Any]]


def _no_data(_: CaseSnapshot) -> dict[str, Any]:
    return {}


CYCLE: tuple[Step, ...] = (
    Step("assign", MEDIATOR, "trigger", _no_data),
    Step("respond", MERCHANT, "action", lambda s: {"statement": "We will check the kettle and come back."}),
    Step("start_mediation", MEDIATOR, "trigger", _no_data),
    Step("comment", CONSUMER, "action", lambda s: {"body": "Any news? The kettle is still broken."}),
    Step("request_info", MEDIATOR, "action", lambda s: {"party": "merchant", "question": "Which batch was it?"}),
    Step(
        "provide_info",
        MERCHANT,
        "action",
        lambda s: {"request_id": s.info_requests[-1].request_id, "answer": "Batch 2026-02."},
    ),
    Step("propose_offer", MERCHANT, "action", lambda s: {"amount": 15000, "currency": "CNY"}),
    Step("accept_offer", CONSUMER, "action", lambda s: {"offer_id": s.offers[-1].offer_id}),
    Step("settle", MEDIATOR, "trigger", _no_data),
    Step("close", MEDIATOR, "trigger", _no_data),
)
"""After filing: every command of a case from assignment to closing (10 + the filing = 11)."""

COMMANDS_PER_CASE = len(CYCLE) + 1


def drive_case(service: CaseService, *, new: NewCase | None = None) -> CaseSnapshot:
    """File one case and run it through the whole cycle, with If-Match like the API."""
    case = service.file(actor=CONSUMER, new_case=new or new_case())
    for step in CYCLE:
        case = service.execute(
            actor=step.actor,
            case_id=case.id,
            name=step.name,
            data=step.data(case),
            expected_version=case.version,
            kind=step.kind,
        )
    assert case.state == "closed", case.state
    return case


# --- the writes one command makes, recorded from the engine itself ------------------------


@dataclass
class Statement:
    sql: str
    params: Any
    many: bool


class WriteRecorder:
    """Records the INSERT/UPDATE/DELETE statements the engine sends to the driver, per step,
    exactly as the driver receives them (rendered SQL, bound and processed parameters)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.steps: list[list[Statement]] = []
        self._current: list[Statement] | None = None

    def __enter__(self) -> WriteRecorder:
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)

    def step(self) -> None:
        self._current = []
        self.steps.append(self._current)

    def _on_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if self._current is None:
            return
        head = statement.lstrip().split(None, 1)[0].upper()
        if head in ("INSERT", "UPDATE", "DELETE"):
            self._current.append(Statement(statement, _plain(parameters), executemany))


def _plain(value: Any) -> Any:
    """A deep copy of statement parameters that pickles: the driver's processed binary values
    (sealed personal data, wrapped keys) arrive as memoryviews, which become bytes."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return copy.deepcopy(value)


def record_cycle(service: CaseService) -> tuple[str, list[list[Statement]]]:
    """Run one case through the cycle and return its id and the writes of each command."""
    recorder = WriteRecorder(service.db.engine)
    with recorder:
        recorder.step()
        case = service.file(actor=CONSUMER, new_case=new_case())
        for step in CYCLE:
            recorder.step()
            case = service.execute(
                actor=step.actor,
                case_id=case.id,
                name=step.name,
                data=step.data(case),
                expected_version=case.version,
                kind=step.kind,
            )
    assert all(recorder.steps), "a command wrote nothing?"
    return case.id, recorder.steps


def substitute(value: Any, old: str, new: str) -> Any:
    """``value`` (parameters of a statement) with every string's ``old`` replaced by ``new``."""
    if isinstance(value, str):
        return value.replace(old, new) if old in value else value
    if isinstance(value, tuple):
        return tuple(substitute(v, old, new) for v in value)
    if isinstance(value, list):
        return [substitute(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, old, new) for k, v in value.items()}
    return value


class RawWriter:
    """The raw baseline: the same statements through the same driver connection (the engine's
    connect settings: WAL, synchronous=FULL, busy timeout), one transaction per command."""

    def __init__(self, url: str, *, pipelined: bool = False) -> None:
        """``pipelined``: on PostgreSQL, send each command's writes in one round trip, as the
        engine does (store.fastpath.pipelined), instead of one statement at a time."""
        self.engine = make_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.pipelined = pipelined and not self.sqlite
        self._proxy = self.engine.raw_connection()
        self.conn: Any = self._proxy.driver_connection

    def run(self, statements: Sequence[Statement]) -> None:
        run_statements(self.conn, statements, sqlite=self.sqlite, pipelined=self.pipelined)

    def close(self) -> None:
        self._proxy.close()
        self.engine.dispose()


def run_statements(conn: Any, statements: Sequence[Statement], *, sqlite: bool, pipelined: bool = False) -> None:
    """Execute recorded statements on a DBAPI connection in one transaction (BEGIN IMMEDIATE
    on SQLite, as the engine does); an UPDATE that changes no row is an error. ``pipelined``
    (psycopg): all of them in one round trip, then COMMIT."""
    cursor = conn.cursor()
    if sqlite:
        cursor.execute("BEGIN IMMEDIATE")
    try:
        updates = []
        with conn.pipeline() if pipelined else contextlib.nullcontext():
            for st in statements:
                # A cursor per statement: in a pipeline each one's rowcount arrives at the end.
                one = conn.cursor() if pipelined else cursor
                if st.many:
                    one.executemany(st.sql, st.params)
                else:
                    one.execute(st.sql, st.params)
                    if st.sql.lstrip()[:6].upper() == "UPDATE":
                        if pipelined:
                            updates.append(one)  # its rowcount is there after the pipeline
                        elif one.rowcount != 1:
                            raise AssertionError(f"baseline UPDATE changed {one.rowcount} rows")
        if any(u.rowcount != 1 for u in updates):
            raise AssertionError("a baseline UPDATE changed no row")
    except BaseException:
        if sqlite:
            cursor.execute("ROLLBACK")
        else:
            conn.rollback()
        cursor.close()
        raise
    if sqlite:
        cursor.execute("COMMIT")
    else:
        conn.commit()
    cursor.close()


# --- machine ----------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "cores": str(os.cpu_count() or "?"),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()}",
    }
