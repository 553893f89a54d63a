"""Audit: a case replayed to a point, and the signed checkpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.schemas.cases import CasePublic, EventPublic


class ReplayPublic(BaseModel):
    case: CasePublic
    offers: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    info_requests: list[dict[str, Any]]
    events: list[EventPublic]


class CheckpointsPublic(BaseModel):
    public_key: str | None
    data: list[dict[str, Any]]
    next_cursor: str | None
