"""What-if replays recorded commands under changed rules and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from cases.models import EventRow
from cases.whatif import what_if_case
from policies.cedar import load_policy_dir
from tests.cases.helpers import CONSUMER, MEDIATOR, MERCHANT, default_policies, make_clocked_service, new_case
from workflow.definition import load_definition_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKFLOW = (ROOT / "workflow" / "definitions" / "consumer_dispute.yaml").read_text(encoding="utf-8")
EVENTS = EventRow.__table__  # type: ignore[attr-defined]


def test_changed_rules_report_refusals_and_other_destinations(db_url: str, tmp_path: Path) -> None:
    service = make_clocked_service(db_url)
    withdrawn = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=withdrawn.id, name="assign")
    service.execute(actor=CONSUMER, case_id=withdrawn.id, name="withdraw", reason="sorted out")
    conceded = service.file(actor=CONSUMER, new_case=new_case(order_ref="o2"))
    service.execute(actor=MEDIATOR, case_id=conceded.id, name="assign")
    service.execute(actor=MERCHANT, case_id=conceded.id, name="accept_claim")
    untouched = service.file(actor=CONSUMER, new_case=new_case(order_ref="o3"))
    service.execute(actor=CONSUMER, case_id=untouched.id, name="comment", data={"body": "hello"})

    # New workflow: a withdrawal from 'assigned' is no longer possible.
    changed_workflow = load_definition_text(
        DEFAULT_WORKFLOW.replace(
            "  - trigger: withdraw\n    source: [filed, assigned, mediating, escalated]",
            "  - trigger: withdraw\n    source: [filed, mediating, escalated]",
        )
    )
    # New policies: merchants may no longer concede in full.
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies" / "default", policies)
    with (policies / "guards.cedar").open("a", encoding="utf-8") as handle:
        handle.write(
            '\n@id("no-full-concessions")\n@reason("full concessions go through a mediator now")\n'
            'forbid (principal, action == Action::"accept_claim", resource is Case);\n'
        )
    changed_policies = load_policy_dir(policies)

    with service.db.read() as session:
        before = session.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        one = what_if_case(
            session, service.registry, withdrawn.id, workflow=changed_workflow, authorizer=default_policies()
        )
        two = what_if_case(
            session, service.registry, conceded.id, workflow=service.registry.active(), authorizer=changed_policies
        )
        three = what_if_case(
            session, service.registry, untouched.id, workflow=changed_workflow, authorizer=changed_policies
        )
        same = what_if_case(
            session, service.registry, conceded.id, workflow=service.registry.active(), authorizer=default_policies()
        )
        after = session.execute(select(func.count()).select_from(EVENTS)).scalar_one()
    assert before == after
    assert [(d.command, d.now) for d in one.divergences] == [("withdraw", "refused: not possible in state 'assigned'")]
    assert [d.command for d in two.divergences] == ["accept_claim"]
    assert "full concessions go through a mediator now" in two.divergences[0].now
    assert not three.changed and three.commands == 1
    assert not same.changed and same.commands == 2
    service.db.dispose()
