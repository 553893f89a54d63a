"""Mediators the router assigns cases to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Identifier, RequiredText, Strict, identifier_field, text
from cases.mediators import Mediator
from workflow.categories import CATEGORY_ID_PATTERN

# A skill: one of the desk's categories (checked by cases/mediators.py) or "*" for any.
MediatorCategory = Annotated[str, Field(pattern=rf"^(\*|{CATEGORY_ID_PATTERN[1:-1]})$", max_length=48)]


MediatorLanguage = Literal["zh", "en", "*"]


_MEDIATOR_EXAMPLE: dict[str, Any] = {
    "id": "med-li",
    "display_name": "李调解员",
    "categories": ["counterfeit", "product_quality"],
    "languages": ["zh", "en"],
    "capacity": 12,
    "calendar": "default",
    "active": True,
}


class MediatorCreate(Strict):
    id: Identifier = identifier_field(
        description="The mediator's user id (the `sub` of their token); no slashes.",
        pattern=r"^[^\s/\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]+$",
    )
    display_name: RequiredText = text(1, 200)
    categories: list[MediatorCategory] = Field(min_length=1, max_length=8, description='Skills; "*" for any.')
    languages: list[MediatorLanguage] = Field(min_length=1, max_length=3, description='"*" for any.')
    capacity: int = Field(
        ge=0,
        le=1000,
        strict=True,
        description="Most open load at once; a case weighs its priority's weight (normal 1).",
    )
    calendar: Identifier = identifier_field(
        default="default", description="Duty calendar: on duty during its working hours."
    )
    active: bool = Field(default=True, strict=True)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_MEDIATOR_EXAMPLE]})


class MediatorUpdate(Strict):
    display_name: RequiredText | None = text(1, 200, default=None)
    categories: list[MediatorCategory] | None = Field(default=None, min_length=1, max_length=8)
    languages: list[MediatorLanguage] | None = Field(default=None, min_length=1, max_length=3)
    capacity: int | None = Field(default=None, ge=0, le=1000, strict=True)
    calendar: Identifier | None = identifier_field(default=None, description="Duty calendar.")
    active: bool | None = Field(default=None, strict=True)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"capacity": 8, "active": False}]})


class MediatorPublic(BaseModel):
    id: str
    display_name: str
    categories: list[str]
    languages: list[str]
    capacity: int
    calendar: str
    active: bool
    open_load: int = Field(description="Open cases weighted by priority.")
    last_assigned_at: str | None = Field(description="When the router last assigned them a case.")
    created_at: str
    updated_at: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_MEDIATOR_EXAMPLE,
                    "open_load": 5,
                    "last_assigned_at": "2026-11-28T01:20:00Z",
                    "created_at": "2026-11-01T01:00:00Z",
                    "updated_at": "2026-11-01T01:00:00Z",
                }
            ]
        }
    )

    @classmethod
    def of(cls, m: Mediator) -> MediatorPublic:
        return cls(
            id=m.id,
            display_name=m.display_name,
            categories=list(m.categories),
            languages=list(m.languages),
            capacity=m.capacity,
            calendar=m.calendar,
            active=m.active,
            open_load=m.open_load,
            last_assigned_at=_iso(m.last_assigned_at),
            created_at=_iso(m.created_at) or "",
            updated_at=_iso(m.updated_at) or "",
        )


class MediatorsPublic(BaseModel):
    data: list[MediatorPublic]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
