"""SLA clocks: a case's timers and the queue by urgency."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.cases import CasePublic
from sla.planner import TimerView


class TimerPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "merchant_response",
                    "status": "running",
                    "calendar": "24x7",
                    "goal": "48 hours",
                    "started_at": "2026-11-28T01:20:00.000000Z",
                    "due_at": "2026-11-30T01:20:00.000000Z",
                    "warn_at": "2026-11-29T13:20:00.000000Z",
                    "warned": False,
                    "remaining_business_seconds": 172800,
                    "elapsed_business_seconds": 0,
                    "paused_business_seconds": 0,
                    "ended_at": None,
                }
            ]
        }
    )

    name: str
    status: str
    calendar: str
    goal: str
    started_at: str
    due_at: str
    warn_at: str | None
    warned: bool
    remaining_business_seconds: int = Field(description="Business seconds left; negative once overdue.")
    elapsed_business_seconds: int
    paused_business_seconds: int
    ended_at: str | None

    @classmethod
    def of(cls, view: TimerView) -> TimerPublic:
        return cls(
            name=view.name,
            status=view.status,
            calendar=view.calendar,
            goal=view.goal,
            started_at=view.started_at,
            due_at=view.due_at,
            warn_at=view.warn_at,
            warned=view.warned,
            remaining_business_seconds=view.remaining_seconds,
            elapsed_business_seconds=view.elapsed_seconds,
            paused_business_seconds=view.paused_seconds,
            ended_at=view.ended_at,
        )


class TimersPublic(BaseModel):
    case_id: str
    data: list[TimerPublic]


class QueueItemPublic(BaseModel):
    case: CasePublic
    most_urgent: TimerPublic | None


class QueuePublic(BaseModel):
    data: list[QueueItemPublic]
    next_cursor: str | None
