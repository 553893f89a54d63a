"""Action clocks (a timer with ``start_on``): started by a command, not by a state, they run on
across state changes and reloads until their ``stop_on`` command or their breach. Property test
on the card-network example desk: whatever happens in between, the cardholder's 72 hours keep
their due instant, read back by a freshly built engine from the database, and breach on time."""

from __future__ import annotations

import functools
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cases.sweep import fire_due_timers
from desk.loader import Desk, load_desk
from runtime.bootstrap import build_engine
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.builders import register_mediators
from tests.support.database import with_schema
from workflow.model import Actor, NewCase

CARD_NETWORK = Path(__file__).resolve().parents[2] / "examples" / "card_network"
FILED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CARDHOLDER = Actor("c-1", "consumer")
MERCHANT = Actor("staff-m-1", "merchant", merchant_id="m-1")
ANALYST = Actor("med-1", "mediator")

# What may happen between the request and its due instant (none of them answers it).
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["merchant_uploads", "merchant_submits", "cardholder_comments", "analyst_comments", "reload"]),
        st.integers(min_value=0, max_value=600),  # minutes that pass first
    ),
    max_size=8,
)


@functools.cache
def card_network() -> Desk:
    return load_desk(CARD_NETWORK)


def engine_on(url: str, clock: ManualClock) -> Engine:
    """A new engine on the database (as a restarted server builds one); the desk is loaded once."""
    settings = Settings(environment="test", database_url=url, run_ticker=False, config_dir=CARD_NETWORK)
    return build_engine(settings, clock=clock, desk=card_network())


@settings(max_examples=15, deadline=None)
@given(steps=STEPS)
def test_an_action_clock_survives_state_changes_and_reloads(steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory, contextmanager(with_schema)(f"sqlite:///{directory}/c.db") as url:
        clock = ManualClock(FILED_AT)
        engine = engine_on(url, clock)
        register_mediators(engine.cases, ["med-1"])
        facts = {"network": "visa", "reason_code": "13.1", "transaction_at": "2026-02-01T09:00:00Z"}
        case = engine.cases.file(
            actor=CARDHOLDER,
            new_case=NewCase(
                "c-1", "m-1", "not_received", "Goods not received", "Nothing came.", "ORD-1", 45000, "EUR", facts=facts
            ),
        )
        engine.cases.execute(
            actor=ANALYST, case_id=case.id, name="request_info", data={"party": "consumer", "question": "Returned?"}
        )
        due = FILED_AT + timedelta(hours=72)
        uploaded = False
        for step, minutes in steps:
            if clock.now() + timedelta(minutes=minutes) >= due - timedelta(minutes=1):
                break
            clock.set(clock.now() + timedelta(minutes=minutes))
            fire_due_timers(engine.cases, clock.now())
            state = engine.cases.get(actor=ANALYST, case_id=case.id).state
            if step == "reload":
                engine.cases.db.dispose()
                engine = engine_on(url, clock)
            elif step == "merchant_uploads" and state in ("awaiting_response", "review"):
                engine.cases.execute(actor=MERCHANT, case_id=case.id, name="add_evidence", data=_file(minutes))
                uploaded = True
            elif step == "merchant_submits" and uploaded and state == "awaiting_response":
                engine.cases.execute(actor=MERCHANT, case_id=case.id, name="submit_evidence", data={})
            elif step in ("cardholder_comments", "analyst_comments"):
                who = CARDHOLDER if step == "cardholder_comments" else ANALYST
                engine.cases.execute(actor=who, case_id=case.id, name="comment", data={"body": "noted"})
            timer = engine.cases.get(actor=ANALYST, case_id=case.id).timer("cardholder_answer")
            assert timer is not None and timer.status == "running"
            assert datetime.fromisoformat(timer.due_at.replace("Z", "+00:00")) == due
        # A fresh engine reads the same clock, which breaches at its instant and not before.
        engine.cases.db.dispose()
        engine = engine_on(url, clock)
        clock.set(due - timedelta(seconds=1))
        fire_due_timers(engine.cases, clock.now())
        before = engine.cases.get(actor=ANALYST, case_id=case.id)
        assert before.timer("cardholder_answer").status == "running"  # type: ignore[union-attr]
        clock.set(due)
        fire_due_timers(engine.cases, clock.now())
        after = engine.cases.get(actor=ANALYST, case_id=case.id)
        assert after.timer("cardholder_answer").status == "breached"  # type: ignore[union-attr]
        assert "cardholder_silent" in after.flags
        engine.cases.db.dispose()


def _file(n: int) -> dict[str, object]:
    return {"filename": f"proof-{n}.pdf", "media_type": "application/pdf", "size": 10, "sha256": f"{n:064x}"}
