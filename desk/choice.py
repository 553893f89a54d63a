"""Choosing a new case's workflow by rules on its facts (``desk.yaml`` ``workflow_rules``).

A desk with several workflows lists rules, tried in order; the first whose conditions all hold
for the filing's facts names the workflow, and a filing no rule matches uses
``default_workflow``::

    workflow_rules:
      - when: {network: amex}                    # a fact equal to a value
        workflow: amex_inquiry
      - when: {reason_code: ["10.4", "4837"]}    # or one of several values
        workflow: fraud_dispute

A filer may also name a workflow itself; the policies decide whether it may (``file`` sees
``resource.workflow``). Pure: no database, no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RULE_KEYS = frozenset({"when", "workflow"})


@dataclass(frozen=True, slots=True)
class WorkflowRule:
    """``workflow`` for filings whose facts match every condition of ``when`` (fact -> values)."""

    when: tuple[tuple[str, tuple[str, ...]], ...]
    workflow: str
    line: int = 1

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(isinstance(facts.get(name), str) and facts[name] in values for name, values in self.when)


def choose_workflow(rules: tuple[WorkflowRule, ...], facts: Mapping[str, Any]) -> str | None:
    """The workflow the first matching rule names; None when no rule matches."""
    return next((rule.workflow for rule in rules if rule.matches(facts)), None)


def parse_rules(
    raw: Any, problem: Callable[[tuple[str | int, ...], str], None], line: Callable[[tuple[str | int, ...]], int]
) -> tuple[WorkflowRule, ...]:
    """``workflow_rules`` as written in desk.yaml; each mistake reported through ``problem``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        problem(("workflow_rules",), "workflow_rules must be a non-empty list of {when: {fact: value}, workflow: name}")
        return ()
    rules: list[WorkflowRule] = []
    for index, item in enumerate(raw):
        path: tuple[str | int, ...] = ("workflow_rules", index)
        if not isinstance(item, dict):
            problem(path, "each workflow rule must be a mapping {when: {fact: value}, workflow: name}")
            continue
        for key in item:
            if key not in RULE_KEYS:
                problem((*path, key), f"unknown key {key!r} in a workflow rule (allowed: when, workflow)")
        workflow = item.get("workflow")
        if not isinstance(workflow, str) or not workflow:
            problem(
                (*path, "workflow") if "workflow" in item else path, "a workflow rule needs 'workflow': a workflow name"
            )
            continue
        when = item.get("when")
        if not isinstance(when, dict) or not when:
            problem(
                (*path, "when") if "when" in item else path, "a workflow rule needs 'when': {fact: value or [values]}"
            )
            continue
        conditions: list[tuple[str, tuple[str, ...]]] = []
        for name, value in when.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) and v for v in values):
                problem((*path, "when", name), f"workflow rule: {name!r} must be compared with text or a list of texts")
                continue
            conditions.append((name, tuple(values)))
        rules.append(WorkflowRule(when=tuple(conditions), workflow=workflow, line=line(path)))
    return tuple(rules)
