"""Triage that generalises: sentence embeddings plus the keyword rules' scores, into a trained head.

A complaint's features are its embedding (:mod:`intake.embedder`), its hashed character and word
n-grams (:func:`ngram_features`: domain words such as 退款 or "tracking" carry across wordings the
encoder places apart) and, per category, the keyword rules' score times :data:`RULE_SCALE`
(:mod:`intake.classify`); a softmax head (:mod:`intake.head`) turns them into a probability per
category. The rules stay the explainable evidence and the
fallback: without an encoder (not installed, or weights not the pinned ones) the rules decide.

A model (:class:`TriageModel`) is its categories, its head, and what it was made from: the
encoder's weights, the training set and the rules file, each by hash; its ``version`` hashes all
of it, so a case's ``filed`` event names exactly what classified it. Pure: the database half
(the model registry, corrections, retraining from the log) is ``cases/learning.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from intake.classify import Classification, Classifier, detect_language
from intake.config import IntakeConfigError, Reader, read_located
from intake.embedder import Embedder, EmbedderUnavailable, Vectors
from intake.evaluation import Scores, score
from intake.head import Features, Matrix, SoftmaxHead, fit_head
from workflow.categories import DEFAULT_CATEGORIES
from workflow.errors import Problem

# Chosen among nine settings (docs/triage.md): rules x 0.05, n-grams x 1. L2 3e-5 (was 1e-4):
# with the larger English training set, better on the training set's 5-fold macro-F1 (0.990 vs
# 0.987) and on English wording held out by template (0.915 vs 0.912), neither using the frozen split.
RULE_SCALE = 0.05
NGRAM_SCALE = 1.0
NGRAM_BUCKETS = 1 << 13
L2 = 3e-5
TOP = 3
# Probabilities in events are whole basis points (1/10,000): events hold integers and text only.
BASIS = 10_000


def triage_categories() -> tuple[str, ...]:
    """The categories the classifier learns when nothing else says: the engine's default seven (a
    desk's own triage set carries its desk's, :attr:`TriageSet.categories`)."""
    return DEFAULT_CATEGORIES.ids


def complaint_text(subject: str, description: str = "") -> str:
    """What the classifier reads of a complaint: its subject, then its description."""
    return f"{subject.strip()}\n{description.strip()}".strip()


# --- labelled examples -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled complaint. ``source``: the shipped set, or the case whose correction it is."""

    text: str
    category: str
    lang: str
    source: str = "shipped"

    @property
    def digest(self) -> str:
        return text_digest(self.text)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_examples(path: Path, categories: Sequence[str] | None = None) -> list[Example]:
    """One JSON object per line: text, category, lang. Every bad line is reported (file:line)."""
    known = tuple(categories or triage_categories())
    problems: list[Problem] = []
    found: list[Example] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IntakeConfigError([Problem(str(path), 1, f"cannot read file: {exc.strerror}")]) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), number, f"not JSON: {exc.msg}"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            problems.append(Problem(str(path), number, "each line needs a non-empty text"))
            continue
        category = row.get("category")
        if category not in known:
            problems.append(Problem(str(path), number, f"unknown category {category!r} (known: {', '.join(known)})"))
            continue
        lang = row.get("lang") or detect_language(row["text"])
        found.append(Example(row["text"], str(category), str(lang)))
    if problems:
        raise IntakeConfigError(problems)
    return found


