"""Triage that learns from mediators: corrections from the log, retraining, the model registry,
the triage queue, and the rulebook entries a case's decisions cite (the database half of
intake/learning.py and intake/rulebook.py).

A mediator's re-categorisation is the ``category_corrected`` event (the ``recategorise`` action,
policy-checked like any command), so every training example it yields is in the tamper-evident
log. ``retrain`` builds the training set from the desk's shipped set plus the latest correction
of each case (cases filed by anyone but a consumer left out: the classifier learns from
consumers' words), scores the candidate and the model in force on the frozen evaluation split,
and promotes the candidate only if its macro-F1 does not drop. Every fitted model is stored
(``triage_models``), promoted or not; the newest promoted one classifies new complaints, and each
case's ``filed`` event keeps the version that classified it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from cases.personal import PersonalData
from cases.triage import Triage
from intake.classify import detect_language
from intake.embedder import packaged_embedder
from intake.evaluation import Scores
from intake.learning import (
    EmbeddingCache,
    Example,
    LearnedClassifier,
    TriageModel,
    complaint_text,
    evaluate,
    fit_model,
    kfold,
)
from intake.rulebook import Rulebook, RuleEntry
from privacy.markers import ERASED
from store.db import Database
from store.tables import CASES, EVENTS, TRIAGE_MODELS


def _data(body: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body)["data"]
    return data


def corrections(db: Database, privacy: PersonalData | None = None) -> list[Example]:
    """The latest correction of each case as a labelled example of its complaint's text. The
    texts in the log are markers when ``privacy`` protects them: they are read through it, and a
    complaint whose text was erased is not learned from."""
    with db.read() as session:
        rows = session.execute(
            select(EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.body)
            .where(EVENTS.c.type == "category_corrected")
            .order_by(EVENTS.c.case_id, EVENTS.c.seq)
        ).all()
        latest: dict[str, str] = {}
        for row in rows:
            latest[row.case_id] = _data(row.body)["to"]
        if not latest:
            return []
        filed = session.execute(
            select(EVENTS.c.case_id, EVENTS.c.actor_role, EVENTS.c.body).where(
                EVENTS.c.case_id.in_(sorted(latest)), EVENTS.c.seq == 1
            )
        ).all()
        consumers = [row for row in sorted(filed, key=lambda r: str(r.case_id)) if row.actor_role == "consumer"]
        texts = {str(row.case_id): _data(row.body) for row in consumers}
        if privacy is not None:
            texts = privacy.reveal(session, texts)
    examples = []
    for case_id, data in texts.items():
        if ERASED in (data["subject"], data["description"]):
            continue
        text = complaint_text(data["subject"], data["description"])
        examples.append(Example(text, latest[case_id], detect_language(text), source=case_id))
    return examples


def promoted_model(db: Database) -> TriageModel | None:
    """The newest promoted model, or None (the desk's shipped model is in force)."""
    with db.read() as session:
        row = session.execute(
            select(TRIAGE_MODELS.c.content)
            .where(TRIAGE_MODELS.c.promoted.is_(True))
            .order_by(TRIAGE_MODELS.c.created_at.desc())
            .limit(1)
        ).first()
    return TriageModel.from_bytes(row.content) if row is not None else None


@dataclass(frozen=True)
class Retraining:
    """What ``retrain`` did: the candidate, the model it was compared with, their scores."""

    candidate: TriageModel
    current: TriageModel | None
    candidate_scores: dict[str, Scores]
    current_scores: dict[str, Scores] | None
    folds: list[float]
    corrections: int
    promoted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.version,
            "current": self.current.version if self.current is not None else None,
            "promoted": self.promoted,
            "corrections": self.corrections,
            "examples": self.candidate.examples,
            "frozen": {k: v.to_dict() for k, v in self.candidate_scores.items()},
            "current_frozen": {k: v.to_dict() for k, v in (self.current_scores or {}).items()},
            "kfold_macro_f1": [round(f, 4) for f in self.folds],
        }


