"""Accuracy of the default classification rules on realistic complaints (half Chinese).

complaints.yaml is the set the rules were tuned on and must stay above 90%, overall and
per language. complaints_unseen.yaml was never used for tuning: its accuracy is printed
as the honest figure for new text and guarded against regressions only. Run with ``-s``
to see the figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake.classify import Classifier, load_classifier

HERE = Path(__file__).resolve().parent


def load(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))["complaints"]
    return items


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


def accuracy(classifier: Classifier, items: list[dict[str, Any]], label: str) -> dict[str, float]:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    for item in items:
        got = classifier.classify(item["subject"], item["description"])
        total[item["lang"]] += 1
        if got.category == item["category"]:
            right[item["lang"]] += 1
        else:
            misses.append(f"  {item['category']:>17} -> {got.category:<17} {item['subject']}")
    result = {lang: right[lang] / total[lang] for lang in total}
    result["all"] = sum(right.values()) / sum(total.values())
    print(
        f"\n{label}: {sum(right.values())}/{sum(total.values())} = {result['all']:.1%} "
        + " ".join(f"{lang} {result[lang]:.1%}" for lang in sorted(total))
    )
    print("\n".join(misses))
    return result


def test_the_data_set_is_realistic_in_size_and_mix() -> None:
    items = load("complaints.yaml")
    assert len(items) >= 60
    languages = Counter(item["lang"] for item in items)
    assert languages["zh"] == languages["en"]
    categories = Counter(item["category"] for item in items)
    assert set(categories) == {
        "product_quality",
        "counterfeit",
        "not_received",
        "not_as_described",
        "after_sales",
        "false_advertising",
        "other",
    }
    assert len({(i["subject"], i["description"]) for i in items}) == len(items), "duplicate complaints"


def test_accuracy_on_the_tuning_set_is_at_least_90_percent(classifier: Classifier) -> None:
    result = accuracy(classifier, load("complaints.yaml"), "complaints.yaml (tuning set)")
    assert result["all"] >= 0.90
    assert result["zh"] >= 0.90 and result["en"] >= 0.90


def test_accuracy_on_unseen_complaints_is_reported(classifier: Classifier) -> None:
    result = accuracy(classifier, load("complaints_unseen.yaml"), "complaints_unseen.yaml (never tuned on)")
    # Keyword rules generalise modestly to new wording (about half right when measured);
    # this floor only catches a change that makes them much worse.
    assert result["all"] >= 0.40
