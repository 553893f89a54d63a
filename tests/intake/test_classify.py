"""Classification: segmentation, evidence, negation, and every rule kind configurable in YAML."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from desk.loader import load_desk
from intake.classify import Classifier, TokenIndex, _term, detect_language, load_classification, load_classifier
from intake.config import IntakeConfigError


@pytest.fixture(scope="module")
def default() -> Classifier:
    return load_classifier()


def rules_file(tmp_path: Path, body: str, name: str = "classification.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def classifier(tmp_path: Path, body: str) -> Classifier:
    return Classifier(load_classification(rules_file(tmp_path, body)))


# --- segmentation ---------------------------------------------------------------------------


def test_rule_terms_become_whole_words_of_the_segmenter(default: Classifier) -> None:
    # jieba alone cuts 没收/到货 ("confiscate" / "arrival") and 虚假/宣传.
    assert "没收到" in default.tokens("我买的东西一直没收到货")
    assert "虚假宣传" in default.tokens("商家虚假宣传")


def test_a_one_character_keyword_never_matches_inside_a_word(default: Classifier) -> None:
    # 假 (fake) is a keyword; 假期 (holiday) and 请假 (leave) are other words.
    result = default.classify("假期订的酒店", "请假出去玩，订单被商家取消了，差价也不给补")
    assert result.category != "counterfeit"
    assert not [m for m in result.evidence if m.term == "假"]
    fake = default.classify("买到假奶粉", "扫码提示产品不存在")
    assert fake.category == "counterfeit" and any(m.term == "假" for m in fake.evidence)


def test_full_width_and_upper_case_text_is_normalised(default: Classifier) -> None:
    assert default.classify("ＦＡＫＥ ＲＯＬＥＸ", "").category == "counterfeit"


def test_language_is_detected_from_the_script() -> None:
    assert detect_language("收到的耳机是假货") == "zh"
    assert detect_language("The kettle broke after two days") == "en"
    assert detect_language("iPhone 15 Pro Max 屏幕坏了") == "zh"


# --- evidence -------------------------------------------------------------------------------


def test_the_result_says_which_rule_matched_which_words_where(default: Classifier) -> None:
    result = default.classify("耳机序列号查不到", "官网显示序列号无效，是假货")
    assert result.category == "counterfeit" and result.language == "zh"
    kinds = {(m.kind, m.field) for m in result.evidence}
    assert ("pattern", "subject") in kinds and ("keyword", "description") in kinds
    fake = next(m for m in result.evidence if m.term == "假货")
    assert fake.rule == "counterfeit-zh" and fake.matched == "假货" and fake.points == 3
    assert result.score == sum(m.points for m in result.evidence)
    data = result.to_event_data()
    # The filed event is hashed as RFC 8785 JSON: integers and text only.
    assert json.loads(rfc8785.dumps(data)) == data
    assert data["scores"]["counterfeit"] == result.score and data["rules_version"] == result.rules_version


def test_subject_words_weigh_double_by_default(default: Classifier) -> None:
    in_subject = default.classify("假货", "")
    in_description = default.classify("投诉", "假货")
    assert in_subject.score == 2 * in_description.score


def test_nothing_recognisable_is_the_default_category(default: Classifier) -> None:
    result = default.classify("你好", "请联系我")
    assert result.category == "other" and result.score == 0 and not result.matched


def test_english_prefix_terms_and_phrases(default: Classifier) -> None:
    refunded = default.classify("Refunded only half", "")
    assert refunded.category == "after_sales"
    assert [(m.term, m.matched) for m in refunded.evidence] == [("refund*", "refunded")]
    late = default.classify("Still not received", "")
    assert late.category == "not_received" and late.evidence[0].matched == "not received"


def test_a_negated_keyword_does_not_count(default: Classifier) -> None:
    result = default.classify("不是假货，是质量问题", "用了两天就坏了")
    assert result.category == "product_quality"
    assert [m.term for m in result.negated] == ["假货"]
    fine = default.classify("Quality is fine but it never arrived", "")
    assert fine.category == "not_received" and "quality" in [m.term for m in fine.negated]


# --- every rule kind is configurable ---------------------------------------------------------

BASE = """
classification:
  min_score: 2
  categories:
    counterfeit:
      keywords:
        - {lang: zh, weight: 3, terms: [假货]}
    product_quality:
      keywords:
        - {lang: zh, weight: 3, terms: [坏了]}
