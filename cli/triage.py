"""`disputes intake evaluate|retrain`: the learned triage scored on the desk's frozen evaluation
split, and retrained from the mediators' corrections (cases/learning.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cases.triage import Triage
from cli.common import desk_or_exit, open_engine, out
from cli.desk import intake_app
from intake.embedder import packaged_embedder
from intake.evaluation import Scores
from intake.learning import EmbeddingCache, LearnedClassifier, evaluate


def _print_scores(title: str, scores: dict[str, Scores], *, matrix: bool) -> None:
    out.print(title)
    for name, found in scores.items():
        out.print(
            f"  {name:<4} texts {found.total:>4}  accuracy {found.accuracy:.3f}  macro-F1 {found.macro_f1:.3f}",
            markup=False,
        )
    if matrix:
        out.print("confusion matrix (rows: label, columns: predicted)", markup=False)
        out.print(scores["all"].table(), markup=False, soft_wrap=True)


@intake_app.command("evaluate")
def intake_evaluate(
    ctx: typer.Context,
    desk: Annotated[Path | None, typer.Option(help="Desk directory (default: the configured one).")] = None,
) -> None:
    """Score the desk's triage model on its frozen evaluation split (never used for fitting):
    accuracy, macro-F1 over all categories and per language, the confusion matrix; and the
    keyword rules alone, for comparison."""
    loaded = desk_or_exit(ctx, desk)
    triage = Triage.of_desk(loaded)
    if triage.triage_set is None or triage.learned is None:
        out.print("this desk has no triage model (triage/model.npz)", markup=False)
        raise typer.Exit(1)
    cache = EmbeddingCache(packaged_embedder(), triage.triage_set.embeddings)
    model = triage.learned.model
    assert model is not None
    out.print(f"model {model.name} {model.version} ({model.examples} training examples)", markup=False)
    _print_scores("learned", evaluate(triage.learned, triage.triage_set.evaluation, cache), matrix=True)
    _print_scores(
        "keyword rules alone",
        evaluate(LearnedClassifier(triage.classifier), triage.triage_set.evaluation),
        matrix=False,
    )


@intake_app.command("retrain")
def intake_retrain(
    ctx: typer.Context,
    folds: Annotated[int, typer.Option(min=0, max=10, help="k-fold cross-validation folds (0: none).")] = 5,
) -> None:
    """Retrain from the shipped set plus the latest correction of each case; promote the new model
    only if its macro-F1 on the frozen split does not drop. Every model is recorded."""
    with open_engine(ctx) as engine:
        result = engine.cases.retrain(folds=folds)
    current = result.current.version if result.current is not None else "none"
    out.print(
        f"candidate {result.candidate.version} from {result.candidate.examples} examples "
        f"({result.corrections} corrections); in force before: {current}",
        markup=False,
    )
    _print_scores("candidate on the frozen split", result.candidate_scores, matrix=False)
    if result.current_scores is not None:
        _print_scores("model in force on the frozen split", result.current_scores, matrix=False)
    if result.folds:
        mean = sum(result.folds) / len(result.folds)
        out.print(f"{len(result.folds)}-fold macro-F1: {mean:.3f} ({', '.join(f'{f:.3f}' for f in result.folds)})")
    out.print("promoted" if result.promoted else "not promoted: macro-F1 would drop", markup=False)
