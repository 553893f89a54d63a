"""CaseSnapshot <-> JSON text for the projection's ``snapshot`` column."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, TimerState

_NESTED: dict[str, type[Any]] = {
    "offers": Offer,
    "evidence": Evidence,
    "info_requests": InfoRequest,
    "timers": TimerState,
    "ratings": Rating,
}


def snapshot_to_dict(snapshot: CaseSnapshot) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for f in dataclasses.fields(snapshot):
        value = getattr(snapshot, f.name)
        if f.name in _NESTED:
            value = [dataclasses.asdict(item) for item in value]
        elif f.name == "flags":
            value = list(value)
        result[f.name] = value
    return result


def snapshot_to_json(snapshot: CaseSnapshot) -> str:
    return json.dumps(snapshot_to_dict(snapshot), ensure_ascii=False, separators=(",", ":"))


def snapshot_from_dict(doc: dict[str, Any]) -> CaseSnapshot:
    values = dict(doc)
    for name, cls in _NESTED.items():
        values[name] = tuple(cls(**item) for item in values.get(name, ()))
    values["flags"] = tuple(values.get("flags", ()))
    return CaseSnapshot(**values)


def snapshot_from_json(text: str) -> CaseSnapshot:
    return snapshot_from_dict(json.loads(text))
