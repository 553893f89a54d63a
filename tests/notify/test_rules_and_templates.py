"""The desk's notifications.yaml: the packaged one loads; mistakes are reported with file and
line; a desk whose rules name a clock no workflow has is refused. Templates in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from desk.loader import InvalidDeskError, load_desk, write_packaged_desk
from notify.rules import InvalidNotificationsError, default_rules, load_notifications
from notify.templates import language_of, render


def test_the_packaged_rules() -> None:
    rules = default_rules()
    assert rules.recipients("acknowledgement") == ("consumer",)
    assert rules.recipients("deadline_changed") == ("parties", "mediator")
    assert rules.acting["merchant_response"] == ("merchant",)
    assert rules.before_breach is not None and rules.before_breach.total_seconds() == 4 * 3600
    assert "Article 55" in rules.category("counterfeit").legal_basis["en"]
    assert load_desk().notifications == rules


def test_mistakes_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "notifications.yaml"
    path.write_text(
        "notices:\n"
        "  acknowledgement: {to: [consumer]}\n"
        "  gossip: {to: [consumer]}\n"
        "  reminder: {to: [neighbour]}\n"
        "before_breach: 2 business hours\n"
        "categories:\n"
        "  shoes: {}\n"
        "colour: red\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidNotificationsError) as caught:
        load_notifications(path)
    lines = sorted((p.line, p.message.split(" ")[0]) for p in caught.value.problems)
    assert [line for line, _ in lines] == [3, 4, 5, 7, 8]


def test_a_desk_naming_an_unknown_clock_is_refused(tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    write_packaged_desk(desk)
    assert (desk / "notifications.yaml").exists()  # `disputes config init` writes it out
    with (desk / "notifications.yaml").open("a", encoding="utf-8") as handle:
        handle.write("  tea_break: [merchant]\n")
    with pytest.raises(InvalidDeskError, match="tea_break"):
        load_desk(desk)


def test_templates_in_both_languages() -> None:
    facts = {
        "case_id": "DSP-1",
        "category": "not_received",
        "timer": "merchant_response",
        "due_at": "2026-03-04T02:00:00Z",
    }
    english = render("reminder", language_of("en-GB"), facts)
    chinese = render("reminder", language_of("zh"), facts)
    assert english.subject == "Reminder: DSP-1, merchant's response due 2026-03-04 02:00 UTC"
    assert chinese.subject == "期限提醒：DSP-1，商家答复截止 2026-03-04 10:00（北京时间）"
    moved = render(
        "deadline_changed",
        "zh-CN",
        {
            "case_id": "DSP-1",
            "changes": [
                {"timer": "resolution", "old_due_at": "2026-03-04T02:00:00Z", "new_due_at": None, "why": "paused"}
            ],
        },
    )
    assert "原期限 2026-03-04 10:00（北京时间），新期限 已暂停" in moved.body


def test_a_notice_ends_with_where_the_case_stands_in_the_recipients_words() -> None:
    facts = {"case_id": "DSP-1", "timer": "shop_handling", "due_at": "2026-03-04T02:00:00.000000Z"}
    label = "Handle this application within 48 hours"
    labelled = {**facts, "state_label": label}
    assert render("reminder", "en", labelled).body.endswith(f"\nWhere it stands: {label}")
    assert render("reminder", "zh-CN", labelled).body.endswith(f"\n当前状态：{label}")
    assert render("reminder", "en", labelled).subject == render("reminder", "en", facts).subject
    assert "Where it stands" not in render("reminder", "en", facts).body  # no label declared: the generic text