def retrain(
    db: Database, triage: Triage, now: datetime, *, folds: int = 5, privacy: PersonalData | None = None
) -> Retraining:
    """Fit a candidate on the shipped set plus the corrections; promote it if macro-F1 on the
    frozen split does not drop below the model in force's. Both outcomes are recorded."""
    triage_set = triage.triage_set
    if triage_set is None:
        raise ValueError("the desk has no triage directory (triage/) to train from")
    fixes = corrections(db, privacy)
    training = [*triage_set.train, *fixes]
    cache = EmbeddingCache(packaged_embedder(), triage_set.embeddings)
    candidate = fit_model(training, cache, triage.classifier, triage_set.categories)
    scored = evaluate(LearnedClassifier(triage.classifier, candidate, cache.embedder), triage_set.evaluation, cache)
    current = triage.model
    current_scores = (
        evaluate(LearnedClassifier(triage.classifier, current, cache.embedder), triage_set.evaluation, cache)
        if current is not None
        else None
    )
    fold_scores = (
        kfold(training, cache, triage.classifier, folds=folds, categories=triage_set.categories) if folds > 1 else []
    )
    promoted = current_scores is None or scored["all"].macro_f1 >= current_scores["all"].macro_f1
    result = Retraining(candidate, current, scored, current_scores, fold_scores, len(fixes), promoted)
    candidate = replace(candidate, metrics=result.to_dict())
    with db.write() as session:
        exists = session.execute(
            select(TRIAGE_MODELS.c.version).where(TRIAGE_MODELS.c.version == candidate.version)
        ).first()
        if exists is None:
            session.execute(
                TRIAGE_MODELS.insert().values(
                    version=candidate.version,
                    created_at=now,
                    promoted=promoted,
                    examples=len(training),
                    corrections=len(fixes),
                    training_set=candidate.training_set,
                    metrics=json.dumps(result.to_dict()),
                    content=candidate.to_bytes(),
                )
            )
    return replace(result, candidate=candidate)


# --- the triage queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Uncertain:
    """An open case the classifier was unsure of: its two best categories and their margin."""

    case_id: str
    category: str
    top: tuple[tuple[str, int], ...]  # (category, probability in basis points), best first
    margin_bp: int
    model_version: str


def triage_queue(db: Database, *, limit: int = 100) -> list[Uncertain]:
    """Open cases flagged needs_triage, the smallest margin between the top two first (the
    corrections that teach the most), then the oldest."""
    with db.read() as session:
        rows = session.execute(
            select(CASES.c.id, CASES.c.category, EVENTS.c.body)
            .join(EVENTS, (EVENTS.c.case_id == CASES.c.id) & (EVENTS.c.seq == 1))
            .where(CASES.c.closed_at.is_(None), CASES.c.flags.like("%needs_triage%"))
            .order_by(CASES.c.pk)
        ).all()
    found = []
    for row in rows:
        record = _data(row.body).get("classification") or {}
        top = tuple((t["category"], int(t["probability_bp"])) for t in record.get("top", ()))
        version = record.get("model", {}).get("version", "")
        found.append(Uncertain(row.id, row.category, top[:2], int(record.get("margin_bp", 0)), version))
    found.sort(key=lambda u: u.margin_bp)  # stable: equal margins keep filing order
    return found[:limit]


# --- the rulebook on a case -------------------------------------------------------------------


def cited_on(db: Database, case_id: str) -> list[str]:
    """Every rulebook entry the case's decisions cite, in the order first cited."""
    with db.read() as session:
        bodies = session.execute(
            select(EVENTS.c.body)
            .where(EVENTS.c.case_id == case_id, EVENTS.c.type == "transitioned")
            .order_by(EVENTS.c.seq)
        ).scalars()
        cited: list[str] = []
        for body in bodies:
            for entry in _data(body).get("citations", ()):
                if entry not in cited:
                    cited.append(entry)
    return cited


def applicable(rulebook: Rulebook, category: str, cited: Sequence[str]) -> tuple[list[RuleEntry], list[RuleEntry]]:
    """The entries that apply to the category, and those cited on the case."""
    return rulebook.for_category(category), rulebook.cited(cited)
