"""Write the default desk's labelled triage set (desk/default/triage/train.jsonl and eval.jsonl).

Run: ``python -m tools.triage_data``. Deterministic: the same fragments give the same files.

Each category has hand-written complaint templates per language (tools/triage_fragments_*.py).
The last ``EVAL_TEMPLATES`` templates of a category are used only for the evaluation split, so
the frozen split holds wording never seen in fitting; the rest, and ``EXTRA_TRAIN``, make the
training split. A
template is filled with different products, openers and closers, and about one text in six
adds a minor second issue from another category (the label stays the main issue).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

from tools import triage_fragments_en, triage_fragments_zh

EVAL_TEMPLATES = 8
TRAIN_PER_CATEGORY = 160
EVAL_PER_CATEGORY = 40
TARGET = Path(__file__).resolve().parent.parent / "desk" / "default" / "triage"


def _compose(lang: str, fragments: object, template: str, category: str, rng: random.Random) -> str:
    products: list[str] = fragments.PRODUCTS  # type: ignore[attr-defined]
    product = rng.choice(products)
    opener = rng.choice(fragments.OPENERS)  # type: ignore[attr-defined]
    closer = rng.choice(fragments.CLOSERS)  # type: ignore[attr-defined]
    body = template
    secondary = ""
    if rng.random() < 1 / 6:
        others = [c for c in fragments.SECONDARY if c != category]  # type: ignore[attr-defined]
        secondary = rng.choice(fragments.SECONDARY[rng.choice(others)])  # type: ignore[attr-defined]
    if lang == "zh":
        text = opener + body + ("，" + secondary if secondary else "") + "。" + closer
    else:
        sentence = body + (", " + secondary if secondary else "") + "."
        text = opener + sentence[0].upper() + sentence[1:] + closer
        text = text[0].upper() + text[1:]
    return str(text).replace("{p}", str(product))


def build() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    train: list[dict[str, str]] = []
    evaluation: list[dict[str, str]] = []
    for lang, fragments in (("zh", triage_fragments_zh), ("en", triage_fragments_en)):
        rng = random.Random(f"triage-{lang}")
        for category, templates in fragments.TEMPLATES.items():
            for split, chosen, count in (
                (train, [*templates[:-EVAL_TEMPLATES], *fragments.EXTRA_TRAIN[category]], TRAIN_PER_CATEGORY),
                (evaluation, templates[-EVAL_TEMPLATES:], EVAL_PER_CATEGORY),
            ):
                seen: set[str] = set()
                index = 0
                while len(seen) < count:
                    template = chosen[index % len(chosen)]
                    index += 1
                    text = _compose(lang, fragments, template, category, rng)
                    if text in seen:
                        continue
                    seen.add(text)
                    split.append({"text": text, "category": category, "lang": lang})
    return train, evaluation


def fit_shipped() -> None:
    """Fit the shipped model on the training split and cache the embeddings of both splits."""
    from intake.classify import load_classifier
    from intake.embedder import packaged_embedder
    from intake.learning import EmbeddingCache, LearnedClassifier, evaluate, fit_model, load_triage_set

    triage = load_triage_set(TARGET)
    cache = EmbeddingCache(packaged_embedder(), triage.embeddings)
    cache.save([e.text for e in (*triage.train, *triage.evaluation)])
    rules = load_classifier()
    model = fit_model(triage.train, cache, rules)
    scores = evaluate(LearnedClassifier(rules, model, cache.embedder), triage.evaluation, cache)
    model = replace(model, metrics={name: s.to_dict() for name, s in scores.items()})
    (TARGET / "model.npz").write_bytes(model.to_bytes())
    print(f"model {model.version}: accuracy {scores['all'].accuracy:.3f}, macro-F1 {scores['all'].macro_f1:.3f}")


def main() -> None:
    train, evaluation = build()
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", evaluation)):
        with (TARGET / name).open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} texts")
    fit_shipped()


if __name__ == "__main__":
    main()
