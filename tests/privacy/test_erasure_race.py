"""A consumer files while they are being erased: no case is left under a forgotten pseudonym.

An erasure lists the consumer's cases by pseudonym, erases them and nulls the pseudonym's
mapping; a filing reads the pseudonym and writes its case under it. Whichever order the two
meet in, once both have committed every case of the consumer is either erased (key destroyed,
``personal_data_erased`` appended) or lives under a pseudonym that still maps to them; never
under a nulled mapping with its data key alive (personal data kept that was asked erased, and a
case its consumer cannot find).

Each interleaving is driven step by step: one side is held inside its transaction (at a point
where it has read what the race is about), the other is started and let run until it finishes
or waits for a lock the held one has (PostgreSQL: ``pg_blocking_pids``; SQLite serialises
writers, and the second one queues for the write lock), then the held side goes on. With
``remembered``, the process knows the pseudonym from an earlier filing (issue #18: on
PostgreSQL it is taken from memory and confirmed with the filing's writes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlmodel import Session

import cases.erasure
from cases.service import CaseService
from store.tables import CASE_KEYS, CASES, EVENTS, SUBJECTS
from tests.support.actors import CONSUMER, MEDIATOR
from tests.support.builders import make_service, new_case
from workflow.errors import ConflictError
from workflow.model import CaseSnapshot

ERASE = {"user_id": CONSUMER.id, "basis": "PIPL Art. 47", "approved_by": "adm-1"}
WAIT = 30.0


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url)
    errors: list[str] = []

    def record(context: Any) -> None:
        errors.append(str(context.original_exception))

    # A deadlock would not show in the outcome: PostgreSQL aborts one side, and Database.run_write
    # runs it again (its message says "blocked by process"). None may happen on the way.
    event.listen(svc.db.engine, "handle_error", record)
    yield svc
    event.remove(svc.db.engine, "handle_error", record)
    svc.db.dispose()
    assert [e for e in errors if "deadlock" in e] == []


class Hold:
    """Holds the first thread that reaches it inside its transaction until released, and
    records that transaction's server process (PostgreSQL) for :func:`_run_until_stuck`."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.pid: int | None = None
        self._taken = threading.Lock()

    def __call__(self, session: Session) -> None:
        if not self._taken.acquire(blocking=False):
            return  # only the first time (a filing run again passes)
        driver = session.connection().connection.driver_connection
        self.pid = getattr(getattr(driver, "info", None), "backend_pid", None)
        self.reached.set()
        assert self.go.wait(WAIT), "never released"


def _run_until_stuck(url: str, hold: Hold, other: Future[Any]) -> bool | None:
    """Until ``other`` has finished or waits for a lock the held transaction has; whether it
    waited (None on SQLite)."""
    if url.startswith("sqlite"):
        # The other writer queues for the write lock (nothing to ask SQLite): a moment is enough,
        # and the outcome must not depend on it.
        try:
            other.exception(timeout=0.5)
        except TimeoutError:
            pass
        return None
    engine = create_engine(url)
    deadline = time.monotonic() + WAIT
    try:
        with engine.connect() as conn:
            while not other.done():
                blocked = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                    {"pid": hold.pid},
                ).scalar_one()
                conn.rollback()
                if blocked:
                    return True
                assert time.monotonic() < deadline, "neither finished nor waiting"
                time.sleep(0.01)
    finally:
        engine.dispose()
    return False


def _file_closed_case(service: CaseService) -> str:
    case = service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678"))
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=CONSUMER, case_id=case.id, name="withdraw")
    return case.id


def _left_under_forgotten_pseudonyms(service: CaseService) -> list[str]:
    """Cases whose pseudonym no longer maps to anyone while their data key is alive."""
    with service.db.read() as session:
        return list(
            session.execute(
                select(CASES.c.id)
                .join(SUBJECTS, SUBJECTS.c.subject == CASES.c.consumer_id)
                .join(CASE_KEYS, CASE_KEYS.c.case_id == CASES.c.id)
                .where(SUBJECTS.c.user_id.is_(None), CASE_KEYS.c.wrapped.is_not(None))
            ).scalars()
        )


