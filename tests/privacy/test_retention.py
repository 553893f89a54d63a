"""Retention: the sweep erases exactly the cases closed longer ago than the period and not under
legal hold (a property over random closing dates and holds), and leaves every proof verifying."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from audit.privacy import verify_erasures
from audit.verify import verify_database
from cases.service import CaseService
from desk.loader import write_packaged_desk
from privacy.markers import ERASED
from runtime.bootstrap import build_engine, reload_configuration
from runtime.settings import Settings
from runtime.ticker import build_ticker
from sla.clock import ManualClock
from tests.support.actors import ADMIN, AUDITOR, T0
from tests.support.builders import make_service, new_case
from workflow.model import Actor

KEEP_FOR = timedelta(days=1096)  # three years
_consumers = itertools.count()


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url, clock=ManualClock(T0))
    yield svc
    svc.db.dispose()


# Per case: days after filing that it closes (None: still open), and whether it is held.
CASES = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(min_value=0, max_value=2000)), st.booleans()), min_size=1, max_size=5
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=CASES, later=st.integers(min_value=0, max_value=2500))
def test_retention_erases_exactly_the_cases_past_their_period_and_not_held(
    service: CaseService, cases: list[tuple[int | None, bool]], later: int
) -> None:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    start = clock.now()
    consumer = Actor(f"shopper-{next(_consumers)}", "consumer")
    ids = [
        service.file(
            actor=consumer, new_case=new_case(consumer_id=consumer.id, description=f"{consumer.id} 13812345678")
        ).id
        for _ in cases
    ]
    closing = sorted((days, case_id) for (days, _held), case_id in zip(cases, ids, strict=True) if days is not None)
    for days, case_id in closing:
        clock.set(start + timedelta(days=days))
        service.execute(actor=consumer, case_id=case_id, name="withdraw")
    for (_days, held), case_id in zip(cases, ids, strict=True):
        if held:
            service.set_legal_hold(actor=ADMIN, case_id=case_id, reason="litigation pending")
    last_close = max((days for days, _ in closing), default=0)
    now = start + timedelta(days=last_close + later)
    clock.set(now)

    erased = service.sweep_personal_data(keep_for=KEEP_FOR)

    expected = {
        case_id
        for (days, held), case_id in zip(cases, ids, strict=True)
        if days is not None and not held and start + timedelta(days=days) <= now - KEEP_FOR
    }
    assert set(erased) == expected
    for case_id in ids:
        shown = service.get(actor=AUDITOR, case_id=case_id).description
        assert (shown == ERASED) == (case_id in expected)
    # What supervision and reports need stays: category, amounts, outcome, timings, merchant.
    for case_id in expected:
        kept = service.get(actor=AUDITOR, case_id=case_id)
        assert (kept.category, kept.claim_amount, kept.outcome, kept.merchant_id) == (
            "product_quality",
            29900,
            "withdrawn",
            "m-1",
        )
        assert kept.closed_at is not None
    assert verify_erasures(service.db) == []
    # A clean slate for the next example: holds released, everything closed swept.
    for (_days, held), case_id in zip(cases, ids, strict=True):
        if held:
            service.release_legal_hold(actor=ADMIN, case_id=case_id, reason="settled")
    clock.set(now + KEEP_FOR * 2)
    for case_id in ids:
        if service.get(actor=AUDITOR, case_id=case_id).closed_at is None:
            service.execute(actor=consumer, case_id=case_id, name="withdraw")
    clock.set(now + KEEP_FOR * 4)
    service.sweep_personal_data(keep_for=KEEP_FOR)


def test_erasure_and_retention_keep_every_chain_verifying(service: CaseService) -> None:
    consumer = Actor("shopper-x", "consumer")
    case_id = service.file(actor=consumer, new_case=new_case(consumer_id=consumer.id)).id
    service.execute(actor=consumer, case_id=case_id, name="withdraw")
    service.set_legal_hold(actor=ADMIN, case_id=case_id, reason="court order 2026-17")
    service.clock.advance(KEEP_FOR * 2)  # type: ignore[attr-defined]
    assert service.sweep_personal_data(keep_for=KEEP_FOR) == []
    outcome = service.erase_subject(user_id=consumer.id, basis="request", approved_by="adm-1")
    assert outcome.deferred == {case_id: "the case is under legal hold"}
    service.release_legal_hold(actor=ADMIN, case_id=case_id, reason="order lifted")
    assert service.sweep_personal_data(keep_for=KEEP_FOR) == [case_id]
    report = verify_database(service.db, service.registry)
    assert report.intact, report.to_dict()
    types = [e.type for e in service.events(actor=AUDITOR, case_id=case_id).data]
    assert types[-4:] == ["legal_hold_set", "erasure_deferred", "legal_hold_released", "personal_data_erased"]


def set_retention(root: Path, years: int) -> None:
    path = root / "desk.yaml"
    text = path.read_text(encoding="utf-8")
    head, _, _ = text.partition("retention_years:")
    path.write_text(f"{head}retention_years: {years}\n", encoding="utf-8")


def test_the_worker_erases_after_the_desks_period_and_a_reload_changes_it(db_url: str, tmp_path: Path) -> None:
    """The period is the desk's (desk.yaml retention_years), not a constant: a one-year desk's
    worker erases a case closed a year and a day ago, which three years would keep; after a
    reload to five years, a case closed two years ago is kept."""
    root = tmp_path / "desk"
    write_packaged_desk(root)
    set_retention(root, 1)
    clock = ManualClock(T0)
    engine = build_engine(
        Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=root), clock=clock
    )
    try:
        service = engine.cases
        assert engine.retention == timedelta(days=365)
        consumer = Actor(f"shopper-{next(_consumers)}", "consumer")

        def closed_case() -> str:
            case = service.file(
                actor=consumer, new_case=new_case(consumer_id=consumer.id, description="王小明 13812345678")
            )
            service.execute(actor=consumer, case_id=case.id, name="withdraw")
            return case.id

        first = closed_case()
        worker = build_ticker(engine)
        clock.advance(timedelta(days=364))
        worker.sweep_once()
        assert service.get(actor=AUDITOR, case_id=first).description == "王小明 13812345678"
        clock.advance(timedelta(days=2))
        worker.sweep_once()
        assert service.get(actor=AUDITOR, case_id=first).description == ERASED

        second = closed_case()
        set_retention(root, 5)
        assert reload_configuration(engine) == []
        assert engine.retention == timedelta(days=1826)
        clock.advance(timedelta(days=2 * 366))
        worker.sweep_once()
        assert service.get(actor=AUDITOR, case_id=second).description == "王小明 13812345678"
        assert verify_erasures(service.db) == []
    finally:
        engine.dispose()


def test_the_retired_retention_setting_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """DISPUTES_RETENTION_YEARS moved to the desk: a deployment still setting it is told so,
    rather than silently getting the desk's period."""
    monkeypatch.setenv("DISPUTES_RETENTION_YEARS", "10")
    with pytest.raises(ValidationError, match="retention_years in the desk's desk.yaml"):
        Settings(environment="test")
