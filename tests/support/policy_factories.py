"""Builders for policy tests: actors, case snapshots and a copy of the default policy directory."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policies.cedar import DEFAULT_POLICY_DIR
from tests.support.actors import (
    ADMIN,
    AUDITOR,
    CONSUMER,
    MEDIATOR,
    MERCHANT,
    OTHER_CONSUMER,
    OTHER_MEDIATOR,
    OTHER_MERCHANT,
    SENIOR,
)
from tests.support.workflow_factories import snapshot
from workflow.model import SYSTEM, Actor, CaseSnapshot, Offer, TimerState, to_iso

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
FILED_AT = "2026-03-02T02:00:00.000000Z"


def case(**overrides: Any) -> CaseSnapshot:
    """A case of the default workflow; filed by CONSUMER against merchant m-1 for 299.00 CNY."""
    return snapshot(
        **{"id": "DSP-1", "workflow_version": "v1", "created_at": FILED_AT, "updated_at": FILED_AT, **overrides}
    )


def assigned(state: str = "assigned", mediator: Actor = MEDIATOR, **overrides: Any) -> CaseSnapshot:
    return case(state=state, mediator_id=mediator.id, **overrides)


def timer(name: str, status: str = "running", *, warned: bool = False) -> TimerState:
    return TimerState(name=name, status=status, started_at=FILED_AT, due_at=FILED_AT, warned=warned)


def offer(
    *,
    proposed_by: str = "merchant",
    decided_by: str | None = "consumer",
    status: str = "accepted",
    amount: int = 20000,
    offer_id: str = "off5",
) -> Offer:
    return Offer(
        offer_id=offer_id,
        amount=amount,
        currency="CNY",
        terms="refund",
        proposed_by=proposed_by,
        proposer_id="x",
        status=status,
        decided_by=decided_by,
    )


def with_accepted_offer(snapshot: CaseSnapshot, **offer_args: Any) -> CaseSnapshot:
    accepted = offer(**offer_args)
    return snapshot.evolve(offers=(accepted,), accepted_offer_id=accepted.offer_id)


def closed(days_ago: float = 1, **overrides: Any) -> CaseSnapshot:
    """A closed case, closed ``days_ago`` days before NOW."""
    return assigned(state="closed", closed_at=to_iso(NOW - timedelta(days=days_ago)), **overrides)


def copy_policy_dir(tmp_path: Path, name: str = "pol") -> Path:
    target = tmp_path / name
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    return target


# The annotations of the one rule a test adds to a copied policy directory.
EXTRA_RULE_HEAD = '// extra rules\n@id("extra-one")\n@reason("an extra rule")\n'


def add_extra_rule(directory: Path, rule: str) -> None:
    """Add ``rule`` (Cedar text after the annotations) to ``directory`` as the rule ``extra-one``."""
    (directory / "zz_extra.cedar").write_text(EXTRA_RULE_HEAD + rule, encoding="utf-8")


ALL_ACTORS = (
    CONSUMER,
    OTHER_CONSUMER,
    MERCHANT,
    OTHER_MERCHANT,
    MEDIATOR,
    OTHER_MEDIATOR,
    SENIOR,
    AUDITOR,
    ADMIN,
    SYSTEM,
)
