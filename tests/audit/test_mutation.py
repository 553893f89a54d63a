"""Random corruptions of a 10,000-event database are each detected, naming the right case, seq and kind.

One database per backend serves every corruption: each is applied in a transaction
that is rolled back after verification. The bounded run (DISPUTES_AUDIT_CORRUPTIONS,
default 150) always runs; the issue's 1,000 corruptions run as a slow test.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlmodel import Session

from audit.chains import snapshot_read
from audit.checkpoints import case_head, write_checkpoint
from audit.keys import public_key_hex
from audit.verify import check_cases, check_checkpoints, check_root, verify_database
from cases.service import CaseService
from store.tables import EVENTS
from tests.audit.corruptions import CORRUPTIONS, Target
from tests.support.actors import T0
from tests.support.audit_builders import build_cases, extend_cases, make_fast_service
from tests.support.database import database_url

CASES = 400
BOUNDED = int(os.environ.get("DISPUTES_AUDIT_CORRUPTIONS", "150"))
WINDOW = 5  # intact cases verified alongside each damaged one: none may be reported


@dataclass
class Ledger:
    service: CaseService
    targets: dict[str, Target]
    checkpointed_hash: dict[str, str]
    events: int
    latest: int
    key_hex: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, signing_key: Ed25519PrivateKey
) -> Iterator[Ledger]:
    """~10,000 events in 400 cases; a checkpoint; more events on a third of the cases;
    a second checkpoint; then a tail no checkpoint has seen on a quarter of them."""
    rng = random.Random(20260302)
    for url in database_url(request.param, tmp_path_factory.mktemp("ledger")):
        service = make_fast_service(url)
        started = time.perf_counter()
        built = build_cases(service, count=CASES, events_per_case=lambda i: rng.randint(10, 40), rng=rng)
        events = built.events
        write_checkpoint(service.db, signing_key, T0 + timedelta(days=1))
        events += extend_cases(service, built.case_ids[::3], comments=3, now=T0 + timedelta(days=1, hours=1), rng=rng)
        latest = write_checkpoint(service.db, signing_key, T0 + timedelta(days=2))
        assert latest is not None
        events += extend_cases(service, built.case_ids[::4], comments=2, now=T0 + timedelta(days=2, hours=1), rng=rng)
        elapsed = time.perf_counter() - started
        print(
            f"\n[{request.param}] built {events} events in {CASES} cases in {elapsed:.1f}s ({events / elapsed:.0f}/s)"
        )
        targets: dict[str, Target] = {}
        hashes: dict[str, str] = {}
        with service.db.read() as session:
            for case_id in built.case_ids:
                head = case_head(session, case_id, latest.number)
                assert head is not None
                version = session.execute(
                    select(EVENTS.c.seq).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq.desc()).limit(1)
                ).scalar_one()
                targets[case_id] = Target(case_id, version, head.seq)
                hashes[case_id] = head.hash
        yield Ledger(service, targets, hashes, events, latest.number, public_key_hex(signing_key))
        service.db.dispose()


def test_the_ledger_is_intact_and_verification_keeps_pace(ledger: Ledger) -> None:
    """The whole database verifies; report events/s against hashlib over the same bytes."""
    db, registry = ledger.service.db, ledger.service.registry
    assert 9_000 <= ledger.events <= 12_000
    started = time.perf_counter()
    report = verify_database(db, registry, trusted_keys=[ledger.key_hex], all_roots=True)
    full = time.perf_counter() - started
    assert report.intact, report.to_dict()
    assert (report.cases_checked, report.events_checked) == (CASES, ledger.events)
    assert report.roots_verified == [1, 2] and report.latest_checkpoint == ledger.latest
    started = time.perf_counter()
    assert verify_database(db, registry, replay=False, checkpoints=False).intact
    chain_only = time.perf_counter() - started
    with db.read() as session:
        pairs = [(bytes.fromhex(r.prev_hash), r.body.encode("utf-8")) for r in session.execute(select(EVENTS))]
    started = time.perf_counter()
    for prev, body in pairs:
        hashlib.sha256(prev + body).hexdigest()
    raw = time.perf_counter() - started
    n = ledger.events
    print(
        f"\n[{db.dialect}] verify with replay {n / full:.0f} events/s, chain only {n / chain_only:.0f} events/s, "
        f"hashlib alone {n / raw:.0f} events/s (chain-only / hashlib = {raw / chain_only:.3f})"
    )


def _corrupt_and_check(ledger: Ledger, count: int, seed: int) -> None:
    service = ledger.service
    rng = random.Random(seed)
    ids = sorted(ledger.targets)
    names = sorted(CORRUPTIONS)
    failures: list[str] = []
    done: Counter[str] = Counter()
    started = time.perf_counter()
    for i in range(count):
        name = names[i % len(names)]  # every kind equally often, in a fixed rotation
        corrupt, applicable = CORRUPTIONS[name]
        target = ledger.targets[rng.choice([c for c in rng.sample(ids, 20) if applicable(ledger.targets[c])])]
        window = [target.case_id, *rng.sample([c for c in ids if c != target.case_id], WINDOW)]
        with Session(service.db.engine) as session:
            transaction = session.begin()
            try:
                expected = corrupt(session, service.registry, target, rng)
                found = {c.case_id: c.damage for c in check_cases(session, service.registry, window)}
                # The chain-only walk (first_chain_break, no JSON parsing) must read the same.
                chain_only = {c.case_id: c.damage for c in check_cases(session, service.registry, window, replay=False)}
                problems = check_root(session)
                now_hash = session.execute(
                    select(EVENTS.c.hash).where(EVENTS.c.case_id == target.case_id, EVENTS.c.seq == target.checkpointed)
                ).scalar()
            finally:
                transaction.rollback()
        done[name] += 1
        damage = found.pop(target.case_id)
        got = (damage.seq, damage.kind) if damage else None
        if got != (expected.seq, expected.kind):
            failures.append(f"{expected.what} in {target}: expected {expected.seq}/{expected.kind}, got {damage}")
        if chain_only != {target.case_id: damage, **found}:
            failures.append(f"{expected.what} in {target}: chain-only check read {chain_only}, full check {damage}")
        stray = {c: d for c, d in found.items() if d is not None}
        if stray:
            failures.append(f"{expected.what}: intact cases reported {stray}")
        # The latest checkpoint's root, recomputed from the log, must fail exactly when
        # the event it saw for this case was changed or removed.
        log_broken = now_hash != ledger.checkpointed_hash[target.case_id]
        if [p.kind for p in problems] != (["log"] if log_broken else []):
            failures.append(f"{expected.what}: checkpoint problems {[str(p) for p in problems]}")
    elapsed = time.perf_counter() - started
    print(f"\n[{service.db.dialect}] {count} corruptions in {elapsed:.1f}s ({count / elapsed:.0f}/s): {dict(done)}")
    assert not failures, f"{len(failures)} of {count} corruptions misreported:\n" + "\n".join(failures[:20])
    with service.db.read() as session:  # and the rollbacks left nothing behind
        assert not [c.damage for c in check_cases(session, service.registry, ids[:50]) if c.damage]


def test_random_corruptions_are_detected(ledger: Ledger) -> None:
    _corrupt_and_check(ledger, BOUNDED, seed=1)


@pytest.mark.slow
def test_a_thousand_corruptions_are_detected(ledger: Ledger) -> None:
    _corrupt_and_check(ledger, max(1000, BOUNDED), seed=2)


def test_everything_at_once_is_found_by_the_database_walk(ledger: Ledger) -> None:
    """One of every corruption, on different cases, all in one transaction, found by
    the same per-page walk verify_database runs (here inside that transaction)."""
    service = ledger.service
    rng = random.Random(7)
    ids = sorted(ledger.targets)
    with Session(service.db.engine) as session:
        transaction = session.begin()
        try:
            expected = {}
            for (name, (corrupt, applicable)), case_id in zip(
                sorted(CORRUPTIONS.items()),
                rng.sample([c for c in ids if ledger.targets[c].checkpointed >= 2], 8),
                strict=True,
            ):
                assert applicable(ledger.targets[case_id]), name
                found = corrupt(session, service.registry, ledger.targets[case_id], rng)
                expected[case_id] = (found.seq, found.kind)
            got = {}
            for start in range(0, len(ids), 100):
                for check in check_cases(session, service.registry, ids[start : start + 100]):
                    if check.damage is not None:
                        got[check.case_id] = (check.damage.seq, check.damage.kind)
        finally:
            transaction.rollback()
    assert got == expected
    with snapshot_read(service.db) as session:
        assert check_checkpoints(session).problems == []
