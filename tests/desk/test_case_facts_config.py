"""`disputes config check` on the new constructs of a desk: case facts, the desk's zone and
calendar-day goals. One test per kind of mistake, each named with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.desk_check import check, line_of

GUARANTEE = Path(__file__).resolve().parents[2] / "examples" / "guarantee"


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    root = tmp_path / "guarantee"
    shutil.copytree(GUARANTEE, root)
    return root


def workflow(desk: Path) -> Path:
    return desk / "workflows" / "guarantee_claim.yaml"


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, f"{old!r} not in {path}"
    path.write_text(content.replace(old, new, 1), encoding="utf-8")


def test_the_example_checks_clean(desk: Path) -> None:
    code, output = check(desk)
    assert code == 0, output


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        ("    type: date\n", "    type: datetime\n", "type: datetime", "fact 'delivered_on': unknown type 'datetime'"),
        (
            "    values: [seller, marketplace]\n",
            "    values: []\n",
            "values: []",
            "fact 'fulfilment': an enum needs 'values'",
        ),
        (
            "    values: [seller, marketplace]\n",
            "    values: [seller, seller]\n",
            "values: [seller, seller]",
            "fact 'fulfilment': enum values repeat",
        ),
        (
            "    type: money\n",
            "    type: money\n    values: [USD]\n",
            "values: [USD]",
            "fact 'order_total': 'values' is only for type enum (this one is money)",
        ),
        ("  delivered_on:\n", "  Delivered-On:\n", "Delivered-On:", "fact name 'Delivered-On' must be lower-case"),
        (
            "    required: true\n",
            "    required: yes please\n",
            "required: yes please",
            "fact 'delivered_on': 'required' must be true or false",
        ),
        (
            "    title: Who shipped the order\n",
            "    title: Who shipped the order\n    default: seller\n",
            "default: seller",
            "unknown key 'default' in fact 'fulfilment'",
        ),
        (
            "  delivered_on:\n    type: date",
            "  delivered_on: date\n  other:\n    type: date",
            "delivered_on: date",
            "fact 'delivered_on' must be a mapping",
        ),
    ],
    ids=[
        "unknown-type",
        "enum-without-values",
        "enum-repeats",
        "values-on-non-enum",
        "bad-name",
        "required-not-bool",
        "unknown-key",
        "not-a-mapping",
    ],
)
def test_each_mistake_in_a_fact_declaration_is_named(desk: Path, old: str, new: str, marker: str, message: str) -> None:
    edit(workflow(desk), old, new)
    code, output = check(desk)
    assert code == 1
    assert f"{workflow(desk)}:{line_of(workflow(desk), marker)}: error: {message}" in output
    assert output.count("error:") == 1  # the policies are not checked again without the facts


def test_facts_must_be_a_mapping(desk: Path) -> None:
    edit(workflow(desk), "facts:\n  delivered_on:", "facts: [delivered_on]\nunused:\n  delivered_on:")
    code, output = check(desk)
    assert code == 1
    assert f"{workflow(desk)}:{line_of(workflow(desk), 'facts: [')}: error: 'facts' must be a mapping" in output


def test_one_type_per_fact_across_the_desks_workflows(desk: Path) -> None:
    second = desk / "workflows" / "second.yaml"
    text = workflow(desk).read_text(encoding="utf-8").replace("name: guarantee_claim", "name: second_claim", 1)
    second.write_text(
        text.replace("  order_total:\n    type: money", "  order_total:\n    type: integer", 1), encoding="utf-8"
    )
    code, output = check(desk)
    assert code == 1
    assert (
        f"{second}:{line_of(second, 'type: integer')}: error: fact 'order_total' is a integer here but a money "
        "in workflow 'guarantee_claim'"
    ) in output


def test_a_policy_reading_an_undeclared_fact_is_named(desk: Path) -> None:
    guards = desk / "policies" / "guards.cedar"
    edit(guards, 'resource.facts.fulfilment == "marketplace"', 'resource.facts.shipper == "marketplace"')
    code, output = check(desk)
    assert code == 1
    assert f"{guards}:" in output and "seller-shipped-waits-for-seller" in output
    assert "shipper" in output


def test_a_policy_comparing_a_fact_with_the_wrong_type_is_named(desk: Path) -> None:
    guards = desk / "policies" / "guards.cedar"
    edit(guards, 'resource.facts.fulfilment == "marketplace"', "resource.facts.fulfilment > 3")
    code, output = check(desk)
    assert code == 1
    assert f"{guards}:" in output and "seller-shipped-waits-for-seller" in output


def test_the_desk_zone_must_be_an_iana_zone(desk: Path) -> None:
    edit(desk / "desk.yaml", "zone: America/Los_Angeles", "zone: Pacific Time")
    code, output = check(desk)
    assert code == 1
    line = line_of(desk / "desk.yaml", "zone: Pacific")
    assert f"{desk / 'desk.yaml'}:{line}: error: zone 'Pacific Time' is not an IANA time zone" in output


def test_calendar_time_is_counted_in_days(desk: Path) -> None:
    edit(workflow(desk), "goal: 3 calendar days", "goal: 72 calendar hours")
    code, output = check(desk)
    assert code == 1
    line = line_of(workflow(desk), "goal: 72 calendar hours")
    assert (
        f"{workflow(desk)}:{line}: error: timer 'seller_response': cannot parse duration '72 calendar hours'" in output
    )


def test_a_calendar_day_clock_names_a_calendar_that_exists(desk: Path) -> None:
    edit(workflow(desk), "    calendar: seattle\n    stop_on", "    calendar: redmond\n    stop_on")
    code, output = check(desk)
    assert code == 1
    line = line_of(workflow(desk), "calendar: redmond")
    assert f"{workflow(desk)}:{line}: error: timer 'seller_response' uses calendar 'redmond'" in output


def test_a_scenario_with_an_undeclared_fact_is_named(desk: Path) -> None:
    scenarios = desk / "scenarios" / "01_filing_rules.yaml"
    edit(
        scenarios,
        "        fulfilment: seller\n    steps:",
        "        fulfilment: seller\n        colour: red\n    steps:",
    )
    code, output = check(desk)
    assert code == 1
    assert f"{scenarios}:" in output and "unknown fact 'colour'" in output


# --- clocks from commands and facts, ordered breaches, actions that fire a trigger ----------

CARD_NETWORK = GUARANTEE.parent / "card_network"


@pytest.fixture
def card_desk(tmp_path: Path) -> Path:
    root = tmp_path / "card_network"
    shutil.copytree(CARD_NETWORK, root)
    return root


def card_workflow(desk: Path) -> Path:
    return desk / "workflows" / "card_dispute.yaml"


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "    start_on: [request_info]",
            "    start_on: [ask_again]",
            "start_on: [ask_again]",
            "timer 'cardholder_answer': start_on names 'ask_again', which is neither a trigger nor an action",
        ),
        (
            "    timers: [review]\n",
            "    timers: [review, cardholder_answer]\n",
            "start_on: [request_info]",
            "timer 'cardholder_answer' starts on a command (start_on), so no state may list it in its timers",
        ),
        (
            "    on_breach: {flag: cardholder_silent}",
            "    on_breach: {trigger: rule}",
            "on_breach: {trigger: rule}",
            "timer 'cardholder_answer': breach trigger 'rule' is not a trigger of the workflow",
        ),
        (
            "    due_from: respond_by",
            "    due_from: respond_on",
            "due_from: respond_on",
            "timer 'response': due_from names 'respond_on', which is not a declared fact",
        ),
        (
            "    start_from: transaction_at",
            "    start_from: reason_code",
            "start_from: reason_code",
            "timer 'filing_window': start_from names fact 'reason_code', a string; a clock needs an instant or date",
        ),
        (
            "    on_breach: {triggers: [to_review, lose]}",
            "    on_breach: {triggers: [to_review, win]}",
            "on_breach: {triggers: [to_review, win]}",
            "timer 'response': breach trigger 'win' is not valid from state 'awaiting_response'",
        ),
        (
            "    on_breach: {triggers: [to_review, lose]}",
            "    on_breach: {triggers: []}",
            "on_breach: {triggers: []}",
            "timer 'response': on_breach triggers must be a non-empty list of trigger names",
        ),
        (
            "    on_breach: {triggers: [to_review, lose]}",
            "    on_breach: {triggers: [lose, lose]}",
            "on_breach: {triggers: [lose, lose]}",
            "timer 'response': on_breach triggers repeat",
        ),
        (
            "    on_breach: {triggers: [to_review, lose]}",
            "    on_breach: {triggers: [to_review], flag: late}",
            "flag: late}",
            "timer 'response': on_breach needs exactly one of trigger, triggers (tried in order) or flag",
        ),
        (
            "then: to_review}",
            "then: submit}",
            "then: submit}",
            "action 'submit_evidence': then names 'submit', which is not a trigger",
        ),
        (
            "  submit_evidence: {states: [awaiting_response, review], then: to_review}",
            "  submit_evidence: {states: [review], then: to_review}",
            "then: to_review}",
            "action 'submit_evidence': trigger 'to_review' is possible from none of the action's states",
        ),
    ],
    ids=[
        "start-on-unknown",
        "action-clock-in-a-state",
        "action-clock-breach-unknown",
        "due-from-undeclared",
        "start-from-not-a-time",
        "ordered-trigger-invalid-from-state",
        "ordered-triggers-empty",
        "ordered-triggers-repeat",
        "ordered-and-flag",
        "then-not-a-trigger",
        "then-impossible",
    ],
)
def test_each_mistake_in_a_clock_or_breach_is_named(
    card_desk: Path, old: str, new: str, marker: str, message: str
) -> None:
    path = card_workflow(card_desk)
    edit(path, old, new)
    code, output = check(card_desk)
    assert code == 1
    assert f"{path}:{line_of(path, marker)}: error: {message}" in output


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "    workflow: amex_inquiry",
            "    workflow: amex_dispute",
            "  - when: {network: amex}",
            "workflow rule names 'amex_dispute', not a workflow of the desk",
        ),
        (
            "  - when: {network: amex}",
            "  - when: {issuer: amex}",
            "  - when: {issuer: amex}",
            "workflow rule: workflow 'amex_inquiry' does not declare fact 'issuer'",
        ),
        (
            "  - when: {network: amex}",
            "  - when: {network: discover}",
            "  - when: {network: discover}",
            "workflow rule: 'discover' is not a value of fact 'network' (visa, mastercard, amex)",
        ),
        (
            "  - when: {network: amex}",
            "  - when: {transaction_at: amex}",
            "  - when: {transaction_at: amex}",
            "workflow rule: workflow 'amex_inquiry' declares as a instant, not text, fact 'transaction_at'",
        ),
        (
            "  - when: {network: amex}",
            "  - when: {network: 3}",
            "  - when: {network: 3}",
            "workflow rule: 'network' must be compared with text or a list of texts",
        ),
        (
            "    workflow: amex_inquiry",
            "    workflow: amex_inquiry\n    otherwise: card_dispute",
            "otherwise: card_dispute",
            "unknown key 'otherwise' in a workflow rule (allowed: when, workflow)",
        ),
        (
            "  - when: {network: amex}\n    workflow: amex_inquiry",
            "  - workflow: amex_inquiry",
            "  - workflow: amex_inquiry",
            "a workflow rule needs 'when': {fact: value or [values]}",
        ),
    ],
    ids=[
        "unknown-workflow",
        "undeclared-fact",
        "not-an-enum-value",
        "not-text",
        "not-text-value",
        "unknown-key",
        "no-when",
    ],
)
def test_each_mistake_in_a_workflow_rule_is_named(
    card_desk: Path, old: str, new: str, marker: str, message: str
) -> None:
    path = card_desk / "desk.yaml"
    edit(path, old, new)
    code, output = check(card_desk)
    assert code == 1
    assert f"{path}:{line_of(path, marker)}: error: {message}" in output


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "      consumer: Waiting for the seller (3 days)",
            "      buyer: Waiting for the seller (3 days)",
            "buyer: Waiting",
            "state 'seller_response': 'buyer' is not a party a label speaks to (auditor, consumer, mediator, merchant)",
        ),
        (
            "      consumer: Waiting for the seller (3 days)",
            "      consumer: 3",
            "consumer: 3",
            "state 'seller_response': the consumer's label must be text",
        ),
        (
            "    labels:\n      consumer: Waiting for the seller (3 days)\n"
            "      merchant: Your response is required within 3 days",
            "    labels: Waiting",
            "labels: Waiting",
            "state 'seller_response': labels must map parties to text",
        ),
    ],
    ids=["unknown-party", "not-text", "not-a-mapping"],
)
def test_each_mistake_in_a_state_label_is_named(desk: Path, old: str, new: str, marker: str, message: str) -> None:
    edit(workflow(desk), old, new)
    code, output = check(desk)
    assert code == 1
    assert f"{workflow(desk)}:{line_of(workflow(desk), marker)}: error: {message}" in output


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "    relation: same_order\n",
            "    relation: same_address\n",
            "relation: same_address",
            "related count 'claims_same_order': relation must be one of same_order, same_consumer, same_merchant",
        ),
        (
            "    window: 90d\n",
            "    window: 60 business days\n",
            "window: 60 business days",
            "related count 'claims_against_seller_90d': a window is wall-clock time",
        ),
        (
            "    window: 90d\n",
            "    window: three months\n",
            "window: three months",
            "related count 'claims_against_seller_90d': cannot parse duration 'three months'",
        ),
        (
            "  claims_same_order:\n",
            "  ClaimsSameOrder:\n",
            "ClaimsSameOrder:",
            "related count name 'ClaimsSameOrder' must be lower-case letters, digits and _",
        ),
        (
            "    window: 90d\n",
            "    window: 90d\n    states: [granted]\n",
            "states: [granted]",
            "unknown key 'states' in related count 'claims_against_seller_90d'",
        ),
    ],
    ids=["unknown-relation", "business-window", "bad-window", "bad-name", "unknown-key"],
)
def test_each_mistake_in_a_related_count_is_named(desk: Path, old: str, new: str, marker: str, message: str) -> None:
    edit(workflow(desk), old, new)
    code, output = check(desk)
    assert code == 1
    assert f"{workflow(desk)}:{line_of(workflow(desk), marker)}: error: {message}" in output


def test_a_policy_reading_an_undeclared_count_is_named(desk: Path) -> None:
    guards = desk / "policies" / "guards.cedar"
    edit(guards, "resource.related.claims_same_order > 0", "resource.related.claims_same_item > 0")
    code, output = check(desk)
    assert code == 1
    assert f"{guards}:" in output and "one-claim-per-order" in output
