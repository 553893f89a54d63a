"""Triage on the case log: classify, prioritise and route new complaints (the database half of intake/).

On filing (``CaseService.triage``, in the filing's transaction, cases/service.py):
a complaint without a category is classified from its subject and description and the
``filed`` event records the category with the matched evidence; the priority rules set
its priority from the claim, the category, the merchant's recent complaints and the
consumer's vulnerability. (A flagged merchant's standing is not the intake's: filing,
like every command, reads it from the merchant's log and records it, cases/merchants.py.)
Then the router assigns the case as ``system`` through the normal command path (policy
checked) to the eligible mediator with the least open weighted load. When nobody is
eligible the case waits: the assignment clock's warning tries again (the sweep's warning
subscription :func:`cases.service.reroute_on_warning`, wired at bootstrap), and its breach
escalates the case as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from cases.commands import CommandContext, execute_command
from cases.mediators import open_loads
from cases.queries import load_snapshot
from desk.loader import Desk
from intake.classify import Classifier, default_classification_path, detect_language, load_classification
from intake.embedder import EmbedderUnavailable, packaged_embedder
from intake.learning import LearnedClassifier, TriageModel, TriageSet
from intake.priority import PriorityFacts, PriorityRules, default_priority_path, load_priority
from intake.review import ReviewRules, default_review_path, load_review
from intake.routing import Candidate, CaseNeeds, choose, on_duty
from intake.supervision import SupervisionRules, default_supervision_path, load_supervision
from sla.calendar import Calendar
from store.tables import CASES, MEDIATORS
from workflow.errors import DisputeError
from workflow.model import SYSTEM, CaseSnapshot, NewCase

log = logging.getLogger("disputes.intake")


@dataclass(frozen=True)
class IntakePaths:
    """The rule files of a desk; ``for_directory`` finds them in a configuration directory."""

    classification: Path = default_classification_path()
    priority: Path = default_priority_path()
    supervision: Path = default_supervision_path()
    review: Path = default_review_path()

    @classmethod
    def for_directory(cls, directory: Path | None) -> IntakePaths:
        """A desk directory's ``intake/*.yaml`` where present, the packaged files otherwise."""
        found = cls()
        if directory is None:
            return found
        for name in ("classification", "priority", "supervision", "review"):
            candidate = directory / "intake" / f"{name}.yaml"
            if candidate.is_file():
                found = replace(found, **{name: candidate})
        return found


@dataclass(frozen=True)
class Triage:
    """The desk's triage with one set of rule files. Immutable; a reload builds a new one and the
    case service serves it from its next filing on. ``route``: assign new cases at once."""

    classifier: Classifier
    priority: PriorityRules
    supervision: SupervisionRules
    route: bool = True
    # Third-party review: sampling, redaction, rubric (applied by reports/review.py).
    review: ReviewRules = ReviewRules()
    # The learned classifier over the rules (intake/learning.py); None: the rules alone decide.
    learned: LearnedClassifier | None = None
    # Below this probability for its best category a case is flagged needs_triage.
    confidence: float = 0.5
    triage_set: TriageSet | None = None

    @classmethod
    def of_desk(cls, desk: Desk) -> Triage:
        """The intake of a loaded, validated desk (its intake parts and its triage directory)."""
        classifier = Classifier(desk.parts["classification"])
        triage_set: TriageSet | None = desk.parts.get("triage")
        learned = None
        if triage_set is not None and triage_set.model is not None:
            learned = LearnedClassifier(classifier, triage_set.model, packaged_embedder())
        return cls(
            classifier=classifier,
            priority=desk.parts["priority"],
            supervision=desk.parts["supervision"],
            review=desk.parts["review"],
            learned=learned,
            confidence=triage_set.confidence if triage_set is not None else 0.5,
            triage_set=triage_set,
        )

    @property
    def suggests(self) -> bool:
        """Whether filing suggests a category: the desk has keyword rules or a learned model (a desk
        with its own categories and neither files only with the filer's category)."""
        return bool(self.classifier.rules.categories) or self.model is not None

    def with_model(self, model: TriageModel) -> Triage:
        """This triage classifying with ``model`` (a promoted retrained head)."""
        return replace(self, learned=LearnedClassifier(self.classifier, model, packaged_embedder()))

    @property
    def model(self) -> TriageModel | None:
        return self.learned.model if self.learned is not None else None

    @classmethod
    def load(cls, paths: IntakePaths = IntakePaths(), *, route: bool = True) -> Triage:
        """Load and validate every file; raises ``IntakeConfigError`` (file:line) on any problem."""
        return cls(
            classifier=Classifier(load_classification(paths.classification)),
            priority=load_priority(paths.priority),
            supervision=load_supervision(paths.supervision),
            route=route,
            review=load_review(paths.review),
        )

    # --- filing ---------------------------------------------------------------------------

    def warm(self) -> int:
        """Load the encoder and fill its table with the sentence pieces of the desk's training
        texts (``disputes serve`` runs this on a thread at start-up): the first complaints filed
        without a category then wait neither for the encoder's load nor for pieces it has not
        seen. Returns how many pieces were added; nothing to do without a learned triage."""
        if self.learned is None or self.learned.embedder is None or self.triage_set is None:
            return 0
        try:
            return self.learned.embedder.warm([e.text for e in self.triage_set.train])
        except EmbedderUnavailable:
            return 0

    def classify(self, new_case: NewCase) -> tuple[NewCase, dict[str, Any]]:
        """A complaint filed without a category, classified: the case under the best guess and
        what the ``filed`` event records of how. CPU only, no database: the filing runs it
        before its transaction opens, so no lock is held while the encoder works."""
        if new_case.category or not self.suggests:
            return new_case, {}
        classifier = self.learned or LearnedClassifier(self.classifier)
        prediction = classifier.classify(new_case.subject, new_case.description)
        triage: dict[str, Any] = {"classification": prediction.to_event_data(self.confidence)}
        if prediction.needs_triage(self.confidence):
            triage["flags"] = ["needs_triage"]
        return replace(new_case, category=prediction.category), triage

    def prepare(
        self, session: Session, new_case: NewCase, now: datetime, classified: Mapping[str, Any] | None = None
    ) -> tuple[NewCase, dict[str, Any]]:
        """Triage in the filing's transaction: the classification (``classified`` when
        :meth:`classify` ran before it), then the priority rules, which count the merchant's
        recent complaints."""
        if classified:
            triage = dict(classified)
        else:
            new_case, triage = self.classify(new_case)
        repeats = session.execute(
            select(func.count())
            .select_from(CASES)
            .where(CASES.c.merchant_id == new_case.merchant_id, CASES.c.created_at >= now - self.priority.repeat_window)
        ).scalar_one()
        facts = PriorityFacts(
            category=new_case.category,
            claim_amount=new_case.claim_amount,
            currency=new_case.currency,
            repeat_complaints=int(repeats),
            vulnerable_consumer=new_case.vulnerable_consumer,
        )
        decision = self.priority.decide(facts, floor=new_case.priority)
        new_case = replace(new_case, priority=decision.level)
        triage["priority_rules"] = decision.to_event_data(facts)
        return new_case, triage

    def weight(self, priority: str) -> int:
        """The load units a case of this priority level takes of a mediator's capacity."""
        return self.priority.weight(priority)


