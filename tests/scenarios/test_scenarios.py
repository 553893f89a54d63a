"""Scenario files: every shipped desk's scenarios pass (so `make test` runs them), the default
desk's cover its whole rule table, a deliberately broken rule fails the matching scenario with
a readable difference, and mistakes in a scenario file are named with file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from desk.loader import Desk, load_desk, write_packaged_desk
from scenarios.files import Scenario, ScenarioFileError, load_scenarios
from scenarios.runner import ScenarioResult, run_scenarios

ROOT = Path(__file__).resolve().parents[2]
DESKS = {
    "default": None,
    "chargeback": ROOT / "examples" / "chargeback",
    "travel": ROOT / "examples" / "travel",
    "guarantee": ROOT / "examples" / "guarantee",
    "card_network": ROOT / "examples" / "card_network",
    "paypal": ROOT / "examples" / "paypal",
    "aliexpress": ROOT / "examples" / "aliexpress",
    "wechat_shop": ROOT / "examples" / "wechat_shop",
}
runner = CliRunner()


def run_desk(desk: Desk) -> list[ScenarioResult]:
    assert desk.scenario_dir is not None
    return run_scenarios(load_scenarios([desk.scenario_dir]), desk)


@pytest.mark.parametrize("name", sorted(DESKS))
def test_every_shipped_scenario_passes(name: str) -> None:
    desk = load_desk(DESKS[name])
    results = run_desk(desk)
    failures = [f"{r.scenario.where} {r.scenario.name}: {r.difference}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert len(results) >= 10


def test_the_default_desks_scenarios_cover_its_whole_rule_table() -> None:
    """Every trigger and action is done allowed and refused at least once (a trigger a clock
    fires counts as allowed when a scenario expects that clock's breach), and every timer's
    breach is expected somewhere."""
    desk = load_desk()
    assert desk.scenario_dir is not None
    scenarios = load_scenarios([desk.scenario_dir])
    workflow = desk.workflow()
    allowed: set[str] = set()
    refused: set[str] = set()
    breached: set[str] = set()
    for scenario in scenarios:
        for step in scenario.steps:
            if step.command is not None:
                (allowed if step.expect.allowed else refused).add(step.command)
            breached |= {name for name, t in step.expect.timers.items() if t.status == "breached"}
    for timer in workflow.timers:
        if timer.name in breached and timer.on_breach.trigger:
            allowed.add(timer.on_breach.trigger)
    names = {*workflow.trigger_names, *workflow.action_names}
    assert names - allowed == set(), "never allowed in a scenario"
    assert names - refused == set(), "never refused in a scenario"
    assert refused, "no scenario shows a refusal"
    assert {t.name for t in workflow.timers} - breached == set(), "no scenario expects these clocks to breach"


@pytest.mark.parametrize("name", ["paypal", "aliexpress", "wechat_shop"])
def test_the_marketplace_desks_scenarios_fire_every_trigger_and_breach_every_deciding_clock(name: str) -> None:
    """The desks that state a marketplace's rules (issue #23): every trigger happens in some
    scenario (by a step, or by a clock whose breach a scenario expects), every clock whose
    breach decides something is expected to breach, and every trigger a party may fire is
    also refused somewhere (the rule that stops it, shown)."""
    desk = load_desk(DESKS[name])
    assert desk.scenario_dir is not None
    workflow = desk.workflow()
    allowed: set[str] = set()
    refused: set[str] = set()
    breached: set[str] = set()
    for scenario in load_scenarios([desk.scenario_dir]):
        for step in scenario.steps:
            if step.command is not None:
                (allowed if step.expect.allowed else refused).add(step.command)
            breached |= {timer for timer, t in step.expect.timers.items() if t.status == "breached"}
    # A trigger an action fires in the same command (`then`) happens when the action does.
    allowed |= {action.then for action in workflow.actions if action.then and action.name in allowed}
    fired_by_clocks = set()
    for timer in workflow.timers:
        if timer.on_breach.trigger:
            fired_by_clocks.add(timer.on_breach.trigger)
            assert timer.name in breached, f"no scenario expects {timer.name!r} to breach"
            allowed.add(timer.on_breach.trigger)
    assert set(workflow.trigger_names) - allowed == set(), "never fired in a scenario"
    assert set(workflow.trigger_names) - fired_by_clocks - refused == set(), "never refused in a scenario"
    assert refused, "no scenario shows a refusal"


@pytest.fixture(scope="module")
def scenarios_of_default() -> list[Scenario]:
    desk = load_desk()
    assert desk.scenario_dir is not None
    return load_scenarios([desk.scenario_dir])


def result_named(results: list[ScenarioResult], name: str) -> ScenarioResult:
    return next(r for r in results if r.scenario.name == name)


def test_a_longer_response_window_fails_the_scenarios_that_pin_it(
    tmp_path: Path, scenarios_of_default: list[Scenario]
) -> None:
    root = tmp_path / "desk"
    write_packaged_desk(root)
    workflow = root / "workflows" / "consumer_dispute.yaml"
    workflow.write_text(
        workflow.read_text(encoding="utf-8").replace("    goal: 48h\n", "    goal: 72h\n"), encoding="utf-8"
    )
    results = run_scenarios(scenarios_of_default, load_desk(root))
    failed = {r.scenario.name: r.difference for r in results if not r.passed}
    assert set(failed) == {
        "A mediator assigns a filed case to themselves; the merchant's response clock starts",
        "The merchant stays silent; warned at 36 hours, decided for the consumer at 48",
        "The response clock pauses while the consumer owes information",
    }
    assert failed["A mediator assigns a filed case to themselves; the merchant's response clock starts"] == (
        "step 2 (line 10, after 30m, mediator does assign): expected timer merchant_response due "
        "2026-03-04T10:30:00+08:00, got 2026-03-05T10:30:00+08:00"
    )
    assert failed["The merchant stays silent; warned at 36 hours, decided for the consumer at 48"].endswith(
        "expected timer merchant_response warned=True, got False"
    )


def test_a_dropped_guard_fails_the_scenario_that_relies_on_it(
    tmp_path: Path, scenarios_of_default: list[Scenario]
) -> None:
    root = tmp_path / "desk"
    write_packaged_desk(root)
    guards = root / "policies" / "guards.cedar"
    text = guards.read_text(encoding="utf-8")
    start = text.index('@id("mediation-waits-for-merchant")')
    end = text.index("};", start) + 2
    guards.write_text(text[:start] + text[end:], encoding="utf-8")
    result = result_named(
        run_scenarios(scenarios_of_default, load_desk(root)), "Mediation waits for the merchant's response"
    )
    assert not result.passed and result.steps_passed == 1
    assert result.difference == (
        "step 2 (line 23, mediator does start_mediation): expected start_mediation to be refused (with a reason "
        "containing 'mediation starts only once the merchant has responded'), but it was allowed "
        "(state now 'mediating')"
    )


def test_the_cli_prints_a_table_and_fails_on_any_failure(tmp_path: Path) -> None:
    root = tmp_path / "desk"
    write_packaged_desk(root)
    settings = root / "policies" / "settings.json"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('"CNY": 500000', '"CNY": 700000'), encoding="utf-8"
    )
    passing = runner.invoke(
        app,
        ["scenario", "run", str(root / "scenarios" / "01_filing_and_assignment.yaml"), "--desk", str(root)],
        terminal_width=250,
    )
    assert passing.exit_code == 0, passing.output
    assert "8 of 8 scenarios passed" in passing.output
    failing = runner.invoke(app, ["scenario", "run", "--desk", str(root)], env={"COLUMNS": "300"})
    assert failing.exit_code == 1
    output = re.sub(r"\s+", " ", failing.output)
    assert "FAIL" in output and "48 of 49 scenarios passed" in output
    assert "expected settle to be refused" in output


SCENARIO = """\
scenario: a scenario with mistakes
start:
  at: 2026-03-02 10:00
  claim: {amount: 100, currency: CNY}
steps:
  - as: nobody
    do: assign
  - after: 2 business hours
  - as: mediator
    do: assign
    expect: {stat: assigned, refused: true, allowed: true}
"""


def test_mistakes_in_a_scenario_file_are_named_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenarios([path])
    found = [str(p) for p in caught.value.problems]
    assert (
        f"{path}:3: '2026-03-02 10:00' is not an instant with its UTC offset, e.g. 2026-03-02T10:00:00+08:00" in found
    )
    assert any(p.startswith(f"{path}:6: unknown actor 'nobody'") for p in found)
    assert any(p.startswith(f"{path}:8: after: 'after' is wall-clock time") for p in found)
    assert any(p.startswith(f"{path}:11: unknown key 'stat' in expect") for p in found)
    assert f"{path}:11: 'allowed: true' and 'refused' contradict each other" in found
    result = runner.invoke(app, ["scenario", "run", str(path)], terminal_width=250)
    assert result.exit_code == 1 and "nothing was run" in result.output


def test_names_the_desk_lacks_are_named_before_running(tmp_path: Path) -> None:
    path = tmp_path / "names.yaml"
    path.write_text(
        """\
scenario: names the desk lacks
start: {at: 2026-03-02T10:00:00+08:00}
steps:
  - as: mediator
    do: asign
  - expect:
      state: setled
      timers: {merchant_reply: running}
""",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioFileError) as caught:
        run_scenarios(load_scenarios([path]), load_desk())
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5: 'asign' is neither a trigger nor an action of workflow 'consumer_dispute'",
        f"{path}:7: state 'setled' is not a state of workflow 'consumer_dispute'",
        f"{path}:8: timer 'merchant_reply' is not a timer of workflow 'consumer_dispute'",
    ]


def test_time_moves_forward_only(tmp_path: Path) -> None:
    path = tmp_path / "back.yaml"
    path.write_text(
        """\
scenario: back in time
start: {at: 2026-03-02T10:00:00+08:00}
steps:
  - at: 2026-03-01T10:00:00+08:00
""",
        encoding="utf-8",
    )
    [result] = run_scenarios(load_scenarios([path]), load_desk())
    assert not result.passed and "time only moves forward" in result.difference
