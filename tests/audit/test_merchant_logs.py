"""Merchants' logs are verified like the cases': every tampering is named by merchant, seq and kind.

The logs are written by the real append path (cases/merchants.py), a checkpoint signs
their heads, and more events follow. Each corruption of tests/audit/corruptions.py's
merchant catalogue is applied in a transaction that is rolled back after verification.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from sqlmodel import Session

from audit.checkpoints import write_checkpoint
from audit.verify import check_checkpoints, check_merchants, check_root, verify_database
from cases.merchants import append_merchant_event
from cases.service import CaseService
from store.tables import CHECKPOINT_MERCHANT_HEADS, MERCHANT_EVENTS, MERCHANTS
from tests.audit.corruptions import MERCHANT_CORRUPTIONS, MerchantTarget
from tests.support.actors import CONSUMER, MEDIATOR, T0
from tests.support.audit_builders import make_fast_service
from tests.support.builders import new_case, set_merchant_flag
from workflow.chain import GENESIS_HASH, link
from workflow.merchant import MERCHANT_FLAGGED

# Merchant -> events before the checkpoint, events after it.
LOGS = {"m-1": (4, 2), "m-2": (3, 0), "m-3": (2, 1), "m-4": (5, 0), "m-5": (1, 0)}
ROUNDS = 4  # of every corruption, on random merchants, per backend


@dataclass
class Logs:
    service: CaseService
    targets: dict[str, MerchantTarget]


def flag_events(session: Session, merchant_id: str, count: int, first: int, start: int) -> None:
    """``count`` alternating raises and clears on the merchant's log, from its seq ``first``."""
    for n in range(first, first + count):
        raised = n % 2 == 1
        data = {"flag": MERCHANT_FLAGGED, "flag_id": n}
        if raised:
            data.update(
                reasons=[f"complaints filed against the merchant: {30 + n} (threshold 30)"], rules_version="ab" * 32
            )
        append_merchant_event(
            session, merchant_id, "flag_raised" if raised else "flag_cleared", data, T0 + timedelta(minutes=start + n)
        )


@pytest.fixture
def logs(db_url: str, signing_key: Ed25519PrivateKey) -> Iterator[Logs]:
    service = make_fast_service(db_url)
    with service.db.write() as session:
        for merchant_id, (before, _after) in LOGS.items():
            flag_events(session, merchant_id, before, 1, 0)
    assert write_checkpoint(service.db, signing_key, T0 + timedelta(hours=1)) is not None
    with service.db.write() as session:
        for merchant_id, (before, after) in LOGS.items():
            flag_events(session, merchant_id, after, before + 1, 120)
    targets = {m: MerchantTarget(m, before + after, before) for m, (before, after) in LOGS.items()}
    yield Logs(service, targets)
    service.db.dispose()


def test_intact_logs_verify_and_their_heads_are_signed(logs: Logs) -> None:
    report = verify_database(logs.service.db, logs.service.registry, all_roots=True)
    assert report.intact, report.to_dict()
    assert (report.merchants_checked, report.merchant_events_checked) == (5, sum(map(sum, LOGS.values())))
    with logs.service.db.read() as session:
        stored = session.execute(select(MERCHANTS.c.merchant_id, MERCHANTS.c.seq, MERCHANTS.c.flagged)).all()
    # Alternating raises and clears from a raise: flagged after an odd number of events.
    assert {r.merchant_id: (r.seq, bool(r.flagged)) for r in stored} == {
        m: (sum(n), sum(n) % 2 == 1) for m, n in LOGS.items()
    }


def test_every_corruption_of_a_merchant_log_is_named(logs: Logs) -> None:
    service, rng = logs.service, random.Random(16)
    names = sorted(MERCHANT_CORRUPTIONS)
    failures = []
    for round_ in range(ROUNDS):
        for name in names:
            corrupt, applicable = MERCHANT_CORRUPTIONS[name]
            target = logs.targets[rng.choice([m for m in sorted(logs.targets) if applicable(logs.targets[m])])]
            with Session(service.db.engine) as session:
                transaction = session.begin()
                try:
                    expected = corrupt(session, target, rng)
                    found = {c.merchant_id: c.damage for c in check_merchants(session)}
                    chain_only = {c.merchant_id: c.damage for c in check_merchants(session, replay=False)}
                finally:
                    transaction.rollback()
            damage = found.pop(target.merchant_id)
            got = (damage.merchant_id, damage.seq, damage.kind) if damage else None
            if got != (expected.case_id, expected.seq, expected.kind):
                failures.append(f"round {round_}: {expected.what} in {target}: expected {expected}, got {damage}")
            if any(d is not None for d in found.values()):
                failures.append(f"{expected.what}: intact logs reported {found}")
            # Without the fold, everything but the row's flag is still found, named alike.
            wanted = None if expected.kind == "projection" else damage
            if chain_only[target.merchant_id] != wanted:
                failures.append(f"{expected.what}: the chain-only check read {chain_only[target.merchant_id]}")
    assert not failures, "\n".join(failures)
    assert verify_database(service.db, service.registry).intact  # the rollbacks left nothing behind


