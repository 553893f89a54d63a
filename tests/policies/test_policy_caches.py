"""The authorizer caches parsed entities and decisions (policies/cedar.py): none may serve a stale
answer when the caller, the case or the desk's policies change."""

from __future__ import annotations

import json
from pathlib import Path

from policies.cedar import CedarAuthorizer, load_policy_dir
from policies.store import PolicyStore
from tests.support.actors import ADMIN, CONSUMER, MEDIATOR, MERCHANT, OTHER_MEDIATOR
from tests.support.policy_factories import NOW, add_extra_rule, assigned, closed, copy_policy_dir, with_accepted_offer
from workflow.model import Actor


def allowed(authorizer: CedarAuthorizer, actor: Actor, actions: list[str], **case_args: object) -> list[bool]:
    snapshot = case_args.pop("case", None) or assigned("mediating")
    decisions = authorizer.decide_many(actor=actor, actions=actions, case=snapshot, now=NOW)  # type: ignore[arg-type]
    return [d.allowed for d in decisions]


def test_a_caller_whose_attributes_changed_is_decided_on_the_new_ones() -> None:
    """The caller's entity is cached per Actor value: the same id with another merchant or role
    is another entity, and going back gives the first answer again."""
    authorizer = load_policy_dir()
    moved = Actor(MERCHANT.id, "merchant", merchant_id="m-2")
    demoted = Actor(MEDIATOR.id, "consumer")
    for _ in range(2):
        assert allowed(authorizer, MERCHANT, ["view", "comment"]) == [True, True]
        assert allowed(authorizer, moved, ["view", "comment"]) == [False, False]
        assert allowed(authorizer, MEDIATOR, ["view", "request_info"]) == [True, True]
        assert allowed(authorizer, demoted, ["view", "request_info"]) == [False, False]
    # A refusal names the caller's role: a cached one is never another role's.
    for role in ("consumer", "guest"):
        refused = authorizer.decide(actor=Actor(MEDIATOR.id, role), action="request_info", case=assigned(), now=NOW)
        assert refused.reasons[0] == f"no policy permits request_info for role {role} in state assigned"
    auditor = Actor(ADMIN.id, "auditor")
    for _ in range(2):
        assert authorizer.decide_desk(actor=ADMIN, action="manage_config", now=NOW).allowed
        assert not authorizer.decide_desk(actor=auditor, action="manage_config", now=NOW).allowed


def test_the_same_case_with_other_facts_is_decided_on_the_new_ones() -> None:
    authorizer = load_policy_dir()
    mine, theirs = assigned("mediating"), assigned("mediating", OTHER_MEDIATOR)
    settled = with_accepted_offer(mine)
    for _ in range(2):
        assert allowed(authorizer, MEDIATOR, ["view", "settle"], case=mine) == [True, False]
        assert allowed(authorizer, MEDIATOR, ["view", "settle"], case=settled) == [True, True]
        assert allowed(authorizer, MEDIATOR, ["view", "settle"], case=theirs) == [False, False]


def test_a_reload_decides_with_the_new_policies_and_settings(tmp_path: Path) -> None:
    """Caches belong to one loaded set: after a reload neither a cached entity (the desk's
    settings) nor a cached decision of the old set answers."""
    directory = copy_policy_dir(tmp_path)
    store = PolicyStore.open(directory)
    before = store.current
    ten_days = closed(days_ago=10)
    assert allowed(before, CONSUMER, ["view", "comment", "reopen"], case=ten_days) == [True, True, True]

    add_extra_rule(
        directory, 'forbid (principal, action == Action::"comment", resource) when { principal.role == "consumer" };\n'
    )
    settings = json.loads((directory / "settings.json").read_text(encoding="utf-8"))
    settings["attributes"]["reopen_window_days"] = 5
    (directory / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    after = store.reload()
    assert allowed(after, CONSUMER, ["view", "comment", "reopen"], case=ten_days) == [True, False, False]
    comment = after.decide(actor=CONSUMER, action="comment", case=ten_days, now=NOW)
    assert comment.policy_ids == ("extra-one",)
    # The old set is unchanged for a request that read it before the reload.
    assert allowed(before, CONSUMER, ["view", "comment", "reopen"], case=ten_days) == [True, True, True]


def test_an_action_named_in_a_condition_keeps_its_groups(tmp_path: Path) -> None:
    """A request is given only the action entities it can reach (CedarAuthorizer._base_for):
    an action a reaching policy names in its condition is one of them, with its groups."""
    directory = copy_policy_dir(tmp_path)
    add_extra_rule(
        directory,
        'forbid (principal, action == Action::"comment", resource)\nwhen { Action::"export" in Action::"read" };\n',
    )
    custom = load_policy_dir(directory)
    assert allowed(load_policy_dir(), CONSUMER, ["comment"], case=assigned()) == [True]
    decision = custom.decide(actor=CONSUMER, action="comment", case=assigned(), now=NOW)
    assert not decision.allowed and decision.policy_ids == ("extra-one",)
    assert allowed(custom, CONSUMER, ["view", "comment"], case=assigned()) == [True, False]
