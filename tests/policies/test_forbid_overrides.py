"""forbid overrides permit, including permits a desk adds later; a forbid that cannot be evaluated fails closed."""

from __future__ import annotations

from pathlib import Path

from policies.cedar import load_policy_dir
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR
from tests.support.policy_factories import NOW, assigned, case, copy_policy_dir

GENEROUS = """
@id("mediators-decide-too")
@reason("mediators may decide for the consumer")
permit (principal, action == Action::"decide_for_consumer", resource is Case)
when { principal.role == "mediator" };

@id("everyone-does-everything")
@reason("anyone may do anything")
permit (principal, action, resource);
"""


def test_forbids_win_over_permits_added_later(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    (directory / "zz_generous.cedar").write_text(GENEROUS)
    authorizer = load_policy_dir(directory)

    decision = authorizer.decide(actor=MEDIATOR, action="decide_for_consumer", case=assigned(), now=NOW)
    assert not decision.allowed
    assert decision.policy_ids == ("only-system-decides-for-consumer",)

    decision = authorizer.decide(actor=AUDITOR, action="comment", case=assigned(), now=NOW)
    assert not decision.allowed and decision.policy_ids == ("auditors-change-nothing",)

    decision = authorizer.decide(
        actor=CONSUMER,
        action="reopen",
        case=assigned("closed", reopen_count=1, closed_at="2026-03-09T00:00:00.000000Z"),
        now=NOW,
    )
    assert not decision.allowed and decision.policy_ids == ("reopen-only-once",)

    # Where no forbid applies, the generous permit does allow, naming both permits.
    decision = authorizer.decide(actor=CONSUMER, action="withdraw", case=case(), now=NOW)
    assert decision.allowed
    assert set(decision.policy_ids) == {"consumer-withdraws", "everyone-does-everything"}


def test_a_forbid_that_cannot_be_evaluated_refuses(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    # The consumer is only a reference: its attributes are not loaded, so this errors
    # for anyone but the consumer themselves.
    (directory / "zz_broken.cedar").write_text(
        '@id("blocked-consumers")\n@reason("cases of blocked consumers are frozen")\n'
        'forbid (principal, action == Action::"view", resource is Case)\n'
        'when { resource.consumer.role == "blocked" };\n'
    )
    authorizer = load_policy_dir(directory)
    decision = authorizer.decide(actor=MEDIATOR, action="view", case=case(), now=NOW)
    assert not decision.allowed
    assert decision.policy_ids == ("blocked-consumers",)
    assert decision.reasons == (
        "policy 'blocked-consumers' could not be evaluated and might forbid this: "
        "cases of blocked consumers are frozen",
    )
    assert decision.errors and "blocked-consumers" in decision.errors[0] and "policy0" not in decision.errors[0]
