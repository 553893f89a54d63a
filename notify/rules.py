"""The desk's notification rules (``notifications.yaml``): which notice kinds are sent, to whom,
who must act on each clock, how long before a breach a reminder goes out, and the rules an
acknowledgement cites per category. Loaded and checked here (pure), every problem with file
and line; ``desk/loader.py`` makes it a part of the desk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from workflow.categories import DEFAULT_CATEGORIES, Categories
from workflow.durations import DurationError, parse_duration
from workflow.errors import ConfigError, Problem
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

KINDS = (
    "acknowledgement",
    "new_claim",
    "assigned",
    "offer",
    "info_request",
    "ruling",
    "reminder",
    "deadline_changed",
    "breach",
)
# Notices the engine sends whatever the desk says: to an endpoint's owner when it is disabled.
SYSTEM_KINDS = ("endpoint_disabled",)
RECIPIENTS = frozenset({"consumer", "merchant", "mediator", "acting", "asked", "parties"})
LANGUAGES = ("en", "zh-CN")
KEYS = frozenset({"notices", "before_breach", "acting", "categories"})


class InvalidNotificationsError(ConfigError):
    """A ``notifications.yaml`` that cannot be used; ``problems`` names every problem."""


@dataclass(frozen=True, slots=True)
class CategoryRules:
    """What an acknowledgement cites for a category, by language."""

    rule: Mapping[str, str] = field(default_factory=dict)
    legal_basis: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotificationRules:
    """The loaded rules. ``notices``: kind -> recipients (a kind absent is not sent)."""

    notices: Mapping[str, tuple[str, ...]]
    before_breach: timedelta | None = None
    acting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    categories: Mapping[str, CategoryRules] = field(default_factory=dict)
    file: str = ""

    def recipients(self, kind: str) -> tuple[str, ...]:
        return self.notices.get(kind, ())

    def category(self, name: str) -> CategoryRules:
        return self.categories.get(name, CategoryRules())


def default_notifications_path() -> Path:
    return Path(__file__).resolve().parent / "default" / "notifications.yaml"


def default_rules() -> NotificationRules:
    return load_notifications(default_notifications_path())


def load_notifications(path: Path, categories: Categories = DEFAULT_CATEGORIES) -> NotificationRules:
    """The notification rules of ``path``; the per-category rules name ``categories`` (the desk's)."""
    file = str(path)
    try:
        located = load_located(path.read_text(encoding="utf-8"), file)
    except OSError as exc:
        raise InvalidNotificationsError([Problem(file, 1, f"cannot read file: {exc.strerror}")]) from exc
    except YamlError as exc:
        raise InvalidNotificationsError([Problem(exc.file, exc.line, exc.message)]) from exc
    return _parse(located, file, categories)


def _parse(located: LocatedYaml, file: str, known: Categories = DEFAULT_CATEGORIES) -> NotificationRules:
    data = located.data if located.data is not None else {}
    problems: list[Problem] = []

    def problem(path: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(file, located.line(path), message))

    if not isinstance(data, dict):
        raise InvalidNotificationsError([Problem(file, 1, "notifications.yaml must be a mapping")])
    for key in data:
        if key not in KEYS:
            problem((key,), f"unknown key {key!r} (allowed: {', '.join(sorted(KEYS))})")
    notices: dict[str, tuple[str, ...]] = {}
    raw_notices = data.get("notices") or {}
    if not isinstance(raw_notices, dict):
        problem(("notices",), "notices must map a notice kind to {to: [recipients]}")
        raw_notices = {}
    for kind, spec in raw_notices.items():
        if kind not in KINDS:
            problem(("notices", kind), f"unknown notice kind {kind!r} (kinds: {', '.join(KINDS)})")
            continue
        to = spec.get("to") if isinstance(spec, dict) else None
        if not isinstance(to, list) or not all(isinstance(r, str) for r in to):
            problem(("notices", kind), f"notice {kind!r} needs to: [recipients]")
            continue
        unknown = [r for r in to if r not in RECIPIENTS]
        if unknown:
            problem(
                ("notices", kind, "to"),
                f"unknown recipient {unknown[0]!r} (recipients: {', '.join(sorted(RECIPIENTS))})",
            )
            continue
        notices[kind] = tuple(to)
    before: timedelta | None = None
    if data.get("before_breach") is not None:
        try:
            duration = parse_duration(str(data["before_breach"]))
        except DurationError as exc:
            problem(("before_breach",), f"before_breach: {exc.message}")
        else:
            if duration.business:
                problem(("before_breach",), "before_breach is wall-clock time ('4h', '1d'), not business time")
            before = timedelta(seconds=duration.wall_seconds)
    acting: dict[str, tuple[str, ...]] = {}
    raw_acting = data.get("acting") or {}
    if not isinstance(raw_acting, dict):
        problem(("acting",), "acting must map a clock's name to the parties who must act")
        raw_acting = {}
    for timer, parties in raw_acting.items():
        if not isinstance(parties, list) or any(p not in RECIPIENTS - {"acting", "asked"} for p in parties):
            problem(("acting", timer), f"acting.{timer} lists consumer, merchant, mediator or parties")
            continue
        acting[str(timer)] = tuple(parties)
    categories: dict[str, CategoryRules] = {}
    raw_categories = data.get("categories") or {}
    if not isinstance(raw_categories, dict):
        problem(("categories",), "categories must map a category to its rule and legal_basis")
        raw_categories = {}
    for name, spec in raw_categories.items():
        if name not in known:
            problem(("categories", name), f"unknown category {name!r} (the desk's categories: {known.listing()})")
            continue
        texts: dict[str, dict[str, str]] = {"rule": {}, "legal_basis": {}}
        for part in texts:
            value = spec.get(part) if isinstance(spec, dict) else None
            if value is None:
                continue
            if not isinstance(value, dict) or any(lang not in LANGUAGES for lang in value):
                problem(("categories", name, part), f"{part} gives its text per language ({', '.join(LANGUAGES)})")
                continue
            texts[part] = {str(k): str(v) for k, v in value.items()}
        categories[name] = CategoryRules(rule=texts["rule"], legal_basis=texts["legal_basis"])
    if problems:
        raise InvalidNotificationsError(problems)
    return NotificationRules(notices, before, acting, categories, file)
