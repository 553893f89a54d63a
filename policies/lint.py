"""check_policies(): syntax and schema validation plus a lint of a policy set against workflows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from policies import facts
from policies.loader import LoadedPolicies, try_load
from workflow.definition import READ_ACTIONS, WorkflowDefinition
from workflow.errors import Problem
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

# Actions that exist whatever the workflow: reads, filing and the desk's administration.
ALWAYS_KNOWN = frozenset({*READ_ACTIONS, "view_internal", "file"})
ADMIN_ACTIONS = frozenset(
    {"view_config", "manage_config", "manage_mediators", "audit", "erase_personal", "disclose_personal"}
)
# Third-party review (policies/default/review.cedar): on any workflow's cases, whatever its states.
REVIEW_ACTIONS = frozenset({"view_for_review", "review", "flag_for_review", "second_look", "resolve_review_flag"})


def check_policies(policy_dir: str | Path, workflows: Sequence[WorkflowDefinition]) -> list[Problem]:
    """Every problem of ``policy_dir``: syntax, schema validation, annotations, settings;
    then, if it loads, the lint of :func:`lint` against ``workflows``. Empty means fine."""
    loaded, problems = try_load(policy_dir)
    if loaded is None:
        return problems
    return lint(loaded, workflows)


def lint(loaded: LoadedPolicies, workflows: Sequence[WorkflowDefinition]) -> list[Problem]:
    """Each workflow trigger and action is reachable by a permit; each permit names known actions.

    Reachable means: some permit's action scope covers the name (directly, through
    an action group of the schema, or by leaving the action unconstrained). Whether
    its conditions can ever hold is not decided here.
    """
    problems: list[Problem] = []
    info = loaded.schema_info
    case_actions = info.applies_to(facts.CASE)
    groups = info.groups
    known = set(ALWAYS_KNOWN | ADMIN_ACTIONS | REVIEW_ACTIONS | info.applies_to(facts.DESK))
    for workflow in workflows:
        known.update(workflow.trigger_names, workflow.action_names)
    names = ", ".join(w.name for w in workflows) or "none"

    reached: set[str] = set()
    for policy in loaded.policies:
        if policy.effect != "permit":
            continue
        if policy.actions is None:
            reached |= case_actions
            continue
        for action in sorted(policy.actions):
            reached |= info.descendants(action)
            if action not in known and action not in groups:
                problems.append(
                    Problem(
                        policy.file,
                        policy.line,
                        f"permit {policy.id!r} names action {action!r}, which no workflow defines "
                        f"(workflows: {names}) and which is not a read or desk action",
                    )
                )

    schema_file = loaded.schema_file
    for workflow in workflows:
        locate = _WorkflowLines(workflow)
        entries = [("trigger", t) for t in workflow.trigger_names] + [("action", a) for a in workflow.action_names]
        for kind, name in entries:
            file, line = locate.where(kind, name)
            if name not in case_actions:
                problems.append(
                    Problem(
                        file,
                        line,
                        f"{kind} {name!r} of workflow {workflow.name!r} is not declared in {schema_file}; "
                        f"add it to an `action ... appliesTo {{ principal: User, resource: Case, "
                        f"context: Context }}` line",
                    )
                )
            elif name not in reached:
                problems.append(
                    Problem(
                        file,
                        line,
                        f"{kind} {name!r} of workflow {workflow.name!r} is unreachable: no permit in "
                        f"{loaded.directory} allows it, so nobody can ever "
                        + ("fire it" if kind == "trigger" else "do it"),
                    )
                )
    return problems


class _WorkflowLines:
    """Lines of a workflow's triggers and actions in its source file, when it has one."""

    def __init__(self, workflow: WorkflowDefinition) -> None:
        self.workflow = workflow
        self.file = workflow.source or f"<workflow {workflow.name}>"
        self.located: LocatedYaml | None = None
        path = Path(workflow.source) if workflow.source else None
        if path is not None and path.is_file():
            try:
                self.located = load_located(path.read_text(encoding="utf-8"), self.file)
            except (OSError, UnicodeDecodeError, YamlError):
                self.located = None

    def where(self, kind: str, name: str) -> tuple[str, int]:
        located = self.located
        if located is None or not isinstance(located.data, dict):
            return self.file, 1
        if kind == "action":
            return self.file, located.line(("actions", name))
        transitions = located.data.get("transitions")
        if isinstance(transitions, list):
            for index, item in enumerate(transitions):
                if isinstance(item, dict) and item.get("trigger") == name:
                    return self.file, located.line(("transitions", index, "trigger"))
        return self.file, 1
