"""The desk's third-party review rules (intake/review.py): the file's checks with file and line, the
deterministic stratified draw, and the redaction of Chinese and international personal data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from intake.config import IntakeConfigError
from intake.review import ReviewRules, SampleCandidate, Sampling, default_review_path, draw, load_review

runner = CliRunner()
PACKAGED = load_review(default_review_path())


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("联系我13812345678", "联系我[手机号 phone]"),
        ("手机：+86 139 1234 5678。", "手机：[手机号 phone]。"),
        ("电话 86-150-0000-1111", "电话 [手机号 phone]"),
        ("身份证号 44010619851231001X 请核实", "身份证号 [身份证号 ID number] 请核实"),
        ("id 110105199003071234.", "id [身份证号 ID number]."),
        ("邮箱 wang_wu+shop@mail.example.cn 谢谢", "邮箱 [email] 谢谢"),
        ("我是王小明，订单有问题", "我是[姓名 name]，订单有问题"),
        ("Hi, my name is John Doe. Call +1 415 555 0100", "Hi, my name is [name]. Call [phone]"),
        # Not personal: amounts, an order number longer than an ID, a date, a 12-digit number.
        ("退款 29900 分，订单 2026031512345678901，2026-03-02", "退款 29900 分，订单 2026031512345678901，2026-03-02"),
        ("快递单号 123456789012", "快递单号 123456789012"),
        # A 17-digit run with a bad month is no ID number.
        ("编号 110105199013071234", "编号 110105199013071234"),
    ],
)
def test_packaged_redaction(text: str, shown: str) -> None:
    assert PACKAGED.redaction.text(text) == shown


def test_structured_fields_are_masked_and_others_pass_through_the_patterns() -> None:
    redaction = PACKAGED.redaction
    assert redaction.field("consumer_id", "c-1") == redaction.mask
    assert redaction.field("order_ref", "ORD-1") == redaction.mask
    assert redaction.field("merchant_id", "m-1") == "m-1"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "review.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_every_mistake_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """review:
  reviewers: [rev-1, rev-1, "bad id"]
  sampling:
    share: 1.5
    strata: [category, weather]
    double_share: 0.5
    sneaky: 1
  redaction:
    fields: [consumer_id, password]
    patterns:
      - {name: broken, regex: "([a-z"}
      - {name: empty, regex: "x*"}
      - name: wrong example
        regex: '1[3-9]\\d{9}'
        replacement: "[phone]"
        examples:
          - {text: "13812345678", shown: "13812345678"}
  rubric:
    scale: [5, 1]
    items:
      - {id: fairness, label: Fairness}
      - {id: fairness, label: Again}
      - {id: Bad-Id, label: x}
      - {id: clarity, label: {zh-CN: 清晰}}
""",
    )
    with pytest.raises(IntakeConfigError) as caught:
        load_review(path)
    found = {(p.line, p.message.split(":")[0].split(" (")[0]) for p in caught.value.problems}
    messages = " | ".join(f"{p.file}:{p.line} {p.message}" for p in caught.value.problems)
    assert all(p.file == str(path) for p in caught.value.problems)
    expected_lines = {
        2: "listed twice",  # rev-1 twice
        4: "share must be between 0 and 1",
        5: "unknown stratum 'weather'",
        7: "unknown key 'sneaky'",
        9: "unknown field 'password'",
        11: "not a regular expression",
        12: "matches the empty text",
        17: "is shown as",
        19: "scale must be",
        22: "listed twice",
        23: "lower_snake_case",
        24: "'en' text",
    }
    for line, text in expected_lines.items():
        assert any(p.line == line and text in p.message for p in caught.value.problems), (line, text, messages)
    assert found  # every problem carries a line


def test_double_share_needs_two_reviewers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "review:\n  reviewers: [rev-1]\n  sampling: {double_share: 0.1}\n  rubric:\n    items: [{id: a, label: A}]\n",
    )
    with pytest.raises(IntakeConfigError) as caught:
        load_review(path)
    assert [(p.line, "two reviewers" in p.message) for p in caught.value.problems] == [(3, True)]


def test_config_check_names_a_broken_review_file(tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 0
    path = desk / "intake" / "review.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("share: 0.1", "share: lots"), encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(desk)], terminal_width=240)
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").split("\n"), 1) if "share: lots" in text)
    assert f"{path}:{line}" in result.output and "share" in result.output


def candidates(count: int) -> list[SampleCandidate]:
    categories = ("product_quality", "counterfeit", "not_received")
    return [
        SampleCandidate(f"DSP-{i:04d}", categories[i % 3], f"med-{i % 4}", f"m-{i % 5}", "for_consumer")
        for i in range(count)
    ]


def rules(**sampling: object) -> ReviewRules:
    values: dict[str, object] = {"share": 0.1, "minimum": 1, "strata": ("category", "mediator"), "seed": "s"}
    values.update(sampling)
    return ReviewRules(reviewers=("r1", "r2", "r3"), sampling=Sampling(**values), rubric=PACKAGED.rubric)  # type: ignore[arg-type]


def test_the_draw_is_stratified_deterministic_and_spread_evenly() -> None:
    cases = candidates(240)  # 12 strata (3 categories x 4 mediators) of 20 cases
    first = draw(cases, rules(), "2026-03-02")
    assert draw(list(reversed(cases)), rules(), "2026-03-02") == first  # the input's order does not matter
    per_stratum = Counter(d.stratum for d in first)
    assert len(per_stratum) == 12 and set(per_stratum.values()) == {2}  # ceil(10% of 20)
    # Another period or seed draws other cases from the same strata.
    assert {d.case_id for d in draw(cases, rules(), "2026-03-09")} != {d.case_id for d in first}
    assert {d.case_id for d in draw(cases, rules(seed="t"), "2026-03-02")} != {d.case_id for d in first}
    # Dealt in turn: three reviewers get 8 cases each.
    assert set(Counter(r for d in first for r in d.reviewers).values()) == {8}


def test_minimum_per_stratum_and_double_sampling() -> None:
    cases = candidates(12)  # 12 strata of one case each
    drawn = draw(cases, rules(share=0.01, minimum=1, double_share=0.25), "p")
    assert len(drawn) == 12
    doubled = [d for d in drawn if len(d.reviewers) == 2]
    assert len(doubled) == 3 and all(d.reviewers[0] != d.reviewers[1] for d in doubled)
    assert draw(cases, rules(minimum=0, share=0.0), "p") == []
    assert draw(cases, ReviewRules(), "p") == []  # no reviewers named: nothing is dealt