def _erased_or_theirs(service: CaseService, case_id: str) -> bool:
    """The case is erased (key destroyed, ``personal_data_erased`` appended) or its pseudonym
    maps to the consumer."""
    with service.db.read() as session:
        user_id = session.execute(
            select(SUBJECTS.c.user_id)
            .join(CASES, CASES.c.consumer_id == SUBJECTS.c.subject)
            .where(CASES.c.id == case_id)
        ).scalar()
        wrapped = session.execute(select(CASE_KEYS.c.wrapped).where(CASE_KEYS.c.case_id == case_id)).scalar()
        types = set(session.execute(select(EVENTS.c.type).where(EVENTS.c.case_id == case_id)).scalars())
    return (wrapped is None and "personal_data_erased" in types) or user_id == CONSUMER.id


def _interleave(
    url: str, hold: Hold, first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[Any, Any, bool | None]:
    """``first`` runs until ``hold`` holds it; ``second`` runs until it finishes or waits for
    ``first``; then ``first`` goes on. Both results, and whether ``second`` waited (None: SQLite)."""
    with ThreadPoolExecutor(2) as pool:
        try:
            held = pool.submit(first)
            assert hold.reached.wait(WAIT), "the first never reached its hold"
            other = pool.submit(second)
            waited = _run_until_stuck(url, hold, other)
        finally:
            hold.go.set()
        return held.result(WAIT), other.result(WAIT), waited


@pytest.mark.parametrize("remembered", [False, True], ids=["read", "remembered"])
def test_a_filing_during_the_erasure_files_under_a_new_pseudonym(
    service: CaseService, db_url: str, monkeypatch: pytest.MonkeyPatch, remembered: bool
) -> None:
    """The erasure has listed the consumer's cases when the filing starts: the filing waits, and
    files under a new pseudonym (the old one is forgotten), which the consumer's reads find."""
    old = _file_closed_case(service)
    assert service.privacy is not None
    if not remembered:
        service.privacy.forget(())
    hold = Hold()
    erase_or_defer = cases.erasure._erase_or_defer
    confirm = service.privacy.confirm_subjects
    refused: list[ConflictError] = []

    def confirming(session: Session) -> None:
        try:
            confirm(session)
        except ConflictError as exc:
            refused.append(exc)
            raise

    def held(session: Session, *args: Any) -> str | None:
        hold(session)  # the erasure has listed the cases
        return erase_or_defer(session, *args)

    monkeypatch.setattr(cases.erasure, "_erase_or_defer", held)
    monkeypatch.setattr(service.privacy, "confirm_subjects", confirming)
    outcome, filed, waited = _interleave(
        db_url,
        hold,
        lambda: service.erase_subject(**ERASE),
        lambda: service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678")),
    )
    assert outcome.erased == (old,) and outcome.complete
    assert _left_under_forgotten_pseudonyms(service) == []
    assert _erased_or_theirs(service, old) and _erased_or_theirs(service, filed.id)
    with service.db.read() as session:
        subjects = {r.id: r.consumer_id for r in session.execute(select(CASES.c.id, CASES.c.consumer_id))}
    assert subjects[filed.id] != subjects[old]
    assert filed.id in [c.id for c in service.list_cases(actor=CONSUMER).data]
    # A pseudonym taken from memory (PostgreSQL) was refused when confirmed, and the filing run again.
    assert len(refused) == (1 if remembered and db_url.startswith("postgres") else 0)
    assert waited is not False  # PostgreSQL: the filing waited for the erasure


@pytest.mark.parametrize("remembered", [False, True], ids=["read", "remembered"])
def test_an_erasure_during_a_filing_waits_and_defers_the_new_case(
    service: CaseService, db_url: str, monkeypatch: pytest.MonkeyPatch, remembered: bool
) -> None:
    """The filing has read its pseudonym and written its case when the erasure starts: the
    erasure waits for it to commit and lists its case too (open: deferred, so the pseudonym
    still maps to the consumer)."""
    old = _file_closed_case(service)
    privacy = service.privacy
    assert privacy is not None
    if not remembered:
        privacy.forget(())
    hold = Hold()
    confirm = privacy.confirm_subjects

    def held(session: Session) -> None:
        hold(session)  # the filing's writes are sent, its pseudonym read
        confirm(session)

    monkeypatch.setattr(privacy, "confirm_subjects", held)
    filed, outcome, waited = _interleave(
        db_url,
        hold,
        lambda: service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678")),
        lambda: service.erase_subject(**ERASE),
    )
    assert isinstance(filed, CaseSnapshot)
    assert outcome.erased == (old,) and outcome.deferred == {filed.id: "the case is open"}
    assert _left_under_forgotten_pseudonyms(service) == []
    assert _erased_or_theirs(service, old) and _erased_or_theirs(service, filed.id)
    assert filed.id in [c.id for c in service.list_cases(actor=CONSUMER).data]
    assert waited is not False  # PostgreSQL: the erasure waited for the filing


def test_a_case_filed_while_the_erasure_is_deferred_is_erased_before_the_pseudonym_is_forgotten(
    service: CaseService,
) -> None:
    """An erasure deferred for an open case keeps the pseudonym: a case the consumer files
    meanwhile is theirs too. When the deferred case is done, the newer one is deferred in turn
    (open), and the pseudonym is forgotten only once every case under it is erased."""
    open_case = service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678")).id
    outcome = service.erase_subject(**ERASE)
    assert outcome.deferred == {open_case: "the case is open"}
    newer = service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678")).id
    service.execute(actor=CONSUMER, case_id=open_case, name="withdraw")
    keep = timedelta(days=3 * 365)
    assert service.sweep_personal_data(keep_for=keep) == [open_case]
    assert _left_under_forgotten_pseudonyms(service) == []
    assert _erased_or_theirs(service, newer)
    service.execute(actor=CONSUMER, case_id=newer, name="withdraw")
    assert service.sweep_personal_data(keep_for=keep) == [newer]
    assert _left_under_forgotten_pseudonyms(service) == []
    with service.db.read() as session:
        assert session.execute(select(SUBJECTS.c.user_id).where(SUBJECTS.c.user_id == CONSUMER.id)).all() == []


def test_the_retention_sweep_and_an_erasure_of_one_consumer_wait_for_each_other_without_deadlock(
    service: CaseService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep has claimed the consumer's closed cases (their key rows) when the erasure
    starts: the erasure holds the pseudonym and waits for a key; the sweep, which then needs the
    pseudonym to forget it, passes over it and decides it once committed. Both finish, and the
    consumer is forgotten with every case erased once."""
    cases_ = [_file_closed_case(service) for _ in range(2)]
    hold = Hold()
    erase_case = cases.erasure._erase_case

    def held(session: Session, *args: Any, **kwargs: Any) -> None:
        hold(session)  # the sweep holds the cases' key rows
        erase_case(session, *args, **kwargs)

    monkeypatch.setattr(cases.erasure, "_erase_case", held)
    swept, outcome, waited = _interleave(
        db_url,
        hold,
        lambda: service.sweep_personal_data(keep_for=timedelta(0)),
        lambda: service.erase_subject(**ERASE),
    )
    assert sorted(swept) == sorted(cases_) and sorted(outcome.erased) == sorted(cases_) and outcome.complete
    assert waited is not False
    assert _left_under_forgotten_pseudonyms(service) == []
    with service.db.read() as session:
        assert session.execute(select(SUBJECTS.c.user_id).where(SUBJECTS.c.user_id == CONSUMER.id)).all() == []
        erased = list(
            session.execute(select(EVENTS.c.case_id).where(EVENTS.c.type == "personal_data_erased")).scalars()
        )
    assert sorted(erased) == sorted(cases_)
