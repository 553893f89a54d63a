"""verify_database: the streaming walk, its scopes and callbacks, and what only checkpoints can reveal."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, text, update

from audit.chains import verify_case
from audit.checkpoints import write_checkpoint
from audit.keys import generate_signing_key, public_key_hex
from audit.replay import replay
from audit.verify import CheckpointProblem, VerifyReport, verify_database
from cases.projection import case_values
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from store.codec import snapshot_to_json
from store.tables import CASES, CHECKPOINT_HEADS, EVENTS
from tests.audit.corruptions import forged_row
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.audit_builders import build_cases, extend_cases
from tests.support.builders import make_clocked_service, new_case
from workflow.chain import GENESIS_HASH, link
from workflow.errors import NotFoundError


def _damages(report: VerifyReport) -> dict[str, tuple[int, str]]:
    return {d.case_id: (d.seq, d.kind) for d in report.damages}


def test_an_intact_database_verifies_page_by_page(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    built = build_cases(service, count=23, events_per_case=lambda i: 1 + i % 7, rng=random.Random(1))
    write_checkpoint(service.db, signing_key, T0)
    pages: list[int] = []
    report = verify_database(
        service.db,
        service.registry,
        trusted_keys=[public_key_hex(signing_key)],
        page_size=5,
        progress=lambda r: pages.append(r.cases_checked),
        on_finding=lambda f: pytest.fail(f"reported {f}"),
    )
    assert report.intact
    assert (report.cases_total, report.cases_checked, report.events_checked) == (23, 23, built.events)
    assert (report.checkpoints_checked, report.latest_checkpoint, report.roots_verified) == (1, 1, [1])
    assert pages == [5, 10, 15, 20, 23, 23]
    assert report.to_dict()["intact"] is True


def test_findings_name_case_seq_and_kind_as_they_are_found(
    service: CaseService, signing_key: Ed25519PrivateKey
) -> None:
    built = build_cases(service, count=8, events_per_case=lambda i: 6, rng=random.Random(2))
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=1))
    extend_cases(service, built.case_ids, comments=2, now=T0 + timedelta(hours=2), rng=random.Random(3))
    changed, hidden_cut, orphaned, vanished, swapped, forged = built.case_ids[:6]
    with service.db.write() as session:
        session.execute(
            update(EVENTS)
            .where(EVENTS.c.case_id == changed, EVENTS.c.seq == 4)
            .values(body=EVENTS.c.body + " ")  # one byte more
        )
        # Cut back to seq 3 (the checkpoint saw 6) and make the case row agree: the chain
        # and the projection are consistent, only the checkpoint still knows better.
        session.execute(delete(EVENTS).where(EVENTS.c.case_id == hidden_cut, EVENTS.c.seq > 3))
        snapshot = replay(session, service.registry, hidden_cut, seq=3).snapshot
        session.execute(update(CASES).where(CASES.c.id == hidden_cut).values(**case_values(snapshot)))
        session.execute(delete(CASES).where(CASES.c.id == orphaned))
        session.execute(delete(CASES).where(CASES.c.id == vanished))
        session.execute(delete(EVENTS).where(EVENTS.c.case_id == vanished))
        session.execute(update(EVENTS).where(EVENTS.c.case_id == swapped, EVENTS.c.seq == 2).values(seq=-1))
        session.execute(update(EVENTS).where(EVENTS.c.case_id == swapped, EVENTS.c.seq == 5).values(seq=2))
        session.execute(update(EVENTS).where(EVENTS.c.case_id == swapped, EVENTS.c.seq == -1).values(seq=5))
        head = session.execute(select(EVENTS.c.hash).where(EVENTS.c.case_id == forged, EVENTS.c.seq == 8)).scalar_one()
        session.execute(EVENTS.insert().values(**forged_row(session, forged, 9, head)))
    with service.db.read() as session:
        assert verify_case(session, service.registry, hidden_cut) == []  # the chain alone is fooled
    streamed: list[str] = []
    report = verify_database(service.db, service.registry, on_finding=lambda f: streamed.append(str(f)))
    assert _damages(report) == {
        changed: (4, "changed"),
        hidden_cut: (4, "truncated"),
        orphaned: (0, "deleted"),
        vanished: (1, "deleted"),
        swapped: (2, "reordered"),
        forged: (9, "inserted"),
    }
    assert [p.kind for p in report.checkpoint_problems] == ["log"]  # cut and vanished heads are gone
    assert len(streamed) == 7 and not report.intact
    assert report.cases_checked == 6  # the two without a case row are found by the orphan scan


def test_a_rehashed_history_is_caught_by_the_checkpoint(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    """Someone edits a message and recomputes every later hash and the case row. Every
    chain verifies; the signed checkpoint does not agree."""
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": "The seller was rude"})
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "We apologise"})
    write_checkpoint(service.db, signing_key, T0)
    with service.db.write() as session:
        rows = session.execute(select(EVENTS).where(EVENTS.c.case_id == case.id).order_by(EVENTS.c.seq)).all()
        prev = GENESIS_HASH
        for row in rows:
            body = row.body.replace("rude", "kind")
            digest = link(prev, body.encode())
            session.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(body=body, prev_hash=prev, hash=digest))
            prev = digest
        rewritten = replay(session, service.registry, case.id).snapshot
        session.execute(
            update(CASES).where(CASES.c.id == case.id).values(head_hash=prev, snapshot=snapshot_to_json(rewritten))
        )
    with service.db.read() as session:
        assert verify_case(session, service.registry, case.id) == []
    report = verify_database(service.db, service.registry)
    assert _damages(report) == {case.id: (4, "changed")}  # the checkpointed head; the edit is at or before it
    assert [p.kind for p in report.checkpoint_problems] == ["log"]


def test_tampered_checkpoint_tables_and_foreign_keys_are_reported(
    service: CaseService, signing_key: Ed25519PrivateKey
) -> None:
    built = build_cases(service, count=5, events_per_case=lambda i: 3, rng=random.Random(4))
    write_checkpoint(service.db, signing_key, T0)
    extend_cases(service, built.case_ids[:2], comments=1, now=T0 + timedelta(hours=1), rng=random.Random(5))
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=2))
    assert verify_database(service.db, service.registry, trusted_keys=[public_key_hex(signing_key)]).intact
    stranger = public_key_hex(generate_signing_key())
    report = verify_database(service.db, service.registry, trusted_keys=[stranger])
    assert [(p.number, p.kind) for p in report.checkpoint_problems] == [(1, "key"), (2, "key")]
    with service.db.write() as session:
        # Hide checkpoint #1's head of a case: its signed delta no longer matches.
        session.execute(
            delete(CHECKPOINT_HEADS).where(
                CHECKPOINT_HEADS.c.case_id == built.case_ids[4], CHECKPOINT_HEADS.c.checkpoint == 1
            )
        )
    report = verify_database(service.db, service.registry, all_roots=True)
    found = {(p.number, p.kind) for p in report.checkpoint_problems}
    assert {(1, "delta"), (1, "root"), (2, "root")} <= found
    assert report.damages == []  # the events themselves are intact
    assert isinstance(report.checkpoint_problems[0], CheckpointProblem)


def test_scopes_one_case_or_recent_cases(service: CaseService) -> None:
    first = service.file(actor=CONSUMER, new_case=new_case())
    service.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    second = service.file(actor=CONSUMER, new_case=new_case(order_ref="later"))
    with service.db.write() as session:
        session.execute(text("DELETE FROM events WHERE case_id = :c"), {"c": first.id})
    report = verify_database(service.db, service.registry, case_id=second.id)
    assert report.intact and report.cases_checked == 1
    report = verify_database(service.db, service.registry, since=T0 + timedelta(days=1))
    assert report.intact and report.cases_total == 1
    report = verify_database(service.db, service.registry, case_id=first.id)
    assert _damages(report) == {first.id: (1, "truncated")}
    with pytest.raises(NotFoundError):
        verify_database(service.db, service.registry, case_id="DSP-NO-SUCH")


def test_chain_only_mode_skips_the_projection(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    with service.db.write() as session:
        session.execute(update(CASES).where(CASES.c.id == case.id).values(state="closed"))
    assert _damages(verify_database(service.db, service.registry)) == {case.id: (1, "projection")}
    assert verify_database(service.db, service.registry, replay=False).intact


@pytest.mark.parametrize(
    ("column", "forged"),
    [
        ("mediator_id", "med-2"),  # another mediator would see and act on the case
        ("consumer_id", "c-9"),
        ("merchant_id", "m-9"),
        ("state", "closed"),
        ("priority", "urgent"),
        ("awaiting", "consumer"),
        ("flags", "vulnerable_consumer"),
        ("closed_at", T0),
        ("claim_amount", 1),
        ("policy_version", "forged"),
    ],
)
def test_every_column_queries_read_instead_of_the_snapshot_is_checked(
    service: CaseService, column: str, forged: object
) -> None:
    """The list filters and visibility read these columns, not the snapshot: one changed
    alone (snapshot and chain intact) is projection drift, named by its column."""
    case = service.file(actor=CONSUMER, new_case=new_case())
    case = service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    assert verify_database(service.db, service.registry).intact
    with service.db.write() as session:
        session.execute(update(CASES).where(CASES.c.id == case.id).values({column: forged}))
    report = verify_database(service.db, service.registry)
    assert _damages(report) == {case.id: (case.version, "projection")}
    assert report.damages[0].detail.startswith(f"the stored {column} column says ")
    with service.db.read() as session:
        assert [d.kind for d in verify_case(session, service.registry, case.id)] == ["projection"]


def test_a_breaching_column_that_disagrees_with_the_clocks_is_projection_drift(db_url: str) -> None:
    """``GET /v1/cases?breaching=`` reads the column alone: set on a case whose clocks are fine,
    or cleared on one whose clock warned, it is reported like any other projection drift, by the
    one-case check and the database walk alike (not in chain-only mode, which replays nothing)."""
    service = make_clocked_service(db_url)
    try:
        clock = service.clock
        assert isinstance(clock, ManualClock)
        warned = service.file(actor=CONSUMER, new_case=new_case(order_ref="warned"))
        calm, raised, cleared = (service.file(actor=CONSUMER, new_case=new_case(order_ref=n)) for n in "ABC")
        service.execute(actor=MEDIATOR, case_id=calm.id, name="assign")  # its assignment clock is met
        clock.set(T0 + timedelta(hours=1.5))  # the unassigned cases' assignment clocks warn
        fire_due_timers(service, clock.now())
        service.execute(actor=MEDIATOR, case_id=raised.id, name="assign")  # met, no longer breaching
        assert [service.get(actor=AUDITOR, case_id=c.id).breaching for c in (warned, calm, raised, cleared)] == [
            True,
            False,
            False,
            True,
        ]
        assert verify_database(service.db, service.registry).intact
        with service.db.write() as session:
            session.execute(update(CASES).where(CASES.c.id == raised.id).values(breaching=True))
            session.execute(update(CASES).where(CASES.c.id == cleared.id).values(breaching=False))
        versions = {c.id: service.get(actor=AUDITOR, case_id=c.id).version for c in (raised, cleared)}
        report = verify_database(service.db, service.registry)
        assert _damages(report) == {case_id: (version, "projection") for case_id, version in versions.items()}
        details = {d.case_id: d.detail for d in report.damages}
        assert details == {
            raised.id: "the stored breaching column says True, replaying the log gives False",
            cleared.id: "the stored breaching column says False, replaying the log gives True",
        }
        with service.db.read() as session:
            assert [d.kind for d in verify_case(session, service.registry, raised.id)] == ["projection"]
            assert verify_case(session, service.registry, warned.id) == []
            assert verify_case(session, service.registry, calm.id) == []
        assert verify_database(service.db, service.registry, replay=False).intact
    finally:
        service.db.dispose()