# --- routing ----------------------------------------------------------------------------------


def candidates(session: Session, intake: Triage, calendars: Mapping[str, Calendar], now: datetime) -> list[Candidate]:
    """Every active mediator as the router sees them now."""
    rows = session.execute(select(MEDIATORS).where(MEDIATORS.c.active.is_(True)).order_by(MEDIATORS.c.id)).all()
    loads = open_loads(session, [r.id for r in rows], intake.priority.weight)
    return [
        Candidate(
            id=r.id,
            categories=frozenset(p for p in r.categories.split(",") if p),
            languages=frozenset(p for p in r.languages.split(",") if p),
            capacity=r.capacity,
            load=loads.get(r.id, 0),
            on_duty=on_duty(calendars.get(r.calendar), now),
            active=r.active,
            last_assigned_at=r.last_assigned_at,
        )
        for r in rows
    ]


def route_case(
    session: Session, service: CommandContext, intake: Triage, case_id: str, now: datetime, *, why: str
) -> CaseSnapshot | None:
    """Assign the case to the fairest eligible mediator as ``system``; None when it must wait.

    Runs in the caller's transaction, the assignment in a savepoint: a refusal (a desk's
    policy forbidding it, say) leaves the case filed and unassigned, never half-written."""
    case = load_snapshot(session, case_id)
    if case.mediator_id is not None:
        return None
    machine = service.registry.machine(case.workflow_version, session)
    assigning = (t.trigger for t in machine.definition.transitions if t.assigns_mediator)
    trigger = next((name for name in assigning if machine.may(case.state, name)), None)
    if trigger is None:
        return None
    texts = (case.subject, case.description)
    if service.privacy is not None:
        # The log holds markers: the language is read from the values, in memory only.
        texts = service.privacy.reveal(session, texts)
    needs = CaseNeeds(
        category=case.category,
        language=detect_language("\n".join(texts)),
        weight=intake.priority.weight(case.priority),
    )
    pool = {c.id: c for c in candidates(session, intake, service.calendars(), now)}
    while True:
        pick = choose(pool.values(), needs)
        if pick is None:
            log.info(
                "case %s waits: no eligible mediator (%s, %s, weight %d)",
                case_id,
                needs.category,
                needs.language,
                needs.weight,
            )
            return None
        if service.db.dialect == "postgresql":
            # Concurrent filings may pick the same mediator: take their row's lock, then count
            # again, so that two transactions never both fill the last place.
            session.execute(select(MEDIATORS.c.id).where(MEDIATORS.c.id == pick.id).with_for_update())
            load = open_loads(session, [pick.id], intake.priority.weight).get(pick.id, 0)
            if load != pick.load:
                pool[pick.id] = replace(pick, load=load)
                continue
        try:
            with session.begin_nested():
                session.execute(update(MEDIATORS).where(MEDIATORS.c.id == pick.id).values(last_assigned_at=now))
                return execute_command(
                    session,
                    service,
                    actor=SYSTEM,
                    case_id=case_id,
                    name=trigger,
                    data={"mediator_id": pick.id},
                    reason=f"routed {why}: {needs.category}, {needs.language}, weight {needs.weight}; "
                    f"least open load ({pick.load} of {pick.capacity})",
                )
        except DisputeError as exc:
            log.warning("case %s could not be routed to %s: %s", case_id, pick.id, exc)
            return None


def route_waiting(service: CommandContext, intake: Triage, *, limit: int = 1000) -> int:
    """Try to route every unassigned case that can be assigned (e.g. after adding mediators);
    return how many were assigned. Each case is its own transaction."""
    with service.db.read() as session:
        waiting = (
            session.execute(
                select(CASES.c.id)
                .where(CASES.c.mediator_id.is_(None), CASES.c.closed_at.is_(None))
                .order_by(CASES.c.pk)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    routed = 0
    for case_id in waiting:
        work = partial(
            route_case, service=service, intake=intake, case_id=case_id, now=service.clock.now(), why="on request"
        )
        routed += service.db.run_write(work) is not None
    return routed
