"""check_policies(): every workflow trigger and action reachable, no permit naming an unknown action."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.cedar import DEFAULT_POLICY_DIR
from policies.lint import check_policies
from policies.loader import PolicyLoadError
from policies.store import PolicyStore
from tests.support.policy_factories import copy_policy_dir
from workflow.definition import WorkflowDefinition, load_definition_file

WORKFLOW_FILE = Path(__file__).resolve().parents[2] / "workflow" / "definitions" / "consumer_dispute.yaml"
ARCHIVE = "  - trigger: archive\n    source: [closed]\n    dest: closed\n"
CASE_ACTION = "appliesTo { principal: User, resource: Case, context: Context };\n"


@pytest.fixture(scope="module")
def default_workflow() -> WorkflowDefinition:
    return load_definition_file(WORKFLOW_FILE)


def workflow_with_archive(tmp_path: Path) -> tuple[Path, int, WorkflowDefinition]:
    """The default workflow plus a trigger ``archive``; returns its file and the trigger's line."""
    text = WORKFLOW_FILE.read_text()
    marker = "\nactions:\n"
    text = text.replace(marker, "\n" + ARCHIVE + marker, 1)
    path = tmp_path / "archiving.yaml"
    path.write_text(text)
    line = text.split("\n").index("  - trigger: archive") + 1
    return path, line, load_definition_file(path)


def add_to_schema(directory: Path, declaration: str) -> None:
    schema = directory / "schema.cedarschema"
    schema.write_text(schema.read_text() + "\n" + declaration)


def test_the_default_set_covers_the_default_workflow(default_workflow: WorkflowDefinition) -> None:
    assert check_policies(DEFAULT_POLICY_DIR, [default_workflow]) == []


def test_a_trigger_no_permit_reaches_is_reported_at_its_line(tmp_path: Path) -> None:
    path, line, workflow = workflow_with_archive(tmp_path)
    directory = copy_policy_dir(tmp_path)
    add_to_schema(directory, "action archive " + CASE_ACTION)
    problems = check_policies(directory, [workflow])
    assert len(problems) == 1
    assert (problems[0].file, problems[0].line) == (str(path), line)
    assert "trigger 'archive' of workflow 'consumer_dispute' is unreachable: no permit" in problems[0].message


def test_a_trigger_missing_from_the_schema_is_reported(tmp_path: Path) -> None:
    path, line, workflow = workflow_with_archive(tmp_path)
    problems = check_policies(DEFAULT_POLICY_DIR, [workflow])
    assert [(p.file, p.line) for p in problems] == [(str(path), line)]
    assert "trigger 'archive' of workflow 'consumer_dispute' is not declared in" in problems[0].message


def test_an_action_whose_only_permit_is_removed_becomes_unreachable(
    tmp_path: Path, default_workflow: WorkflowDefinition
) -> None:
    directory = copy_policy_dir(tmp_path)
    actions = directory / "actions.cedar"
    text = actions.read_text()
    start = text.index('@id("party-rates-closed-case")')
    end = text.index("};", start) + 2
    actions.write_text(text[:start] + text[end:])
    problems = check_policies(directory, [default_workflow])
    rate_line = WORKFLOW_FILE.read_text().split("\n").index("  rate: {states: [closed]}") + 1
    assert [(p.file, p.line) for p in problems] == [(str(WORKFLOW_FILE), rate_line)]
    assert "action 'rate'" in problems[0].message and "unreachable" in problems[0].message


def test_a_permit_naming_an_unknown_action_is_reported(tmp_path: Path, default_workflow: WorkflowDefinition) -> None:
    directory = copy_policy_dir(tmp_path)
    add_to_schema(directory, "action teleport " + CASE_ACTION)
    (directory / "zz.cedar").write_text(
        "// a desk rule for an action no workflow has\n"
        '@id("teleporting")\n@reason("anyone may teleport")\n'
        'permit (principal, action in [Action::"view", Action::"teleport"], resource);\n'
    )
    problems = check_policies(directory, [default_workflow])
    assert [(p.file, p.line) for p in problems] == [(str(directory / "zz.cedar"), 2)]
    assert "permit 'teleporting' names action 'teleport', which no workflow defines" in problems[0].message


def test_groups_and_unconstrained_scopes_reach_actions(tmp_path: Path) -> None:
    path, _, workflow = workflow_with_archive(tmp_path)
    directory = copy_policy_dir(tmp_path)
    add_to_schema(directory, "action archiving;\naction archive in [archiving] " + CASE_ACTION)
    (directory / "zz.cedar").write_text(
        '@id("archivist")\n@reason("the system archives")\n'
        'permit (principal, action in Action::"archiving", resource) when { principal.role == "system" };\n'
    )
    assert check_policies(directory, [workflow]) == []
    (directory / "zz.cedar").write_text(
        '@id("anything")\n@reason("the system may do anything")\n'
        'permit (principal, action, resource) when { principal.role == "system" };\n'
    )
    assert check_policies(directory, [workflow]) == []


def test_check_policies_reports_load_problems_first(tmp_path: Path, default_workflow: WorkflowDefinition) -> None:
    directory = copy_policy_dir(tmp_path)
    (directory / "zz.cedar").write_text("permit (principal, action, resource) when { ( };\n")
    problems = check_policies(directory, [default_workflow])
    assert [(p.file, p.line) for p in problems] == [(str(directory / "zz.cedar"), 1)]


def test_a_store_with_workflows_refuses_a_set_that_fails_the_lint(
    tmp_path: Path, default_workflow: WorkflowDefinition
) -> None:
    directory = copy_policy_dir(tmp_path)
    store = PolicyStore.open(directory, workflows=[default_workflow])
    before = store.current
    actions = directory / "actions.cedar"
    actions.write_text(actions.read_text().replace('Action::"rate"', 'Action::"comment"'))
    with pytest.raises(PolicyLoadError) as caught:
        store.reload()
    assert any("action 'rate'" in p.message for p in caught.value.problems)
    assert store.current is before
