"""`disputes config check`: a whole desk validated together, one test per kind of broken
cross-reference, each problem named with its file and line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cli import app
from desk.loader import PARTS, InvalidDeskError, load_desk, try_load_desk, write_packaged_desk
from tests.support.desk_check import EXAMPLES, ROOT, check, line_of, runner


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, f"{old!r} not in {path}"
    path.write_text(content.replace(old, new, count), encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    """The packaged default desk written out as a directory (`disputes config init`)."""
    root = tmp_path / "desk"
    result = runner.invoke(app, ["config", "init", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize(
    "directory",
    [
        None,
        *(EXAMPLES / name for name in ("chargeback", "travel", "guarantee", "card_network")),
        *(EXAMPLES / name for name in ("paypal", "aliexpress", "wechat_shop")),
    ],
    ids=["default", "chargeback", "travel", "guarantee", "card_network", "paypal", "aliexpress", "wechat_shop"],
)
def test_shipped_desks_check_clean(directory: Path | None) -> None:
    result = runner.invoke(app, ["config", "check", *([str(directory)] if directory else [])], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert ": ok; new cases use workflow" in result.output


def test_the_packaged_desk_written_out_is_the_packaged_desk(desk: Path) -> None:
    written, packaged = load_desk(desk), load_desk()
    assert [w.version for w in written.workflows] == [w.version for w in packaged.workflows]
    assert written.policies.version == packaged.policies.version
    assert written.calendars == packaged.calendars
    assert written.default_workflow == "consumer_dispute" and written.scenario_dir == desk / "scenarios"
    assert {p.name for p in PARTS} <= set(written.sources)
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 2  # never overwrites


# --- one test per kind of broken cross-reference ----------------------------------------------

BrokenDesk = Callable[[Path], tuple[Path, str, str]]


def permit_names_unknown_action(root: Path) -> tuple[Path, str, str]:
    path = root / "policies" / "triggers.cedar"
    edit(path, 'action == Action::"reopen"', 'action == Action::"revive"')
    edit(
        root / "policies" / "schema.cedarschema",
        "decide_for_consumer, withdraw, reject, close, reopen",
        "decide_for_consumer, withdraw, reject, close, reopen, revive",
    )
    return path, '@id("consumer-reopens")', "permit 'consumer-reopens' names action 'revive', which no workflow defines"


def trigger_no_permit_reaches(root: Path) -> tuple[Path, str, str]:
    workflow = root / "workflows" / "consumer_dispute.yaml"
    edit(workflow, "  - trigger: close\n", "  - trigger: close\n    description: x\n")
    edit(root / "policies" / "triggers.cedar", 'action == Action::"close"', 'action == Action::"reopen"', count=-1)
    return workflow, "  - trigger: close", "trigger 'close' of workflow 'consumer_dispute' is unreachable: no permit"


def trigger_missing_from_schema(root: Path) -> tuple[Path, str, str]:
    workflow = root / "workflows" / "consumer_dispute.yaml"
    append(workflow, "")
    edit(
        workflow,
        "  - trigger: reopen\n",
        "  - trigger: archive\n    source: [closed]\n    dest: closed\n  - trigger: reopen\n",
    )
    return workflow, "  - trigger: archive", "trigger 'archive' of workflow 'consumer_dispute' is not declared in"


def forbid_names_action_no_workflow_has(root: Path) -> tuple[Path, str, str]:
    edit(
        root / "policies" / "schema.cedarschema",
        "decide_for_consumer, withdraw, reject, close, reopen",
        "decide_for_consumer, withdraw, reject, close, reopen, refund_now",
    )
    path = root / "policies" / "guards.cedar"
    append(
        path,
        '\n@id("no-instant-refunds")\n@reason("no instant refunds")\n'
        'forbid (principal, action == Action::"refund_now", resource is Case);\n',
    )
    return path, '@id("no-instant-refunds")', "forbid 'no-instant-refunds' names action 'refund_now', which no workflow"


def policy_names_unknown_state(root: Path) -> tuple[Path, str, str]:
    path = root / "policies" / "triggers.cedar"
    edit(
        path,
        'principal.role == "senior_mediator" && resource.state == "escalated"',
        'principal.role == "senior_mediator" && resource.state == "escalatd"',
    )
    message = "policy 'senior-rejects-escalated-case' names state 'escalatd', which no workflow of the desk has"
    return path, '@id("senior-rejects-escalated-case")', message


def policy_names_unknown_timer(root: Path) -> tuple[Path, str, str]:
    workflow = root / "workflows" / "consumer_dispute.yaml"
    for old, new in (
        ("timers: [merchant_response]", "timers: [merchant_reply]"),
        ("  merchant_response:\n", "  merchant_reply:\n"),
    ):
        edit(workflow, old, new)
    path = root / "policies" / "guards.cedar"
    return (
        path,
        '@id("mediation-waits-for-merchant")',
        ("policy 'mediation-waits-for-merchant' names timer 'merchant_response', which no workflow"),
    )


def timer_names_missing_calendar(root: Path) -> tuple[Path, str, str]:
    workflow = root / "workflows" / "consumer_dispute.yaml"
    edit(
        workflow,
        "    goal: 7 business days\n    calendar: default",
        "    goal: 7 business days\n    calendar: festival",
    )
    return workflow, "calendar: festival", "timer 'resolution' uses calendar 'festival', which calendars.yaml does not"


def default_workflow_unknown(root: Path) -> tuple[Path, str, str]:
    path = root / "desk.yaml"
    edit(path, "default_workflow: consumer_dispute", "default_workflow: consumer_disputes")
    return path, "default_workflow:", "default_workflow 'consumer_disputes' is not a workflow of this desk"


def unknown_settings_key(root: Path) -> tuple[Path, str, str]:
    path = root / "desk.yaml"
    append(path, "timezone: Asia/Shanghai\n")
    return path, "timezone:", "unknown key 'timezone' in desk.yaml"


def two_workflows_one_name(root: Path) -> tuple[Path, str, str]:
    copy = root / "workflows" / "zz_copy.yaml"
    copy.write_text((root / "workflows" / "consumer_dispute.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return copy, "name: consumer_dispute", "workflow name 'consumer_dispute' is also used by"


def breach_trigger_not_valid(root: Path) -> tuple[Path, str, str]:
    workflow = root / "workflows" / "consumer_dispute.yaml"
    edit(workflow, "on_breach: {trigger: decide_for_consumer}", "on_breach: {trigger: rule}")
    message = "timer 'merchant_response': breach trigger 'rule' is not valid from state 'assigned'"
    return workflow, "on_breach: {trigger: rule}", message


def scenario_names_unknown_trigger(root: Path) -> tuple[Path, str, str]:
    path = root / "scenarios" / "01_filing_and_assignment.yaml"
    edit(path, "        do: reject\n        reason: Not a", "        do: rejekt\n        reason: Not a")
    return path, "do: rejekt", "'rejekt' is neither a trigger nor an action of workflow 'consumer_dispute'"


@pytest.mark.parametrize(
    "breakage",
    [
        permit_names_unknown_action,
        trigger_no_permit_reaches,
        trigger_missing_from_schema,
        forbid_names_action_no_workflow_has,
        policy_names_unknown_state,
        policy_names_unknown_timer,
        timer_names_missing_calendar,
        default_workflow_unknown,
        unknown_settings_key,
        two_workflows_one_name,
        breach_trigger_not_valid,
        scenario_names_unknown_trigger,
    ],
)
def test_each_broken_cross_reference_is_named_with_file_and_line(desk: Path, breakage: BrokenDesk) -> None:
    path, marker, message = breakage(desk)
    code, output = check(desk)
    assert code == 1
    assert f"{path}:{line_of(path, marker)}: error: {message}" in output


def test_every_problem_is_reported_not_only_the_first(desk: Path) -> None:
    timer_names_missing_calendar(desk)
    policy_names_unknown_state(desk)
    default_workflow_unknown(desk)
    desk_, problems = try_load_desk(desk)
    assert desk_ is None
    messages = " | ".join(p.message for p in problems)
    assert "festival" in messages and "escalatd" in messages and "consumer_disputes" in messages
    with pytest.raises(InvalidDeskError):
        load_desk(desk)


def test_a_schema_declaring_a_fact_the_engine_lacks_is_named(desk: Path) -> None:
    schema = desk / "policies" / "schema.cedarschema"
    edit(schema, "  reopen_count: Long,\n", "  reopen_count: Long,\n  booking_date?: Long,\n")
    code, output = check(desk)
    assert code == 1
    assert (
        f"{schema}:{line_of(schema, 'booking_date?')}: error: entity Case declares 'booking_date', "
        "which the engine does not provide"
    ) in output


def test_a_part_missing_from_a_desk_comes_from_the_packaged_desk(tmp_path: Path) -> None:
    root = tmp_path / "only-calendars"
    root.mkdir()
    (root / "calendars.yaml").write_text(
        (ROOT / "sla" / "calendars.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    loaded = load_desk(root)
    assert loaded.sources["calendars"] == root / "calendars.yaml"
    assert loaded.sources["workflows"] == ROOT / "workflow" / "definitions"
    assert loaded.sources["settings"] is None and loaded.scenario_dir is None
    assert loaded.default_workflow == "consumer_dispute"


def test_a_desk_with_several_workflows_names_its_default(desk: Path) -> None:
    (desk / "desk.yaml").unlink()
    other = (desk / "workflows" / "consumer_dispute.yaml").read_text(encoding="utf-8")
    (desk / "workflows" / "consumer_dispute.yaml").rename(desk / "workflows" / "b.yaml")
    (desk / "workflows" / "a.yaml").write_text(other.replace("name: consumer_dispute", "name: quick"), encoding="utf-8")
    (desk / "workflows" / "b.yaml").write_text(other.replace("name: consumer_dispute", "name: slow"), encoding="utf-8")
    code, output = check(desk)
    assert code == 1 and "name the workflow new cases use with default_workflow (workflows: quick, slow)" in output
    (desk / "desk.yaml").write_text("name: two\ndefault_workflow: slow\n", encoding="utf-8")
    code, output = check(desk)
    assert code == 0, output
    assert load_desk(desk).workflow().name == "slow"


def test_written_desk_round_trips_through_the_writer(tmp_path: Path) -> None:
    written = write_packaged_desk(tmp_path / "again")
    assert {p.name for p in written} == {
        "desk.yaml",
        "workflows",
        "policies",
        "calendars.yaml",
        "scenarios",
        "classification.yaml",
        "priority.yaml",
        "supervision.yaml",  # under intake/
        "review.yaml",  # under intake/
        "notifications.yaml",
        "triage",
        "rulebook.yaml",
    }


def test_a_broken_intake_file_is_named_and_a_desk_may_override_one(desk: Path) -> None:
    """The intake rules are desk parts: config check names a broken one with file and line;
    a desk's own file replaces the packaged one."""
    path = desk / "intake" / "classification.yaml"
    edit(path, "  min_score: 2", "  min_score: two")
    result = runner.invoke(app, ["config", "check", str(desk)], terminal_width=240)
    assert result.exit_code == 1
    assert f"{path}:" in result.output and "min_score" in result.output
    edit(path, "  min_score: two", "  min_score: 99")
    loaded = load_desk(desk)
    assert loaded.sources["classification"] == path
    assert loaded.parts["classification"].min_score == 99


@pytest.mark.parametrize("written", ["three", "-1", "101", "2.5", "true", "'3'", ""])
def test_a_bad_retention_period_is_refused_with_file_and_line(desk: Path, written: str) -> None:
    """desk.yaml's retention_years (how long a closed case's personal data is kept) is a whole
    number of years from 0 to 100; anything else is named at its line, and nothing is served."""
    path = desk / "desk.yaml"
    edit(path, "retention_years: 3", f"retention_years: {written}")
    code, output = check(desk)
    assert code == 1
    line = line_of(path, "retention_years:")
    assert f"{path}:{line}: error: retention_years must be a whole number of years from 0 to 100, got" in output


def test_the_retention_period_is_the_desks_and_three_years_by_default(desk: Path) -> None:
    assert load_desk(None).manifest.retention_years == 3
    edit(desk / "desk.yaml", "retention_years: 3", "retention_years: 7")
    code, output = check(desk)
    assert code == 0, output
    manifest = load_desk(desk).manifest
    assert manifest.retention_years == 7
    assert manifest.retention == timedelta(days=2557)  # seven years of 365.25 days
    (desk / "desk.yaml").write_text("name: plain\n", encoding="utf-8")
    assert load_desk(desk).manifest.retention == timedelta(days=1096)
