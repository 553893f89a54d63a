"""Facts about other cases: counts over related cases that a workflow declares under ``related:``.

    related:
      interventions_same_order:   {relation: same_order}
      prior_with_merchant_90d:    {relation: same_consumer_and_merchant, window: 90d}

Each is the number of other cases, filed before this one (within ``window`` when given), that
share the relation: ``same_order`` (the merchant and order reference), ``same_consumer``,
``same_merchant`` or ``same_consumer_and_merchant``. The engine counts them when the case is
filed (cases/related.py) and records them on the ``filed`` event, so policies, replay and
what-if all see the same numbers; policies read ``resource.related.<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflow.durations import Duration, DurationError, parse_duration

RELATIONS = ("same_order", "same_consumer", "same_merchant", "same_consumer_and_merchant")
_KEYS = frozenset({"relation", "window", "description"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class RelatedCount:
    name: str
    relation: str
    window: Duration | None = None


def parse_related(raw: Any, problem: Callable[[tuple[str | int, ...], str], None]) -> tuple[RelatedCount, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problem(("related",), "'related' must map a count's name to {relation, window}")
        return ()
    found = []
    for name, spec in raw.items():
        path: tuple[str | int, ...] = ("related", name)
        if not _NAME.match(name):
            problem(path, f"related count name {name!r} must be lower-case letters, digits and _")
            continue
        if not isinstance(spec, dict):
            problem(path, f"related count {name!r} must be a mapping with 'relation'")
            continue
        for key in spec:
            if key not in _KEYS:
                problem(
                    (*path, key),
                    f"unknown key {key!r} in related count {name!r} (allowed: description, relation, window)",
                )
        relation = spec.get("relation")
        if relation not in RELATIONS:
            problem(
                (*path, "relation") if "relation" in spec else path,
                f"related count {name!r}: relation must be one of {', '.join(RELATIONS)}",
            )
            continue
        window = None
        if "window" in spec:
            try:
                window = parse_duration(spec["window"])
            except DurationError as exc:
                problem((*path, "window"), f"related count {name!r}: {exc}")
                continue
            if window.business or window.calendar_days:
                problem((*path, "window"), f"related count {name!r}: a window is wall-clock time ('90d', '72h')")
                continue
        found.append(RelatedCount(name=name, relation=relation, window=window))
    return tuple(found)
