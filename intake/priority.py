"""A complaint's priority from configurable rules: claim amount, category, repeat complaints
against the merchant, a vulnerable consumer.

Levels are ordered from lowest to highest and each has a routing weight: how much one
open case of that level counts towards a mediator's load (intake/routing.py). Every rule
whose conditions all hold proposes its level; the highest proposal wins, or the default
level when none holds. The count of recent complaints against the merchant is a fact the
caller supplies (it counts cases filed within ``repeat_window``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from intake.config import DEFAULT_DIR, Reader, YamlPath, read_located
from workflow.categories import DEFAULT_CATEGORIES, Categories

_SECTION_KEYS = {"levels", "default", "repeat_window", "rules"}
_RULE_KEYS = {"name", "priority", "when", "description"}
_WHEN_KEYS = {"claim_at_least", "category", "repeat_complaints_at_least", "vulnerable_consumer"}


def default_priority_path() -> Path:
    return DEFAULT_DIR / "priority.yaml"


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    weight: int


@dataclass(frozen=True, slots=True)
class Condition:
    """Conditions of one rule; None means "not constrained". All given ones must hold."""

    claim_at_least: tuple[tuple[str, int], ...] | None = None  # per currency, minor units
    categories: frozenset[str] | None = None
    repeat_complaints_at_least: int | None = None
    vulnerable_consumer: bool | None = None


@dataclass(frozen=True, slots=True)
class PriorityRule:
    name: str
    level: str
    when: Condition


@dataclass(frozen=True, slots=True)
class PriorityFacts:
    category: str
    claim_amount: int
    currency: str
    repeat_complaints: int = 0  # other complaints against the merchant within the window
    vulnerable_consumer: bool = False


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    level: str
    reasons: tuple[str, ...]  # the names of the rules that proposed the winning level

    def to_event_data(self, facts: PriorityFacts) -> dict[str, Any]:
        return {"level": self.level, "rules": list(self.reasons), "repeat_complaints": facts.repeat_complaints}


@dataclass(frozen=True, slots=True)
class PriorityRules:
    levels: tuple[Level, ...] = (Level("low", 1), Level("normal", 1), Level("high", 2), Level("urgent", 3))
    default: str = "normal"
    repeat_window: timedelta = timedelta(days=30)
    rules: tuple[PriorityRule, ...] = ()
    version: str = ""
    source: str = "<priority>"

    def rank(self, level: str) -> int:
        """Position from lowest; an unknown level (a case filed under older rules) ranks as the default."""
        names = [lv.name for lv in self.levels]
        return names.index(level) if level in names else names.index(self.default)

    def weight(self, level: str) -> int:
        """Routing weight of a level; an unknown level weighs as the default."""
        for candidate in self.levels:
            if candidate.name == level:
                return candidate.weight
        return self.weight(self.default) if level != self.default else 1

    def decide(self, facts: PriorityFacts, floor: str | None = None) -> PriorityDecision:
        """The highest level any rule proposes, never below ``floor`` (a level the filer set)."""
        best = self.default if floor is None or floor not in {lv.name for lv in self.levels} else floor
        if self.rank(best) < self.rank(self.default):
            best = self.default
        reasons: list[str] = []
        for rule in self.rules:
            if not _holds(rule.when, facts):
                continue
            if self.rank(rule.level) > self.rank(best):
                best, reasons = rule.level, [rule.name]
            elif rule.level == best:
                reasons.append(rule.name)
        return PriorityDecision(best, tuple(reasons))


def _holds(when: Condition, facts: PriorityFacts) -> bool:
    if when.claim_at_least is not None:
        thresholds = dict(when.claim_at_least)
        if facts.currency not in thresholds or facts.claim_amount < thresholds[facts.currency]:
            return False
    if when.categories is not None and facts.category not in when.categories:
        return False
    if when.repeat_complaints_at_least is not None and facts.repeat_complaints < when.repeat_complaints_at_least:
        return False
    return when.vulnerable_consumer is None or facts.vulnerable_consumer == when.vulnerable_consumer


def load_priority(path: str | Path, categories: Categories = DEFAULT_CATEGORIES) -> PriorityRules:
    """Load a priority rules file whose rules name ``categories`` (the desk's); raise
    :class:`intake.config.IntakeConfigError` listing every problem."""
    located, version = read_located(path)
    return _PriorityReader(located, categories).build(version)


class _PriorityReader(Reader):
    def build(self, version: str) -> PriorityRules:
        section = self.section("priority", _SECTION_KEYS)
        base: YamlPath = ("priority",)
        levels = self._levels(section.get("levels"), (*base, "levels"))
        names = {lv.name for lv in levels}
        default = section.get("default", "normal")
        if default not in names:
            self.problem(
                (*base, "default"), f"default must be one of the levels ({', '.join(sorted(names))}), got {default!r}"
            )
        window = self.duration(section.get("repeat_window", "30d"), (*base, "repeat_window"), "repeat_window")
        rules: list[PriorityRule] = []
        raw_rules = section.get("rules", [])
        if not isinstance(raw_rules, list):
            self.problem((*base, "rules"), "rules must be a list")
            raw_rules = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_rules):
            rule = self._rule(raw, (*base, "rules", index), index, names)
            if rule is None:
                continue
            if rule.name in seen:
                self.problem((*base, "rules", index, "name"), f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
            rules.append(rule)
        self.fail_if_problems()
        return PriorityRules(
            levels=tuple(levels),
            default=str(default),
            repeat_window=timedelta(seconds=window.wall_seconds) if window else timedelta(days=30),
            rules=tuple(rules),
            version=version,
            source=self.located.file,
        )

    def _levels(self, raw: Any, path: YamlPath) -> list[Level]:
        if not isinstance(raw, dict) or not raw:
            self.problem(path, "levels must map each level, lowest first, to {weight: N}")
            return [Level("normal", 1)]
        levels = []
        for name, options in raw.items():
            if not isinstance(options, dict) or "weight" not in options:
                self.problem((*path, name), f"level {name!r} needs {{weight: N}} (its share of a mediator's load)")
                continue
            self.unknown_keys(options, {"weight", "description"}, (*path, name), f"level {name!r}")
            weight = self.integer(
                options["weight"], (*path, name, "weight"), f"level {name!r} weight", minimum=1, maximum=1000
            )
            if weight is not None:
                if len(name) > 20:
                    self.problem((*path, name), f"level name {name!r} is longer than 20 characters")
                levels.append(Level(name, weight))
        return levels

    def _rule(self, raw: Any, path: YamlPath, index: int, levels: set[str]) -> PriorityRule | None:
        if not isinstance(raw, dict):
            self.problem(path, "a rule is a mapping with name, priority and when")
            return None
        self.unknown_keys(raw, _RULE_KEYS, path, "a rule")
        name = raw.get("name", f"rule-{index + 1}")
        if not isinstance(name, str) or not name:
            self.problem((*path, "name"), "name must be text")
            name = f"rule-{index + 1}"
        level = raw.get("priority")
        if level not in levels:
            self.problem(
                (*path, "priority") if "priority" in raw else path,
                f"rule {name!r}: priority must be one of the levels ({', '.join(sorted(levels))}), got {level!r}",
            )
        when = self._when(raw.get("when"), (*path, "when"), name)
        if when is None or level not in levels:
            return None
        return PriorityRule(name, str(level), when)

    def _when(self, raw: Any, path: YamlPath, name: str) -> Condition | None:
        if not isinstance(raw, dict) or not raw:
            self.problem(
                path, f"rule {name!r}: when must hold at least one condition ({', '.join(sorted(_WHEN_KEYS))})"
            )
            return None
        self.unknown_keys(raw, _WHEN_KEYS, path, f"rule {name!r} when")
        before = len(self.problems)
        claim = None
        if "claim_at_least" in raw:
            claim = self._claim(raw["claim_at_least"], (*path, "claim_at_least"), name)
        categories = None
        if "category" in raw:
            values = raw["category"] if isinstance(raw["category"], list) else [raw["category"]]
            for offset, value in enumerate(values):
                if value not in self.categories:
                    self.problem(
                        (*path, "category", offset) if isinstance(raw["category"], list) else (*path, "category"),
                        f"rule {name!r}: unknown category {value!r} (known: {self.categories.listing()})",
                    )
            categories = frozenset(str(v) for v in values)
        repeat = None
        if "repeat_complaints_at_least" in raw:
            repeat = self.integer(
                raw["repeat_complaints_at_least"],
                (*path, "repeat_complaints_at_least"),
                f"rule {name!r}: repeat_complaints_at_least",
                minimum=1,
            )
        vulnerable = None
        if "vulnerable_consumer" in raw:
            vulnerable = raw["vulnerable_consumer"]
            if not isinstance(vulnerable, bool):
                self.problem(
                    (*path, "vulnerable_consumer"), f"rule {name!r}: vulnerable_consumer must be true or false"
                )
        if len(self.problems) > before:
            return None
        return Condition(claim, categories, repeat, vulnerable)

    def _claim(self, raw: Any, path: YamlPath, name: str) -> tuple[tuple[str, int], ...] | None:
        if not isinstance(raw, Mapping) or not raw:
            self.problem(
                path, f"rule {name!r}: claim_at_least maps ISO 4217 codes to minor units, e.g. {{CNY: 500000}}"
            )
            return None
        result = []
        for currency, amount in raw.items():
            if len(currency) != 3 or not currency.isupper():
                self.problem((*path, currency), f"rule {name!r}: {currency!r} is not an ISO 4217 code such as CNY")
            checked = self.integer(amount, (*path, currency), f"rule {name!r}: claim_at_least.{currency}")
            if checked is not None:
                result.append((currency, checked))
        return tuple(sorted(result))