def examples_digest(examples: Iterable[Example]) -> str:
    """sha256 of the examples in order (text, label): the training set's part of a model version."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.text, example.category], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


# --- features --------------------------------------------------------------------------------


class EmbeddingCache:
    """Embeddings by text hash for one encoder version, loaded from and saved to a ``.npz`` (the
    desk ships one for its labelled set, so tests and retraining do not embed 2,000 texts again)."""

    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        self.embedder = embedder
        self.path = path
        self._vectors: dict[str, Vectors] = {}
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["embedder_version"]) == embedder.version:
                    for key, vector in zip(stored["digests"], stored["vectors"], strict=True):
                        self._vectors[str(key)] = vector.astype(np.float32)

    def vectors(self, texts: Sequence[str]) -> Vectors:
        digests = [text_digest(t) for t in texts]
        missing = sorted({d: t for d, t in zip(digests, texts, strict=True) if d not in self._vectors}.items())
        if missing:
            computed = self.embedder.embed([t for _, t in missing])
            for (digest, _), vector in zip(missing, computed, strict=True):
                self._vectors[digest] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[d] for d in digests])

    def save(self, texts: Sequence[str], path: Path | None = None) -> Path:
        """Write the vectors of ``texts`` (half precision: ample for a linear head)."""
        target = path or self.path
        if target is None:
            raise ValueError("no path to save the embeddings to")
        vectors = self.vectors(texts)
        np.savez_compressed(
            target,
            embedder_version=np.array(self.embedder.version),
            digests=np.array([text_digest(t) for t in texts]),
            vectors=vectors.astype(np.float16),
        )
        return target


def rule_features(
    rules: Classifier, texts: Sequence[str], categories: Sequence[str]
) -> tuple[Matrix, list[Classification]]:
    """Per text, the rules' score of each category times :data:`RULE_SCALE`, and the rules' result."""
    results = [rules.classify("", text) for text in texts]
    index = {name: i for i, name in enumerate(categories)}
    matrix = np.zeros((len(texts), len(categories)))
    for row, result in enumerate(results):
        for name, points in result.scores:
            if name in index:
                matrix[row, index[name]] = points * RULE_SCALE
    return matrix, results


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9']+")


def ngrams(text: str) -> set[str]:
    """Chinese characters and character pairs; English words, their first five letters, word pairs."""
    lowered = text.lower()
    found: set[str] = set()
    for run in _CJK_RUN.findall(lowered):
        found.update(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    words = _WORD.findall(lowered)
    found.update(words)
    found.update(f"{word[:5]}~" for word in words)
    found.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return found


def features(vectors: Vectors, texts: Sequence[str], scores: Matrix) -> Features:
    """The embedding and the rules' scores (dense), then each text's n-grams hashed (crc32) into
    :data:`NGRAM_BUCKETS` columns, present or not, the row scaled to unit length (sparse)."""
    rows: list[int] = []
    columns: list[int] = []
    values: list[float] = []
    for row, text in enumerate(texts):
        found = sorted({zlib.crc32(gram.encode("utf-8")) % NGRAM_BUCKETS for gram in ngrams(text)})
        if found:
            rows.extend([row] * len(found))
            columns.extend(found)
            values.extend([NGRAM_SCALE / float(np.sqrt(len(found)))] * len(found))
    return Features(
        dense=np.hstack([np.asarray(vectors, dtype=np.float64), scores]),
        rows=np.array(rows, dtype=np.int64),
        columns=np.array(columns, dtype=np.int64),
        values=np.array(values, dtype=np.float64),
        width=NGRAM_BUCKETS,
    )


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriageModel:
    """A trained head and what it was made from. ``metrics``: its evaluation when it was made."""

    categories: tuple[str, ...]
    head: SoftmaxHead
    embedder: str
    embedder_version: str
    training_set: str
    rules_version: str
    examples: int = 0
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return f"{self.embedder}+softmax"

    @cached_property
    def version(self) -> str:
        """sha256 of the head's weights and of everything they were trained from (first 16 hex).
        Computed once per model: every filing's ``filed`` event names it, and hashing the weights
        (half a megabyte) took half a millisecond of each filing."""
        digest = hashlib.sha256()
        for part in (self.embedder_version, self.training_set, self.rules_version, ",".join(self.categories)):
            digest.update(part.encode("utf-8") + b"\0")
        digest.update(np.ascontiguousarray(self.head.weights, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.head.bias, dtype="<f8").tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """The model as a ``filed`` event records it."""
        return {
            "name": self.name,
            "version": self.version,
            "embedder_version": self.embedder_version,
            "training_set": self.training_set,
            "rules_version": self.rules_version,
        }

    def to_bytes(self) -> bytes:
        meta = {
            "categories": list(self.categories),
            "embedder": self.embedder,
            "embedder_version": self.embedder_version,
            "training_set": self.training_set,
            "rules_version": self.rules_version,
            "examples": self.examples,
            "metrics": self.metrics,
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, weights=self.head.weights, bias=self.head.bias, meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TriageModel:
        with np.load(io.BytesIO(raw), allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            head = SoftmaxHead(stored["weights"].astype(np.float64), stored["bias"].astype(np.float64))
        return cls(
            categories=tuple(meta["categories"]),
            head=head,
            embedder=meta["embedder"],
            embedder_version=meta["embedder_version"],
            training_set=meta["training_set"],
            rules_version=meta["rules_version"],
            examples=int(meta.get("examples", 0)),
            metrics=dict(meta.get("metrics", {})),
        )


def fit_model(
    examples: Sequence[Example],
    cache: EmbeddingCache,
    rules: Classifier,
    categories: Sequence[str] | None = None,
    *,
    l2: float = L2,
) -> TriageModel:
    """Fit a head on ``examples`` (deterministic: the same examples give the same version)."""
    names = tuple(categories or triage_categories())
    texts = [e.text for e in examples]
    scores, _ = rule_features(rules, texts, names)
    x = features(cache.vectors(texts), texts, scores)
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[e.category] for e in examples], dtype=np.int64)
    head = fit_head(x, labels, len(names), l2=l2)
    return TriageModel(
        categories=names,
        head=head,
        embedder=cache.embedder.name,
        embedder_version=cache.embedder.version,
        training_set=examples_digest(examples),
        rules_version=rules.rules.version,
        examples=len(examples),
    )


# --- classifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """What triage concluded about one complaint, and why."""

    category: str
    source: str  # "model", or "rules" when there is no usable model
    ranked: tuple[tuple[str, float], ...]  # every category with its probability, best first
    rules: Classification
    model: TriageModel | None = None

    @property
    def confidence(self) -> float:
        return self.ranked[0][1] if self.ranked else 0.0

    @property
    def margin(self) -> float:
        """The top probability minus the second: small means the model hesitated between two."""
        if len(self.ranked) < 2:
            return self.confidence
        return self.ranked[0][1] - self.ranked[1][1]

    def needs_triage(self, threshold: float) -> bool:
        return self.source == "model" and self.confidence < threshold

    def to_event_data(self, threshold: float) -> dict[str, Any]:
        """The ``classification`` record of the ``filed`` event (integers and text only: it is hashed).

        The words the rules found in the complaint are all in ``rule_evidence`` (its ``matches``
        and its ``negated`` cues), and nowhere else, so that they can be protected as one field."""
        rules = self.rules
        data: dict[str, Any] = {
            "category": self.category,
            "source": self.source,
            "language": rules.language,
            "score": rules.score,
            "scores": dict(rules.scores),
            "rules_category": rules.category,
            "rules_version": rules.rules_version,
            "rule_evidence": {
                "matches": [m.to_dict() for m in rules.evidence],
                "negated": [m.to_dict() for m in rules.negated],
            },
        }
        if self.model is not None and self.source == "model":
            data["model"] = self.model.describe()
            data["top"] = [{"category": name, "probability_bp": _bp(p)} for name, p in self.ranked[:TOP]]
            data["margin_bp"] = _bp(self.margin)
            data["threshold_bp"] = _bp(threshold)
            data["needs_triage"] = self.needs_triage(threshold)
        return data


def _bp(probability: float) -> int:
    return int(round(probability * BASIS))


class LearnedClassifier:
    """The head over the encoder and the rules; the rules alone when there is no model or encoder."""

    def __init__(self, rules: Classifier, model: TriageModel | None = None, embedder: Embedder | None = None) -> None:
        self.rules = rules
        self.model = model if model is not None and embedder is not None else None
        self.embedder = embedder if self.model is not None else None
        if self.model is not None and embedder is not None and self.model.embedder_version != embedder.version:
            raise ValueError(
                f"model {self.model.version} was trained on encoder {self.model.embedder_version[:12]}, "
                f"not {embedder.version[:12]}"
            )

    def classify(self, subject: str, description: str = "") -> Prediction:
        return self.classify_texts([complaint_text(subject, description)])[0]

    def classify_texts(self, texts: Sequence[str], cache: EmbeddingCache | None = None) -> list[Prediction]:
        model = self.model
        names = model.categories if model is not None else triage_categories()
        scores, results = rule_features(self.rules, texts, names)
        vectors: Vectors | None = None
        if model is not None and self.embedder is not None:
            try:
                vectors = cache.vectors(texts) if cache is not None else self.embedder.embed(texts)
            except EmbedderUnavailable:
                vectors = None
        if model is None or vectors is None:
            return [Prediction(r.category, "rules", _rules_ranked(r), r) for r in results]
        probabilities = model.head.probabilities(features(vectors, texts, scores))
        predictions = []
        for row, result in zip(probabilities, results, strict=True):
            order = np.argsort(-row, kind="stable")
            ranked = tuple((names[i], float(row[i])) for i in order)
            predictions.append(Prediction(ranked[0][0], "model", ranked, result, model))
        return predictions


def _rules_ranked(result: Classification) -> tuple[tuple[str, float], ...]:
    total = sum(points for _, points in result.scores)
    if not total:
        return ((result.category, 1.0),)
    return tuple((name, points / total) for name, points in result.scores)


# --- evaluating ------------------------------------------------------------------------------


def evaluate(
    classifier: LearnedClassifier, examples: Sequence[Example], cache: EmbeddingCache | None = None
) -> dict[str, Scores]:
    """Scores over all examples and per language (keys ``all``, then each language present)."""
    predictions = classifier.classify_texts([e.text for e in examples], cache)
    names = classifier.model.categories if classifier.model is not None else triage_categories()
    result = {"all": score(names, [e.category for e in examples], [p.category for p in predictions])}
    for lang in sorted({e.lang for e in examples}):
        pairs = [(e.category, p.category) for e, p in zip(examples, predictions, strict=True) if e.lang == lang]
        result[lang] = score(names, [a for a, _ in pairs], [b for _, b in pairs])
    return result


def kfold(
    examples: Sequence[Example],
    cache: EmbeddingCache,
    rules: Classifier,
    *,
    folds: int = 5,
    categories: Sequence[str] | None = None,
) -> list[float]:
    """Macro-F1 of each of ``folds`` held-out folds (examples dealt round-robin: deterministic)."""
    results = []
    for fold in range(folds):
        train = [e for i, e in enumerate(examples) if i % folds != fold]
        held = [e for i, e in enumerate(examples) if i % folds == fold]
        model = fit_model(train, cache, rules, categories)
        classifier = LearnedClassifier(rules, model, cache.embedder)
        results.append(evaluate(classifier, held, cache)["all"].macro_f1)
    return results


# --- the desk's triage directory -------------------------------------------------------------

SETTINGS_FILE = "settings.yaml"
TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
MODEL_FILE = "model.npz"
EMBEDDINGS_FILE = "embeddings.npz"


@dataclass(frozen=True)
class TriageSet:
    """A desk's ``triage/`` directory: its labelled set (training and frozen evaluation splits),
    the shipped model fitted on the training split, and the confidence below which a case is
    flagged ``needs_triage``."""

    directory: Path
    train: tuple[Example, ...]
    evaluation: tuple[Example, ...]
    confidence: float
    model: TriageModel | None = None
    # The categories its labels and model may name: the desk's (desk/loader.py).
    categories: tuple[str, ...] = DEFAULT_CATEGORIES.ids

    @property
    def embeddings(self) -> Path:
        return self.directory / EMBEDDINGS_FILE


def load_triage_set(directory: Path, categories: Sequence[str] = DEFAULT_CATEGORIES.ids) -> TriageSet:
    """Load and check a desk's ``triage/`` directory, whose labels and model name ``categories``
    (the desk's); every problem with its file and line."""
    problems: list[Problem] = []
    confidence = 0.5
    settings = directory / SETTINGS_FILE
    if settings.is_file():
        located, _ = read_located(settings)
        reader = Reader(located)
        section = reader.section("triage", {"confidence"})
        raw = section.get("confidence", 0.5)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
            reader.problem(("triage", "confidence"), f"confidence must be a number from 0 to 1, got {raw!r}")
        else:
            confidence = float(raw)
        problems.extend(reader.problems)
    splits: dict[str, tuple[Example, ...]] = {}
    for name in (TRAIN_FILE, EVAL_FILE):
        path = directory / name
        if not path.is_file():
            problems.append(Problem(str(path), 1, f"the triage directory needs {name}"))
            continue
        try:
            splits[name] = tuple(load_examples(path, categories))
        except IntakeConfigError as exc:
            problems.extend(exc.problems)
    model = None
    if (directory / MODEL_FILE).is_file():
        try:
            model = TriageModel.from_bytes((directory / MODEL_FILE).read_bytes())
        except (OSError, ValueError, KeyError) as exc:
            problems.append(Problem(str(directory / MODEL_FILE), 1, f"not a triage model: {exc}"))
    if model is not None and set(model.categories) - set(categories):
        # A model would suggest categories the desk does not have.
        unknown = ", ".join(sorted(set(model.categories) - set(categories)))
        problems.append(Problem(str(directory / MODEL_FILE), 1, f"the model predicts unknown categories: {unknown}"))
    if problems:
        raise IntakeConfigError(problems)
    return TriageSet(directory, splits[TRAIN_FILE], splits[EVAL_FILE], confidence, model, tuple(categories))
