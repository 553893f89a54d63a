"""Desk-defined categories (desk.yaml ``categories``): `disputes config check` names each kind of
mistake with its file and line, and every part that names a category is checked against the
desk's list; a desk that declares none keeps the engine's seven."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cases.triage import Triage
from cli import app
from desk.loader import NO_CLASSIFICATION, load_desk
from intake.classify import Classifier
from tests.support.desk_check import EXAMPLES, check, line_of, runner
from workflow.categories import DEFAULT_CATEGORIES


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, f"{old!r} not in {path}"
    path.write_text(content.replace(old, new, 1), encoding="utf-8")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    root = tmp_path / "chargeback"
    shutil.copytree(EXAMPLES / "chargeback", root)
    return root


def assert_refused(desk: Path, file: Path, line: int, message: str) -> None:
    code, output = check(desk)
    assert code == 1, output
    assert f"{file.name}:{line}" in output and message in output, output


def test_the_example_declares_reason_codes_and_checks_clean(desk: Path) -> None:
    code, output = check(desk)
    assert code == 0, output
    assert "6 categories" in output
    loaded = load_desk(desk)
    assert loaded.categories.declared and loaded.categories.ids[:2] == ("visa-13.1", "visa-13.3")
    assert loaded.categories.title("mc-4853", "zh-CN") == "万事达 4853 持卡人争议"
    assert loaded.categories.title("mc-4853", "en") == "Mastercard 4853 Cardholder dispute"


def test_a_desk_declaring_none_keeps_the_engines_seven() -> None:
    for directory in (None, EXAMPLES / "travel", EXAMPLES / "guarantee"):
        loaded = load_desk(directory)
        assert loaded.categories == DEFAULT_CATEGORIES and not loaded.categories.declared
        assert Triage.of_desk(loaded).suggests


@pytest.mark.parametrize(
    ("anchor", "old", "new", "message"),
    [
        ("- id: mc-4837", "- id: mc-4837", "- id: visa-13.1", "category 'visa-13.1' is declared twice"),
        ("- id: mc-4837", "- id: mc-4837", "- id: MC 4837", "category id 'MC 4837' must be lowercase letters"),
        ("Mastercard 4837", ', zh-CN: "万事达 4837 未经持卡人授权"', "", "category 'mc-4837' has no title in zh-CN"),
    ],
    ids=["duplicate id", "bad id", "missing title"],
)
def test_a_bad_category_entry(desk: Path, anchor: str, old: str, new: str, message: str) -> None:
    manifest = desk / "desk.yaml"
    line = line_of(manifest, anchor)
    edit(manifest, old, new)
    assert_refused(desk, manifest, line, message)


def test_a_category_without_titles(desk: Path) -> None:
    manifest = desk / "desk.yaml"
    line = line_of(manifest, "- id: mc-4837")
    title = line_of(manifest, "Mastercard 4837")
    lines = manifest.read_text(encoding="utf-8").split("\n")
    manifest.write_text("\n".join(lines[: title - 1] + lines[title:]), encoding="utf-8")
    assert_refused(desk, manifest, line, "category 'mc-4837' needs a title in zh-CN, en")


def test_a_notification_rule_naming_an_unknown_category(desk: Path) -> None:
    notifications = desk / "notifications.yaml"
    packaged = Path(__file__).resolve().parents[2] / "notify" / "default" / "notifications.yaml"
    shutil.copy(packaged, notifications)
    # The packaged rules name the engine's categories: in a desk of its own, they are unknown.
    assert_refused(
        desk, notifications, line_of(notifications, "  counterfeit:"), "unknown category 'counterfeit' (the desk's"
    )


def test_a_scenario_naming_an_unknown_category(desk: Path) -> None:
    scenario = write(
        desk / "scenarios" / "09_unknown.yaml",
        "scenario: A code the desk lacks, expected to be filed\nstart:\n  at: 2026-03-02T10:00:00+00:00\n"
        "  category: visa-12.6\nsteps:\n  - expect: {state: awaiting_evidence}\n",
    )
    assert_refused(desk, scenario, 4, "unknown category 'visa-12.6' (the desk's categories: visa-13.1,")


def test_a_rulebook_entry_naming_an_unknown_category(desk: Path) -> None:
    rulebook = write(
        desk / "rulebook.yaml",
        "rulebook:\n  entries:\n    - id: visa-core-11\n      citation: Visa Core Rules 11\n"
        "      title: {zh-CN: 争议规则, en: Dispute rules}\n      summary: {zh-CN: 摘要, en: Summary}\n"
        "      categories: [visa-13.1, not_received]\n      triggers: [uphold]\n",
    )
    assert_refused(desk, rulebook, 3, "entry 'visa-core-11': unknown category 'not_received'")


def test_a_triage_label_naming_an_unknown_category(desk: Path) -> None:
    triage = desk / "triage"
    write(triage / "train.jsonl", '{"text": "never delivered", "category": "visa-13.1", "lang": "en"}\n')
    evaluation = write(
        triage / "eval.jsonl",
        '{"text": "not mine", "category": "visa-10.4", "lang": "en"}\n'
        '{"text": "no goods", "category": "not_received", "lang": "en"}\n',
    )
    assert_refused(desk, evaluation, 2, "unknown category 'not_received'")


def test_a_classification_rule_naming_an_unknown_category(desk: Path) -> None:
    classification = write(
        desk / "intake" / "classification.yaml",
        "classification:\n  default_category: visa-13.1\n  categories:\n"
        "    visa-10.4:\n      keywords:\n        - {name: fraud, lang: en, weight: 3, terms: [not me, stolen card]}\n"
        "    counterfeit:\n      keywords:\n        - {name: fake, lang: en, weight: 3, terms: [fake]}\n",
    )
    assert_refused(desk, classification, 7, "unknown category 'counterfeit' (the desk's categories")


def test_a_priority_rule_naming_an_unknown_category(desk: Path) -> None:
    packaged = Path(__file__).resolve().parents[2] / "intake" / "default" / "priority.yaml"
    priority = desk / "intake" / "priority.yaml"
    priority.parent.mkdir()
    shutil.copy(packaged, priority)
    line = line_of(priority, "when: {category: [counterfeit]}")
    assert_refused(desk, priority, line, "rule 'counterfeit-goods': unknown category 'counterfeit'")


def test_a_supervision_threshold_naming_an_unknown_category(desk: Path) -> None:
    packaged = Path(__file__).resolve().parents[2] / "intake" / "default" / "supervision.yaml"
    supervision = desk / "intake" / "supervision.yaml"
    supervision.parent.mkdir()
    shutil.copy(packaged, supervision)
    line = line_of(supervision, "category_complaints_at_least: {counterfeit: 3}")
    assert_refused(desk, supervision, line, "unknown category 'counterfeit'")


def test_a_policy_naming_an_unknown_category(desk: Path) -> None:
    policies = desk / "policies" / "desk.cedar"
    rule = (
        '\n@id("fraud-codes-to-seniors")\n@reason("a fraud chargeback is upheld by a senior analyst")\n'
        'forbid (principal, action == Action::"uphold", resource is Case)\n'
        'when { resource.category == "%s" || ["%s"].contains(resource.category) }\n'
        'unless { principal.role == "senior_mediator" };\n'
    )
    text = policies.read_text(encoding="utf-8")
    policies.write_text(text + rule % ("visa-10.4", "mc-4837"), encoding="utf-8")
    code, output = check(desk)
    assert code == 0, output
    policies.write_text(text + rule % ("visa-10.4", "counterfeit"), encoding="utf-8")
    line = len(text.split("\n")) + 1
    assert_refused(desk, policies, line, "policy 'fraud-codes-to-seniors' names category 'counterfeit'")


def test_without_classification_of_its_own_the_desk_suggests_nothing(desk: Path) -> None:
    loaded = load_desk(desk)
    assert loaded.parts["classification"] is NO_CLASSIFICATION and loaded.parts["triage"] is None
    assert not Triage.of_desk(loaded).suggests


def test_with_classification_of_its_own_it_suggests_only_the_desks_categories(desk: Path) -> None:
    write(
        desk / "intake" / "classification.yaml",
        "classification:\n  default_category: visa-13.1\n  categories:\n"
        "    visa-10.4:\n      keywords:\n        - {name: fraud, lang: en, weight: 3, terms: [not me, stolen card]}\n"
        "    visa-13.6:\n      keywords:\n"
        "        - {name: credit, lang: en, weight: 3, terms: [refund never came, credit not processed]}\n",
    )
    loaded = load_desk(desk)
    triage = Triage.of_desk(loaded)
    assert triage.suggests
    classifier = Classifier(loaded.parts["classification"])
    assert classifier.classify("Stolen card", "It was not me who paid").category == "visa-10.4"
    assert classifier.classify("Credit not processed", "the refund never came").category == "visa-13.6"
    assert classifier.classify("Hello", "nothing matches here").category == "visa-13.1"
    # The intake files checked on their own read the desk's categories too.
    result = runner.invoke(app, ["intake", "check", str(desk)], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "classification.yaml: ok (2 categories" in re.sub(r"\s+", " ", result.output)
