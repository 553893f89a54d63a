"""Loading workflow definitions: the default file, versions, and every kind of rejection."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.definition import InvalidDefinitionError, load_definition_file, load_definition_text

DEFAULT = Path(__file__).resolve().parents[2] / "workflow" / "definitions" / "consumer_dispute.yaml"

GOOD = """\
name: tiny
initial: open
states:
  open:
    timers: [answer]
  done:
    final: true
transitions:
  - trigger: finish
    source: [open]
    dest: done
actions:
  comment: {states: "*"}
timers:
  answer:
    goal: 2 business hours
    on_breach: {trigger: finish}
"""


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(InvalidDefinitionError) as caught:
        load_definition_text(text, file="broken.yaml")
    assert all(p.file == "broken.yaml" for p in caught.value.problems)
    return [(p.line, p.message) for p in caught.value.problems]


def test_default_definition_matches_the_design_table() -> None:
    d = load_definition_file(DEFAULT)
    assert [s.name for s in d.states] == ["filed", "assigned", "mediating", "settled", "escalated", "closed"]
    expected = {
        "assign": ({"filed"}, "assigned"),
        "start_mediation": ({"assigned"}, "mediating"),
        "accept_claim": ({"assigned", "mediating"}, "settled"),
        "settle": ({"mediating"}, "settled"),
        "escalate": ({"filed", "assigned", "mediating"}, "escalated"),
        "rule": ({"escalated"}, "settled"),
        "decide_for_consumer": ({"assigned"}, "settled"),
        "withdraw": ({"filed", "assigned", "mediating", "escalated"}, "closed"),
        "reject": ({"filed", "escalated"}, "closed"),
        "close": ({"settled"}, "closed"),
        "reopen": ({"closed"}, "mediating"),
    }
    assert {t.trigger: (set(t.sources), t.dest) for t in d.transitions} == expected
    assert set(d.action_names) >= {
        "comment",
        "add_evidence",
        "respond",
        "propose_offer",
        "accept_offer",
        "reject_offer",
        "request_info",
        "provide_info",
        "rate",
    }
    timers = {t.name: t for t in d.timers}
    assert str(timers["assignment"].goal) == "2 business hours"
    assert timers["merchant_response"].goal.wall_seconds == 48 * 3600
    assert timers["merchant_response"].warn_at == 0.75
    assert timers["merchant_response"].on_breach.trigger == "decide_for_consumer"
    assert timers["resolution"].on_breach.trigger == "escalate" and timers["resolution"].warn_at == 0.8
    assert timers["ruling"].on_breach.flag == "ruling_overdue"
    assert timers["fulfilment"].on_breach.trigger == "close"
    assert {s.name: s.timers for s in d.states}["settled"] == ("fulfilment",)


def test_version_is_stable_under_formatting_and_changes_with_meaning() -> None:
    base = load_definition_text(GOOD)
    reformatted = load_definition_text(GOOD.replace("source: [open]", "source: open").replace("  # x", ""))
    assert base.version == reformatted.version
    changed = load_definition_text(GOOD.replace("2 business hours", "3 business hours"))
    assert changed.version != base.version
    assert len(base.version) == 64


def test_good_file_loads() -> None:
    d = load_definition_text(GOOD)
    assert d.initial == "open" and d.trigger_names == ("finish",)


def test_unknown_state_in_transition() -> None:
    found = problems_of(GOOD.replace("dest: done", "dest: nowhere"))
    assert any(line == 11 and "unknown dest state 'nowhere'" in msg for line, msg in found)


def test_unknown_source_state() -> None:
    found = problems_of(GOOD.replace("source: [open]", "source: [open, limbo]"))
    assert any(line == 10 and "unknown source state 'limbo'" in msg for line, msg in found)


def test_unreachable_state() -> None:
    text = GOOD.replace("  done:\n    final: true\n", "  done:\n    final: true\n  island:\n    final: true\n")
    found = problems_of(text)
    assert any(line == 8 and "'island' is unreachable" in msg for line, msg in found)


def test_dead_end_that_is_not_final() -> None:
    found = problems_of(GOOD.replace("    final: true\n", "    description: stuck\n"))
    assert any(line == 6 and "'done' is a dead end" in msg for line, msg in found)


def test_duplicate_trigger_from_one_state() -> None:
    text = GOOD.replace("actions:", "  - trigger: finish\n    source: [open]\n    dest: done\nactions:")
    found = problems_of(text)
    assert any(
        line == 12 and "duplicate trigger 'finish' from state 'open' (also at line 9)" in msg for line, msg in found
    )


def test_bad_duration() -> None:
    found = problems_of(GOOD.replace("2 business hours", "two hours-ish"))
    assert any(line == 16 and "cannot parse duration 'two hours-ish'" in msg for line, msg in found)


def test_breach_trigger_not_valid_from_timer_state() -> None:
    text = GOOD.replace("  done:\n    final: true\n", "  done:\n    final: true\n    timers: [answer]\n")
    found = problems_of(text)
    assert any(line == 18 and "breach trigger 'finish' is not valid from state 'done'" in msg for line, msg in found)


def test_breach_trigger_unknown() -> None:
    found = problems_of(GOOD.replace("on_breach: {trigger: finish}", "on_breach: {trigger: explode}"))
    assert any("breach trigger 'explode' is not valid from state 'open'" in msg for _, msg in found)


def test_invalid_yaml_syntax_names_the_line() -> None:
    found = problems_of(GOOD.replace("  done:\n", "  done: [\n"))
    assert found and found[0][1].startswith("invalid YAML")


def test_duplicate_key() -> None:
    found = problems_of(GOOD.replace("  done:\n    final: true\n", "  done:\n    final: true\n  open: {}\n"))
    assert found == [(8, "duplicate key 'open'")]


def test_unknown_keys_and_actions_are_refused() -> None:
    found = problems_of(GOOD.replace('comment: {states: "*"}', 'comment: {states: "*", colour: red}\n  dance: {}'))
    messages = " | ".join(msg for _, msg in found)
    assert "unknown key 'colour'" in messages and "unknown kind 'dance'" in messages


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("dest: done", "dest: nowhere").replace("2 business hours", "soon")
    assert len(problems_of(text)) >= 2


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinitionError) as caught:
        load_definition_file(tmp_path / "missing.yaml")
    assert "cannot read file" in str(caught.value)
