"""The policy set in force: its version and its policies with reasons."""

from __future__ import annotations

from pydantic import BaseModel

from policies.loader import PolicyInfo


class PolicyPublic(BaseModel):
    id: str
    effect: str
    reason: str
    file: str
    line: int

    @classmethod
    def of(cls, p: PolicyInfo) -> PolicyPublic:
        return cls(id=p.id, effect=p.effect, reason=p.reason, file=p.file, line=p.line)


class PoliciesPublic(BaseModel):
    version: str
    data: list[PolicyPublic]
