"""How good a classifier is on labelled texts: accuracy, macro-F1 and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scores:
    """``confusion[i][j]``: texts of category ``categories[i]`` predicted as ``categories[j]``."""

    categories: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.confusion)

    @property
    def accuracy(self) -> float:
        right = sum(self.confusion[i][i] for i in range(len(self.categories)))
        return right / self.total if self.total else 0.0

    def f1(self, index: int) -> float:
        hits = self.confusion[index][index]
        predicted = sum(row[index] for row in self.confusion)
        actual = sum(self.confusion[index])
        if hits == 0:
            return 0.0
        precision, recall = hits / predicted, hits / actual
        return 2 * precision * recall / (precision + recall)

    @property
    def macro_f1(self) -> float:
        """The mean F1 over the categories that occur in the labels."""
        present = [i for i in range(len(self.categories)) if sum(self.confusion[i])]
        return sum(self.f1(i) for i in present) / len(present) if present else 0.0

    def recall(self, category: str) -> float:
        index = self.categories.index(category)
        actual = sum(self.confusion[index])
        return self.confusion[index][index] / actual if actual else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "texts": self.total,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "categories": list(self.categories),
            "confusion": [list(row) for row in self.confusion],
        }

    def table(self) -> str:
        """The confusion matrix as a Markdown table (rows: the label; columns: the prediction)."""
        short = [c[:12] for c in self.categories]
        lines = ["| label \\ predicted | " + " | ".join(short) + " |", "|---|" + "---:|" * len(short)]
        for name, row in zip(self.categories, self.confusion, strict=True):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        return "\n".join(lines)


def score(categories: Sequence[str], labels: Sequence[str], predicted: Sequence[str]) -> Scores:
    index = {name: i for i, name in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for label, guess in zip(labels, predicted, strict=True):
        matrix[index[label]][index[guess]] += 1
    return Scores(tuple(categories), tuple(tuple(row) for row in matrix))