"""


def test_a_keyword_added_in_yaml_changes_the_outcome(tmp_path: Path) -> None:
    text = ("鞋子开胶", "穿了一周")
    assert classifier(tmp_path, BASE).classify(*text).category == "other"
    more = BASE.replace("terms: [坏了]", "terms: [坏了, 开胶]")
    assert classifier(tmp_path, more).classify(*text).category == "product_quality"


def test_weights_decide_between_categories(tmp_path: Path) -> None:
    text = ("假货", "而且坏了")  # counterfeit 3x2 = 6 against quality 3x1 = 3
    assert classifier(tmp_path, BASE).classify(*text).category == "counterfeit"
    heavier = BASE.replace("{lang: zh, weight: 3, terms: [坏了]}", "{lang: zh, weight: 7, terms: [坏了]}")
    assert classifier(tmp_path, heavier).classify(*text).category == "product_quality"


def test_field_weights_min_score_and_default_category_are_configurable(tmp_path: Path) -> None:
    text = ("投诉", "坏了")  # 3 points from the description
    assert classifier(tmp_path, BASE).classify(*text).category == "product_quality"
    strict = BASE.replace("min_score: 2", "min_score: 4")
    assert classifier(tmp_path, strict).classify(*text).category == "other"
    elsewhere = strict.replace("min_score: 4", "min_score: 4\n  default_category: after_sales")
    assert classifier(tmp_path, elsewhere).classify(*text).category == "after_sales"
    described = strict.replace("min_score: 4", "min_score: 4\n  field_weights: {subject: 1, description: 2}")
    assert classifier(tmp_path, described).classify(*text).category == "product_quality"


def test_a_regular_expression_rule(tmp_path: Path) -> None:
    body = (
        BASE
        + """
    not_received:
      patterns:
        - {name: days-waiting, regex: '等了\\d+天', weight: 5}
"""
    )
    result = classifier(tmp_path, body).classify("催单", "已经等了15天")
    assert result.category == "not_received"
    assert result.evidence[0].kind == "pattern" and result.evidence[0].matched == "等了15天"
    assert result.evidence[0].rule == "days-waiting" and result.score == 5


def test_english_keywords_and_languages(tmp_path: Path) -> None:
    body = (
        BASE
        + """
    not_received:
      keywords:
        - {lang: en, weight: 3, terms: ["never arrived", "lost*"]}
"""
    )
    c = classifier(tmp_path, body)
    assert c.classify("It never arrived", "").category == "not_received"
    assert c.classify("Parcel lostinthepost", "").category == "not_received"  # prefix word
    assert c.classify("It arrived, never mind", "").category == "other"  # words must be in a row


def test_negation_cues_are_configurable(tmp_path: Path) -> None:
    text = ("并非假货", "")
    assert classifier(tmp_path, BASE).classify(*text).category == "counterfeit"
    negating = BASE.replace("min_score: 2", "min_score: 2\n  negation: {before: [并非], window: 1}")
    result = classifier(tmp_path, negating).classify(*text)
    assert result.category == "other" and result.negated[0].term == "假货"


def test_extra_segmenter_words_are_configurable(tmp_path: Path) -> None:
    # A multi-word term matches its words in a row: "没 收到" needs 没/收到, but jieba's own
    # dictionary cuts 还没收到 as 还/没收/到. Extra words for the segmenter fix that.
    phrase = (
        BASE
        + """
    not_received:
      keywords:
        - {lang: zh, weight: 3, terms: ["没 收到"]}
