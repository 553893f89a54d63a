"""Priority rules and merchant-supervision thresholds: defaults, every condition configurable,
errors with file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from intake.config import IntakeConfigError
from intake.priority import PriorityFacts, default_priority_path, load_priority
from intake.supervision import MerchantFigures, default_supervision_path, flag_reasons, load_supervision


def write(tmp_path: Path, body: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def facts(**changes: object) -> PriorityFacts:
    values: dict[str, object] = {"category": "product_quality", "claim_amount": 29900, "currency": "CNY"}
    values.update(changes)
    return PriorityFacts(**values)  # type: ignore[arg-type]


# --- priority -------------------------------------------------------------------------------


def test_default_priority_rules() -> None:
    rules = load_priority(default_priority_path())
    assert rules.decide(facts()).level == "normal" and rules.decide(facts()).reasons == ()
    big = rules.decide(facts(claim_amount=500000))
    assert (big.level, big.reasons) == ("high", ("large-claim",))
    assert rules.decide(facts(claim_amount=499999)).level == "normal"
    assert rules.decide(facts(claim_amount=10**9, currency="JPY")).level == "normal"  # no threshold for JPY
    assert rules.decide(facts(category="counterfeit")).reasons == ("counterfeit-goods",)
    assert rules.decide(facts(repeat_complaints=5)).level == "high"
    assert rules.decide(facts(repeat_complaints=4)).level == "normal"
    both = rules.decide(facts(category="counterfeit", claim_amount=600000))
    assert both.level == "high" and both.reasons == ("large-claim", "counterfeit-goods")
    urgent = rules.decide(facts(category="counterfeit", vulnerable_consumer=True))
    assert (urgent.level, urgent.reasons) == ("urgent", ("vulnerable-consumer",))
    assert rules.repeat_window == timedelta(days=30)
    assert [rules.weight(level) for level in ("low", "normal", "high", "urgent", "unknown")] == [1, 1, 2, 3, 1]
    assert rules.decide(facts(), floor="urgent").level == "urgent"
    assert rules.decide(facts(), floor="low").level == "normal"  # never below the default


CUSTOM = """
priority:
  levels:
    normal: {weight: 1}
    high: {weight: 4}
    critical: {weight: 9}
  default: normal
  repeat_window: 7d
  rules:
    - name: small-but-counterfeit
      priority: high
      when: {category: counterfeit, claim_at_least: {CNY: 100}}
    - name: serial-offender
      priority: critical
      when: {repeat_complaints_at_least: 2}
    - name: not-vulnerable-quality
      priority: high
      when: {vulnerable_consumer: false, category: [product_quality]}
"""


def test_every_priority_condition_and_level_is_configurable(tmp_path: Path) -> None:
    rules = load_priority(write(tmp_path, CUSTOM))
    assert rules.repeat_window == timedelta(days=7) and rules.weight("critical") == 9
    assert rules.decide(facts(category="counterfeit", claim_amount=100)).level == "high"
    assert rules.decide(facts(category="counterfeit", claim_amount=99)).level == "normal"  # both conditions
    assert rules.decide(facts(category="other", repeat_complaints=2)).level == "critical"
    assert rules.decide(facts()).level == "high"
    assert rules.decide(facts(vulnerable_consumer=True)).level == "normal"


def test_priority_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """priority:
  levels:
    normal: {weight: 0}
  default: medium
  repeat_window: 2 business days
  rules:
    - name: x
      priority: top
      when: {category: shoes, claim_at_least: {yuan: 5}, colour: red}
""",
    )
    with pytest.raises(IntakeConfigError) as caught:
        load_priority(path)
    found = [str(p) for p in caught.value.problems]
    where = str(path)
    assert f"{where}:3: level 'normal' weight must be between 1 and 1000, got 0" in found
    assert any(p.startswith(f"{where}:4: default must be one of the levels") for p in found)
    assert f"{where}:5: repeat_window is a calendar window such as '30d', not business time" in found
    assert any(p.startswith(f"{where}:8: rule 'x': priority must be one of the levels") for p in found)
    assert any(p.startswith(f"{where}:9:") and "unknown key 'colour'" in p for p in found)
    assert any(p.startswith(f"{where}:9:") and "unknown category 'shoes'" in p for p in found)


# --- supervision ----------------------------------------------------------------------------


def figures(**changes: object) -> MerchantFigures:
    values: dict[str, object] = {"merchant_id": "m-1", "complaints": 10}
    values.update(changes)
    return MerchantFigures(**values)  # type: ignore[arg-type]


def test_default_supervision_thresholds() -> None:
    rules = load_supervision(default_supervision_path())
    assert flag_reasons(figures(), rules) == ()
    breaches = flag_reasons(figures(response_clocks=10, response_breaches=4), rules)
    assert [(r.metric, r.value, r.limit) for r in breaches] == [("response_breach_percent_at_least", 40.0, 40.0)]
    assert "40%" in breaches[0].message
    assert flag_reasons(figures(response_clocks=10, response_breaches=3), rules) == ()
    counterfeit = flag_reasons(figures(by_category=(("counterfeit", 3), ("other", 7))), rules)
    assert [r.metric for r in counterfeit] == ["category_complaints_at_least.counterfeit"]
    many = flag_reasons(figures(complaints=30, decided=10, decided_against=7, settlements=4, reopened=1), rules)
    assert [r.metric for r in many] == [
        "complaints_at_least",
        "decided_against_percent_at_least",
        "reopen_percent_at_least",
    ]


def test_few_complaints_never_flag() -> None:
    rules = load_supervision(default_supervision_path())
    assert flag_reasons(figures(complaints=4, response_clocks=4, response_breaches=4), rules) == ()


def test_figures_derive_their_shares() -> None:
    f = figures(
        decided=8,
        decided_against=6,
        settlements=5,
        reopened=2,
        settle_seconds_total=7200,
        settle_count=3,
        by_category=(("counterfeit", 4),),
    )
    assert f.decided_against_percent == 75.0 and f.reopen_percent == 40.0 and f.honoured_percent == 60.0
    assert f.average_settle_seconds == 2400 and f.category_percent("counterfeit") == 40.0
    assert figures(complaints=0).response_breach_percent is None


def test_supervision_thresholds_are_configurable(tmp_path: Path) -> None:
    rules = load_supervision(
        write(
            tmp_path,
            """supervision:
  period: 7d
  min_complaints: 1
  flag_when_any:
    response_breaches_at_least: 2
    category_complaints_at_least: {not_received: 1}
""",
        )
    )
    assert rules.period == timedelta(days=7)
    found = flag_reasons(figures(complaints=1, response_breaches=2, by_category=(("not_received", 1),)), rules)
    assert [r.metric for r in found] == ["response_breaches_at_least", "category_complaints_at_least.not_received"]


def test_supervision_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """supervision:
  period: soon
  flag_when_any:
    reopen_percent_at_least: 120
    complaints_at_least: many
    category_complaints_at_least: {shoes: 2}
    mood: bad
""",
    )
    with pytest.raises(IntakeConfigError) as caught:
        load_supervision(path)
    found = [str(p) for p in caught.value.problems]
    where = str(path)
    assert any(p.startswith(f"{where}:2: period: cannot parse duration 'soon'") for p in found)
    assert f"{where}:4: reopen_percent_at_least must be between 0 and 100, got 120" in found
    assert f"{where}:5: complaints_at_least must be a whole number, got 'many'" in found
    assert any(p.startswith(f"{where}:6: unknown category 'shoes'") for p in found)
    assert any(p.startswith(f"{where}:7: unknown key 'mood'") for p in found)