def test_verification_reports_a_damaged_merchant_log_by_merchant_and_seq(logs: Logs) -> None:
    service = logs.service
    with service.db.write() as session:
        # A gap: seq 2 of m-4 is gone.
        session.execute(
            delete(MERCHANT_EVENTS).where(MERCHANT_EVENTS.c.merchant_id == "m-4", MERCHANT_EVENTS.c.seq == 2)
        )
    seen: list[str] = []
    report = verify_database(service.db, service.registry, on_finding=lambda f: seen.append(str(f)))
    assert not report.intact and report.damages == []
    assert [(d.merchant_id, d.seq, d.kind) for d in report.merchant_damages] == [("m-4", 2, "deleted")]
    assert seen == ["merchant m-4 seq 2: deleted: expected seq 2, found 3"]
    assert report.to_dict()["merchant_damages"][0]["merchant_id"] == "m-4"


def test_a_rehashed_merchant_log_is_caught_by_the_checkpoint(logs: Logs) -> None:
    """Someone rewrites a reason in m-1's log and recomputes every hash and the merchant's row:
    the chain holds, the signed checkpoint does not agree."""
    service = logs.service
    with service.db.write() as session:
        rows = session.execute(
            select(MERCHANT_EVENTS).where(MERCHANT_EVENTS.c.merchant_id == "m-1").order_by(MERCHANT_EVENTS.c.seq)
        ).all()
        prev = GENESIS_HASH
        for row in rows:
            body = row.body.replace("threshold 30", "threshold 20")
            digest = link(prev, body.encode())
            session.execute(
                update(MERCHANT_EVENTS)
                .where(MERCHANT_EVENTS.c.id == row.id)
                .values(body=body, prev_hash=prev, hash=digest)
            )
            prev = digest
        session.execute(update(MERCHANTS).where(MERCHANTS.c.merchant_id == "m-1").values(head_hash=prev))
    report = verify_database(service.db, service.registry)
    # The checkpoint saw seq 4; the rewrite began at or before it.
    assert [(d.merchant_id, d.seq, d.kind) for d in report.merchant_damages] == [("m-1", 4, "changed")]
    assert [(p.kind, "merchant logs" in p.detail) for p in report.checkpoint_problems] == [("log", True)]


def test_tampered_merchant_heads_of_a_checkpoint_are_reported(logs: Logs) -> None:
    service = logs.service
    with service.db.write() as session:
        assert check_root(session) == []
        session.execute(delete(CHECKPOINT_MERCHANT_HEADS).where(CHECKPOINT_MERCHANT_HEADS.c.merchant_id == "m-2"))
    with service.db.read() as session:
        problems = check_checkpoints(session).problems
    # The stored heads no longer hash to the signed delta nor give the signed root; nor does the
    # log, read at the heads that remain.
    assert {(p.number, p.kind) for p in problems} == {(1, "delta"), (1, "root"), (1, "log")}
    assert all("merchant heads" in p.detail for p in problems)


def test_a_decision_whose_recorded_standing_the_merchant_log_denies_is_reported(service: CaseService) -> None:
    """Someone rewrites m-1's log so that it was never flagged (every hash recomputed, its row
    fixed): the log verifies on its own, but the comment made while it was flagged recorded
    the standing it relied on, and verification names that decision."""
    case = service.file(actor=CONSUMER, new_case=new_case())
    set_merchant_flag(service, "m-1", True)
    commented = service.execute(actor=MEDIATOR, case_id=case.id, name="comment", data={"body": "noted"})
    assert verify_database(service.db, service.registry).intact
    with service.db.write() as session:
        row = session.execute(select(MERCHANT_EVENTS).where(MERCHANT_EVENTS.c.merchant_id == "m-1")).one()
        body = row.body.replace('"type":"flag_raised"', '"type":"flag_cleared"')
        digest = link(GENESIS_HASH, body.encode())
        session.execute(
            update(MERCHANT_EVENTS)
            .where(MERCHANT_EVENTS.c.id == row.id)
            .values(body=body, hash=digest, type="flag_cleared")
        )
        session.execute(
            update(MERCHANTS).where(MERCHANTS.c.merchant_id == "m-1").values(head_hash=digest, flagged=False)
        )
    report = verify_database(service.db, service.registry)
    assert report.merchant_damages == []
    assert [(d.case_id, d.seq, d.kind) for d in report.damages] == [(case.id, commented.version, "standing")]
    assert (
        "records merchant m-1 as flagged at its seq 1; the merchant's log says not flagged" in report.damages[0].detail
    )
    with service.db.write() as session:
        session.execute(delete(MERCHANT_EVENTS))
        session.execute(delete(MERCHANTS))
    report = verify_database(service.db, service.registry)
    assert [(d.seq, d.kind) for d in report.damages] == [(commented.version, "standing")]
    assert "which does not exist" in report.damages[0].detail
