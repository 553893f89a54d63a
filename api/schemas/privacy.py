"""Personal data: an erasure asked for and what it did."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Identifier, RequiredText, Strict, identifier_field, text
from cases.erasure import ErasureOutcome


class ErasureCreate(Strict):
    subject: Identifier = identifier_field(description="The consumer's user id at the marketplace (their token's sub).")
    basis: RequiredText = text(1, 200, description="The legal basis, recorded in every affected case's log.")

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"subject": "c-1", "basis": "PIPL Art. 47 request"}]}
    )


class ErasurePublic(BaseModel):
    id: int = Field(description="The erasure's number in the erasure record.")
    status: str = Field(description="done, or deferred while a case is open or under legal hold.")
    erased: list[str] = Field(description="Cases whose personal data is now erased.")
    deferred: dict[str, str] = Field(description="Cases erased when they close and are released, with why not yet.")

    @classmethod
    def of(cls, outcome: ErasureOutcome) -> ErasurePublic:
        return cls(
            id=outcome.erasure_id or 0,
            status="deferred" if outcome.deferred else "done",
            erased=list(outcome.erased),
            deferred=dict(outcome.deferred),
        )
