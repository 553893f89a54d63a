"""Triage and the rulebook over HTTP: a mediator's category correction, the uncertain cases, the
rulebook entries that apply to a case and those its decisions cite."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import CategoryId, RequiredText, Strict, text
from cases.learning import Uncertain
from intake.rulebook import RuleEntry


class CategoryCorrection(Strict):
    category: CategoryId = Field(description="The category the case belongs in (one of the desk's).")
    reason: RequiredText = text(1, 4000, description="Why the category was wrong (part of the case's log).")


class RuleEntryPublic(BaseModel):
    id: str
    citation: str
    title: dict[str, str] = Field(description="By language: zh-CN, en.")
    summary: dict[str, str] = Field(description="Plain language, by language: zh-CN, en.")
    categories: list[str]

    @classmethod
    def of(cls, entry: RuleEntry) -> RuleEntryPublic:
        return cls(
            id=entry.id,
            citation=entry.citation,
            title=dict(entry.title),
            summary=dict(entry.summary),
            categories=list(entry.categories),
        )


class CaseRulesPublic(BaseModel):
    case_id: str
    applicable: list[RuleEntryPublic] = Field(description="The entries that apply to the case's category.")
    cited: list[RuleEntryPublic] = Field(description="The entries the case's decisions cite, in plain language.")


class ChoicePublic(BaseModel):
    category: str
    probability_bp: int = Field(description="The classifier's probability in basis points (1/10,000).")


class UncertainPublic(BaseModel):
    case_id: str
    category: str = Field(description="The category the case was filed under: the classifier's best guess.")
    choices: list[ChoicePublic] = Field(description="The classifier's top two categories.")
    margin_bp: int = Field(description="The top probability minus the second, in basis points.")
    model_version: str

    @classmethod
    def of(cls, item: Uncertain) -> UncertainPublic:
        return cls(
            case_id=item.case_id,
            category=item.category,
            choices=[ChoicePublic(category=c, probability_bp=p) for c, p in item.top],
            margin_bp=item.margin_bp,
            model_version=item.model_version,
        )


class TriageQueuePublic(BaseModel):
    data: list[UncertainPublic]
