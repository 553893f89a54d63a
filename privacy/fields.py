"""Which fields of an event are personal, replacing them with markers, and putting values back.

The write path calls :func:`protect_event` on every event before it is sealed: the personal
fields of :data:`PERSONAL_FIELDS` become markers (:mod:`privacy.markers`) and their values come
back as :class:`~privacy.markers.Secret` for the case's value rows. The fold, replay and what-if
then carry markers; every rendering calls :func:`markers_in` and :func:`substitute` (through the
case service's one ``reveal``) to show values, or ``[erased]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from privacy.markers import MARKER_LENGTH, PREFIX, Secret, protect, refuse_marker_text
from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, TimerState

# Per event type, the keys of ``data`` holding a person's own words or facts about them. Empty
# text stays empty (there is nothing to protect, and the fold reads "" as "none given").
PERSONAL_FIELDS: Mapping[str, tuple[str, ...]] = {
    "filed": ("subject", "description", "order_ref"),
    "message": ("body",),
    "transitioned": ("reason",),
    "evidence_added": ("filename", "description"),
    "merchant_responded": ("statement",),
    "offer_proposed": ("terms",),
    "offer_rejected": ("reason",),
    "info_requested": ("question",),
    "info_provided": ("answer",),
    "rated": ("comment",),
}
# Keys inside a ``filed`` event's ``classification`` whose items quote the complaint's words:
# each item's ``matched`` is the text the rule found.
MATCHED_WORDS_LISTS = ("evidence", "negated")
# The learned triage keeps every word the rules took from the complaint in
# ``classification.rule_evidence`` (intake/learning.py): these lists of it quote the text.
RULE_EVIDENCE_LISTS = ("matches", "negated")


def protect_text(value: str, field: str, secrets: list[Secret]) -> str:
    """The marker for one personal text (empty text stays empty); its secret joins ``secrets``.
    Text that starts like a marker is refused: it would read as one."""
    if not value:
        return value
    refuse_marker_text(value, field)
    secret = protect(value)
    secrets.append(secret)
    return secret.marker


def protect_matched_words(items: Any, field: str, secrets: list[Secret]) -> Any:
    """A list of matches (``{"matched": <words>, ...}``) with each ``matched`` protected: the
    words a rule found are the complaint's own words. Used for the classifier's evidence; apply
    it to any new field that quotes the text."""
    if not isinstance(items, list):
        return items
    return [
        {**item, "matched": protect_text(item["matched"], f"{field}.matched", secrets)}
        if isinstance(item, dict) and isinstance(item.get("matched"), str)
        else item
        for item in items
    ]


def protect_event(event_type: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[Secret]]:
    """``data`` with its personal fields replaced by markers, and the secrets to store."""
    names = PERSONAL_FIELDS.get(event_type, ())
    secrets: list[Secret] = []
    if not names:
        return data, secrets
    protected = dict(data)
    for name in names:
        value = protected.get(name)
        if isinstance(value, str):
            protected[name] = protect_text(value, name, secrets)
    classification = protected.get("classification")
    if event_type == "filed" and isinstance(classification, dict):
        protected["classification"] = {
            **classification,
            **{
                key: protect_matched_words(classification[key], f"classification.{key}", secrets)
                for key in MATCHED_WORDS_LISTS
                if key in classification
            },
        }
        rule_evidence = classification.get("rule_evidence")
        if isinstance(rule_evidence, dict):
            protected["classification"]["rule_evidence"] = {
                **rule_evidence,
                **{
                    key: protect_matched_words(rule_evidence[key], f"classification.rule_evidence.{key}", secrets)
                    for key in RULE_EVIDENCE_LISTS
                    if key in rule_evidence
                },
            }
    return protected, secrets


def _init_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass that may hold a marker or a pseudonym, looked up once per class
    (``dataclasses.fields`` is slow): the case model's own are listed in :data:`_CASE_FIELDS`
    (every rendering reveals a snapshot, so its clocks, hashes and states are not walked);
    any other dataclass's init fields are all walked."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = _CASE_FIELDS.get(cls) or tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return names


# Where the case model holds personal data (the fold copies it from PERSONAL_FIELDS and from the
# actors' ids). A new personal field of the model is added here, or it would show its marker.
_CASE_FIELDS: dict[type, tuple[str, ...]] = {
    CaseSnapshot: (
        "consumer_id",
        "subject",
        "description",
        "order_ref",
        "offers",
        "evidence",
        "info_requests",
        "ratings",
        "extra",
    ),
    Offer: ("terms", "proposer_id"),
    Evidence: ("added_by", "filename", "description"),
    InfoRequest: ("question", "answer"),
    Rating: ("comment",),
    TimerState: (),
}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _replaced(value: Any, changes: dict[str, Any]) -> Any:
    """``dataclasses.replace(value, **changes)``, without running ``__init__`` again for the
    frozen, slotted dataclasses of the case model: every command's answer copies its snapshot
    (some forty fields), and ``replace`` took a third of revealing it. Any other class (one
    that may validate in ``__post_init__``) goes through ``replace``."""
    cls = type(value)
    names = _SLOTTED.get(cls)
    if names is None:
        slots = getattr(cls, "__slots__", None)
        every = tuple(f.name for f in dataclasses.fields(cls))
        plain = (
            slots is not None
            and set(slots) == set(every)
            and not hasattr(cls, "__post_init__")
            and all(f.init for f in dataclasses.fields(cls))
        )
        names = _SLOTTED[cls] = every if plain else ()
    if not names:
        return dataclasses.replace(value, **changes)
    copy = object.__new__(cls)
    for name in names:
        object.__setattr__(copy, name, changes[name] if name in changes else getattr(value, name))
    return copy


# Per dataclass, its fields when :func:`_replaced` may copy it slot by slot (else empty).
_SLOTTED: dict[type, tuple[str, ...]] = {}


# Values that hold no text: skipped before the slower checks (a snapshot is mostly these).
_LEAVES = (int, float, type(None))


def markers_in(value: Any, found: set[str] | None = None, *, also: Callable[[str], bool] | None = None) -> set[str]:
    """Every marker (and every text ``also`` accepts, e.g. pseudonyms) inside ``value``: text,
    mappings, lists, tuples and dataclasses, walked to any depth."""
    found = set() if found is None else found
    if isinstance(value, str):
        # Cheap tests here; resolving parses each candidate fully (privacy.markers.parse).
        if (len(value) == MARKER_LENGTH and value.startswith(PREFIX)) or (also is not None and also(value)):
            found.add(value)
    elif isinstance(value, _LEAVES):
        pass
    elif isinstance(value, list | tuple):
        for item in value:
            markers_in(item, found, also=also)
    # The Mapping ABC's check is slow: dicts and dataclasses are told apart first.
    elif isinstance(value, dict) or (not dataclasses.is_dataclass(value) and isinstance(value, Mapping)):
        for item in value.values():
            markers_in(item, found, also=also)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name in _init_fields(type(value)):
            markers_in(getattr(value, name), found, also=also)
    return found


def substitute(value: Any, table: Mapping[str, str]) -> Any:
    """A copy of ``value`` with every text found in ``table`` replaced by its entry; what holds
    nothing to replace is shared, not copied."""
    if not table:
        return value
    if isinstance(value, str):
        return table.get(value, value)
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, list | tuple):
        replaced = [substitute(v, table) for v in value]
        if all(new is old for new, old in zip(replaced, value, strict=True)):
            return value
        return replaced if isinstance(value, list) else tuple(replaced)
    if dataclasses.is_dataclass(value):
        if isinstance(value, type):
            return value
        changes = {}
        for name in _init_fields(type(value)):
            old = getattr(value, name)
            new = substitute(old, table)
            if new is not old:
                changes[name] = new
        return _replaced(value, changes) if changes else value
    if isinstance(value, Mapping):
        items = {k: substitute(v, table) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    return value