"""
    )
    plain = classifier(tmp_path, phrase)
    assert plain.tokens("还没收到") == ("还", "没收", "到")
    assert plain.classify("还没收到", "").category == "other"
    worded = classifier(tmp_path, phrase.replace("min_score: 2", "min_score: 2\n  words: [没, 收到]"))
    assert worded.tokens("还没收到") == ("还", "没", "收到")
    assert worded.classify("还没收到", "").category == "not_received"


def test_one_rules_files_words_never_change_another_classifiers_segmentation(tmp_path: Path) -> None:
    before = load_classifier().tokens("我想请假期间办理")
    custom = BASE.replace("min_score: 2", "min_score: 2\n  words: [假期间办]")
    assert "假期间办" in classifier(tmp_path, custom).tokens("我想请假期间办理")
    assert load_classifier().tokens("我想请假期间办理") == before


# --- bad files ------------------------------------------------------------------------------


def problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(IntakeConfigError) as caught:
        load_classification(rules_file(tmp_path, body))
    return [str(p) for p in caught.value.problems]


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """classification:
  min_score: 0
  categories:
    counterfeit:
      keywords:
        - {lang: fr, weight: 3, terms: [faux]}
      patterns:
        - {regex: '(unclosed', weight: 2}
    shoes:
      keywords:
        - {lang: zh, terms: [鞋]}
    product_quality:
      keyword: []
""",
    )
    file = str(tmp_path / "classification.yaml")
    assert f"{file}:2: min_score must be between 1 and 1000000000000, got 0" in found
    assert any(p.startswith(f"{file}:6:") and "lang must be one of zh, en" in p for p in found)
    assert any(p.startswith(f"{file}:8:") and "invalid regular expression" in p for p in found)
    assert any(p.startswith(f"{file}:9:") and "unknown category 'shoes'" in p for p in found)
    assert any(p.startswith(f"{file}:13:") and "unknown key 'keyword'" in p for p in found)


def test_invalid_yaml_and_duplicate_keys_are_located(tmp_path: Path) -> None:
    assert problems(tmp_path, "classification:\n  categories: [\n")[0].startswith(str(tmp_path))
    dup = problems(tmp_path, "classification:\n  min_score: 1\n  min_score: 2\n  categories: {}\n")
    assert dup == [f"{tmp_path / 'classification.yaml'}:3: duplicate key 'min_score'"]


def test_a_regex_matching_empty_text_is_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "classification:\n  categories:\n    other:\n      patterns:\n        - {regex: 'x*', weight: 1}\n"
    )
    assert "matches empty text" in found[0] and ":5:" in found[0]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(IntakeConfigError, match="cannot read file"):
        load_classification(tmp_path / "nope.yaml")


# --- the token index --------------------------------------------------------------------------


def _desk_rules_and_texts() -> tuple[Classifier, list[str]]:
    desk = load_desk()
    triage_set = desk.parts["triage"]
    # every third text of the evaluation split: all kinds of match occur, in a couple of seconds
    return Classifier(desk.parts["classification"]), [e.text for e in triage_set.evaluation[::3]]


def test_the_token_index_finds_every_occurrence_the_walk_finds() -> None:
    """The index only narrows where a term is tried: on the desk's own texts every term of its
    rules occurs at the same places with and without it (whole words, prefix words, Chinese
    terms; their spelling across several tokens is the next test's)."""
    rules, texts = _desk_rules_and_texts()
    terms = [t for c in rules.rules.categories for g in c.keywords for t in g.terms]
    kinds: Counter[str] = Counter()
    for text in texts:
        tokens = rules.tokens(text)
        where = TokenIndex(tokens)
        for term in terms:
            walked = list(term.occurrences(tokens))
            assert list(term.occurrences(tokens, where)) == walked, (term.text, tokens)
            if walked:
                kinds["prefix" if term.words[0][1] else "joined" if term.joined else "word"] += 1
    assert min(kinds.values()) > 0, kinds  # every way of matching was exercised


_TOKENS = ["假", "货", "假货", "仿", "品", "退", "款", "退款", "no", "refund", "refunds", "，"]


@given(st.lists(st.sampled_from(_TOKENS), max_size=12))
@example(["退", "假", "货", "，", "假货"])
def test_the_token_index_agrees_with_the_walk_on_any_tokens(tokens: list[str]) -> None:
    if tokens == ["退", "假", "货", "，", "假货"]:  # a term spelled across two tokens, then whole
        assert list(_term("假货").occurrences(tokens, TokenIndex(tokens))) == [(1, 3), (4, 5)]
    terms = [_term(text) for text in ("假货", "退款", "refund*", "no refund", "假", "仿品", "退款 no")]
    where = TokenIndex(tokens)
    for term in terms:
        assert list(term.occurrences(tokens, where)) == list(term.occurrences(tokens))
