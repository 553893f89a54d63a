"""CaseSnapshot <-> JSON text for the projection's ``snapshot`` column.

Both directions sit on every command's path (load the case, write it back), so
they are written out by field name rather than through ``dataclasses.asdict``'s
deep copy, and a small memo keeps the snapshots this process last wrote or read:
a command on a case this process touched before gets its snapshot without
parsing. The memo is keyed by the exact stored text, so it can never serve
anything but what parsing that text would give; snapshots are immutable.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from typing import Any

from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, TimerState

_NESTED: dict[str, type[Any]] = {
    "offers": Offer,
    "evidence": Evidence,
    "info_requests": InfoRequest,
    "timers": TimerState,
    "ratings": Rating,
}
_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CaseSnapshot))
_NESTED_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in _NESTED.items()
}
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def snapshot_to_dict(snapshot: CaseSnapshot) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(snapshot, name)
        nested = _NESTED_FIELDS.get(name)
        if nested is not None:
            value = [{key: getattr(item, key) for key in nested} for item in value]
        elif name == "flags":
            value = list(value)
        result[name] = value
    return result


def snapshot_to_json(snapshot: CaseSnapshot) -> str:
    text = _ENCODE(snapshot_to_dict(snapshot))
    _MEMO.put(text, snapshot)
    return text


def snapshot_from_dict(doc: dict[str, Any]) -> CaseSnapshot:
    values = dict(doc)
    for name, cls in _NESTED.items():
        values[name] = tuple(cls(**item) for item in values.get(name, ()))
    values["flags"] = tuple(values.get("flags", ()))
    return CaseSnapshot(**values)


def snapshot_from_json(text: str) -> CaseSnapshot:
    snapshot = _MEMO.get(text)
    if snapshot is None:
        snapshot = snapshot_from_dict(json.loads(text))
        _MEMO.put(text, snapshot)
    return snapshot


class _Memo:
    """A small LRU map from stored text to snapshot, safe across request threads.

    Bounded in entries and in the size of what it keeps (long cases' snapshots are
    large and rarely hot), so server memory stays flat however many cases pass (B6).
    """

    def __init__(self, entries: int, max_text: int) -> None:
        self._entries = entries
        self._max_text = max_text
        self._items: OrderedDict[str, CaseSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> CaseSnapshot | None:
        with self._lock:
            snapshot = self._items.get(text)
            if snapshot is not None:
                self._items.move_to_end(text)
            return snapshot

    def put(self, text: str, snapshot: CaseSnapshot) -> None:
        if len(text) > self._max_text:
            return
        with self._lock:
            self._items[text] = snapshot
            self._items.move_to_end(text)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


_MEMO = _Memo(entries=512, max_text=32_768)
