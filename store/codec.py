"""CaseSnapshot <-> JSON text for the projection's ``snapshot`` column.

Both directions sit on every command's path (load the case, write it back) and on
every list page (one snapshot per row), so they go through ``msgspec``, which
encodes the dataclasses and decodes straight into them without building
intermediate dicts: several times faster than ``json`` plus field-by-field copying
(the figures: bench/results.md, "Figures behind the code's comments"). Its output is
the same bytes ``json`` wrote (compact, non-ASCII kept, fields in declaration
order), so stored snapshots read alike whichever wrote them; a stored snapshot
whose types the strict decoder refuses (hand-edited, or from an older shape) is
read the lenient way, field by field.

A small memo keeps the snapshots this process last wrote or read: a command on a
case this process touched before gets its snapshot without parsing. The memo is
keyed by the exact stored text, so it can never serve anything but what parsing
that text would give; snapshots are immutable.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import msgspec

from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, Review, TimerState

_NESTED: dict[str, type[Any]] = {
    "offers": Offer,
    "evidence": Evidence,
    "info_requests": InfoRequest,
    "timers": TimerState,
    "ratings": Rating,
    "reviews": Review,
}
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CaseSnapshot)


def snapshot_to_dict(snapshot: CaseSnapshot) -> dict[str, Any]:
    """The snapshot as plain JSON values, lists and all (what verification compares)."""
    result: dict[str, Any] = msgspec.json.decode(_ENCODER.encode(snapshot))
    return result


def snapshot_to_json(snapshot: CaseSnapshot) -> str:
    text = _ENCODER.encode(snapshot).decode("utf-8")
    _MEMO.put(text, snapshot)
    return text


def snapshot_from_dict(doc: dict[str, Any]) -> CaseSnapshot:
    values = dict(doc)
    for name, cls in _NESTED.items():
        values[name] = tuple(cls(**item) for item in values.get(name, ()))
    values["flags"] = tuple(values.get("flags", ()))
    values["reviewers"] = tuple(values.get("reviewers", ()))
    return CaseSnapshot(**values)


def snapshot_from_json(text: str) -> CaseSnapshot:
    snapshot = _MEMO.get(text)
    if snapshot is None:
        try:
            snapshot = _DECODER.decode(text)
        except msgspec.ValidationError:
            snapshot = snapshot_from_dict(json.loads(text))
        _MEMO.put(text, snapshot)
    return snapshot


class _Memo:
    """A small LRU map from stored text to snapshot, safe across request threads.

    Bounded in entries and in the total length of the texts it keeps, so server memory
    stays flat however many cases pass (B6). A long case's snapshot (565 KB at 10,000
    events) fits too: decoding it is most of a command on such a case, and a case that
    long is one people are working on.
    """

    def __init__(self, entries: int, budget: int) -> None:
        self._entries = entries
        self._budget = budget
        self._size = 0
        self._items: OrderedDict[str, CaseSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> CaseSnapshot | None:
        with self._lock:
            snapshot = self._items.get(text)
            if snapshot is not None:
                self._items.move_to_end(text)
            return snapshot

    def put(self, text: str, snapshot: CaseSnapshot) -> None:
        if len(text) > self._budget // 4:
            return
        with self._lock:
            if text not in self._items:
                self._size += len(text)
            self._items[text] = snapshot
            self._items.move_to_end(text)
            while len(self._items) > self._entries or self._size > self._budget:
                evicted, _ = self._items.popitem(last=False)
                self._size -= len(evicted)


# The same worst case as 512 snapshots of 32 KB: 16 M characters of text.
_MEMO = _Memo(entries=512, budget=16 * 1024 * 1024)
