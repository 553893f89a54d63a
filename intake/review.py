"""Third-party review: which closed cases reviewers get, what of them they see, how they score.

A desk's ``intake/review.yaml`` says three things, each checked with file and line:

* **sampling**: every period (a week by default), a share of the cases closed in it is drawn
  per stratum (category and mediator by default), at least ``minimum`` per stratum, and a
  share of the drawn cases goes to two reviewers so their agreement can be measured. The draw
  is deterministic: a case's rank is the sha256 of the desk's seed, the period and its id, so
  the same cases give the same sample wherever it runs (and tests can check it).
* **redaction**: structured personal fields masked outright; free text passed through the
  configured patterns (phone numbers, e-mails, ID numbers, name introductions...). A pattern
  with a named group ``value`` masks only that group (``我叫(?P<value>...)`` keeps "我叫").
* **rubric**: the items a reviewer scores (lawful basis, fairness, ...), on a scale, with a
  comment.

Pure: no database. ``reports/review.py`` applies these rules to the log.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from intake.config import DEFAULT_DIR, IntakeConfigError, Reader, YamlPath, read_located
from workflow.text import is_identifier

STRATA = ("category", "mediator", "merchant", "outcome")
# The structured fields of a case a reviewer's view can mask (the rest are not personal).
REDACTABLE_FIELDS = ("consumer_id", "order_ref", "merchant_id")
_SECTION_KEYS = {"reviewers", "sampling", "redaction", "rubric"}
_SAMPLING_KEYS = {"period", "share", "minimum", "strata", "double_share", "seed"}
_REDACTION_KEYS = {"fields", "mask", "patterns"}
_PATTERN_KEYS = {"name", "regex", "replacement", "examples"}
_RUBRIC_KEYS = {"scale", "items", "comment_required"}
_ITEM_KEYS = {"id", "label", "description"}


def default_review_path() -> Path:
    return DEFAULT_DIR / "review.yaml"


@dataclass(frozen=True, slots=True)
class Sampling:
    period: timedelta = timedelta(days=7)
    share: float = 0.1
    minimum: int = 1
    strata: tuple[str, ...] = ("category", "mediator")
    double_share: float = 0.0
    seed: str = "review"


@dataclass(frozen=True, slots=True)
class RedactionPattern:
    name: str
    regex: re.Pattern[str]
    replacement: str


@dataclass(frozen=True, slots=True)
class Redaction:
    fields: tuple[str, ...] = REDACTABLE_FIELDS[:2]
    mask: str = "[redacted]"
    patterns: tuple[RedactionPattern, ...] = ()

    def text(self, value: str) -> str:
        """``value`` with every pattern's matches masked, the patterns applied in order."""
        for pattern in self.patterns:
            value = _mask(pattern, value)
        return value

    def field(self, name: str, value: str) -> str:
        """A structured field: masked when the desk lists it, otherwise passed through the patterns."""
        return self.mask if name in self.fields and value else self.text(value)


def _mask(pattern: RedactionPattern, value: str) -> str:
    if "value" not in pattern.regex.groupindex:
        return pattern.regex.sub(pattern.replacement, value)

    def one(match: re.Match[str]) -> str:
        start, end = match.span("value")
        if start < 0:
            return match.group(0)
        whole_start = match.start()
        text = match.group(0)
        return text[: start - whole_start] + pattern.replacement + text[end - whole_start :]

    return pattern.regex.sub(one, value)


@dataclass(frozen=True, slots=True)
class RubricItem:
    id: str
    label: Mapping[str, str]  # language -> label; "en" always present
    description: str = ""

    def label_in(self, language: str) -> str:
        return self.label.get(language) or self.label["en"]


@dataclass(frozen=True, slots=True)
class Rubric:
    items: tuple[RubricItem, ...]
    scale: tuple[int, int] = (1, 5)
    comment_required: bool = False

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)

    def problems(self, scores: Any, comment: Any) -> list[tuple[str, str]]:
        """What is wrong with a review's scores and comment: (field, message) pairs, empty if sound."""
        low, high = self.scale
        found: list[tuple[str, str]] = []
        if not isinstance(scores, dict):
            return [("scores", f"scores must map each rubric item ({', '.join(self.item_ids)}) to {low}-{high}")]
        for item in self.item_ids:
            score = scores.get(item)
            if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
                found.append((f"scores.{item}", f"{item} needs a whole score from {low} to {high}"))
        for item in scores:
            if item not in self.item_ids:
                found.append((f"scores.{item}", f"{item!r} is not a rubric item ({', '.join(self.item_ids)})"))
        if comment is not None and not isinstance(comment, str):
            found.append(("comment", "comment must be text"))
        elif self.comment_required and not (comment or "").strip():
            found.append(("comment", "the desk's rubric asks for a comment"))
        return found


@dataclass(frozen=True, slots=True)
class ReviewRules:
    reviewers: tuple[str, ...] = ()
    sampling: Sampling = Sampling()
    redaction: Redaction = Redaction()
    rubric: Rubric = field(default_factory=lambda: Rubric(items=()))
    version: str = ""
    source: str = "<review>"


# --- the draw ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampleCandidate:
    """A case closed in the period, with the facts the strata may name."""

    case_id: str
    category: str
    mediator: str
    merchant: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Drawn:
    case_id: str
    stratum: tuple[str, ...]
    reviewers: tuple[str, ...]


def rank(seed: str, period: str, case_id: str, salt: str = "") -> str:
    """A case's place in the draw: the same inputs always give the same rank."""
    return hashlib.sha256(f"{seed}|{period}|{salt}|{case_id}".encode()).hexdigest()


def draw(candidates: Sequence[SampleCandidate], rules: ReviewRules, period: str) -> list[Drawn]:
    """The period's sample: per stratum the lowest-ranked ``max(minimum, ceil(share x n))`` cases;
    of all drawn, the lowest-ranked ``ceil(double_share x drawn)`` by a second rank go to two
    reviewers. Reviewers are dealt round-robin in rank order, so the work is spread evenly.
    Empty when the desk names no reviewers."""
    sampling = rules.sampling
    reviewers = rules.reviewers
    if not reviewers or not candidates:
        return []
    strata: dict[tuple[str, ...], list[SampleCandidate]] = defaultdict(list)
    for case in candidates:
        strata[tuple(str(getattr(case, name)) for name in sampling.strata)].append(case)
    picked: list[tuple[str, tuple[str, ...]]] = []
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda c: rank(sampling.seed, period, c.case_id))
        count = min(len(members), max(sampling.minimum, math.ceil(sampling.share * len(members) - 1e-9)))
        picked.extend((c.case_id, key) for c in members[:count])
    picked.sort(key=lambda p: rank(sampling.seed, period, p[0]))
    doubles: set[str] = set()
    if sampling.double_share > 0 and len(reviewers) > 1:
        wanted = math.ceil(sampling.double_share * len(picked) - 1e-9)
        by_second = sorted(picked, key=lambda p: rank(sampling.seed, period, p[0], "double"))
        doubles = {case_id for case_id, _ in by_second[:wanted]}
    result = []
    turn = 0
    for case_id, key in picked:
        first = reviewers[turn % len(reviewers)]
        turn += 1
        chosen: tuple[str, ...] = (first,)
        if case_id in doubles:
            chosen = (first, reviewers[turn % len(reviewers)])
            turn += 1
        result.append(Drawn(case_id, key, chosen))
    return result


# --- loading ----------------------------------------------------------------------------------


def load_review(path: str | Path) -> ReviewRules:
    """Load a review file; raise :class:`intake.config.IntakeConfigError` listing every problem."""
    located, version = read_located(path)
    return _ReviewReader(located).build(version)


class _ReviewReader(Reader):
    def build(self, version: str) -> ReviewRules:
        section = self.section("review", _SECTION_KEYS)
        base: YamlPath = ("review",)
        reviewers = self._reviewers(section.get("reviewers", []), (*base, "reviewers"))
        sampling = self._sampling(section.get("sampling", {}), (*base, "sampling"), reviewers)
        redaction = self._redaction(section.get("redaction", {}), (*base, "redaction"))
        rubric = self._rubric(section.get("rubric"), (*base, "rubric"))
        self.fail_if_problems()
        return ReviewRules(
            reviewers=reviewers,
            sampling=sampling,
            redaction=redaction,
            rubric=rubric,
            version=version,
            source=self.located.file,
        )

    def _reviewers(self, raw: Any, path: YamlPath) -> tuple[str, ...]:
        names = self.texts(raw, path, "reviewers")
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not is_identifier(name):
                self.problem((*path, index), f"reviewer {name!r} is not a user id (letters, digits, . _ : -)")
            elif name in seen:
                self.problem((*path, index), f"reviewer {name!r} is listed twice")
            seen.add(name)
        return tuple(dict.fromkeys(names))

    def _mapping(self, raw: Any, path: YamlPath, what: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.problem(path, f"{what} must be a mapping ({', '.join(sorted(allowed))})")
            return {}
        self.unknown_keys(raw, allowed, path, what)
        return raw

    def _sampling(self, raw: Any, path: YamlPath, reviewers: tuple[str, ...]) -> Sampling:
        data = self._mapping(raw, path, "sampling", _SAMPLING_KEYS)
        default = Sampling()
        period = self.duration(data.get("period", "7d"), (*path, "period"), "period")
        share = self.number(data.get("share", default.share), (*path, "share"), "share", minimum=0, maximum=1)
        minimum = self.integer(data.get("minimum", default.minimum), (*path, "minimum"), "minimum", maximum=1000)
        double = self.number(data.get("double_share", 0), (*path, "double_share"), "double_share", minimum=0, maximum=1)
        if double and len(reviewers) < 2:
            self.problem((*path, "double_share"), "double_share needs at least two reviewers to compare")
        strata = tuple(self.texts(data.get("strata", list(default.strata)), (*path, "strata"), "strata"))
        for index, name in enumerate(strata):
            if name not in STRATA:
                self.problem((*path, "strata", index), f"unknown stratum {name!r} (known: {', '.join(STRATA)})")
        seed = data.get("seed", default.seed)
        if isinstance(seed, int) and not isinstance(seed, bool):
            seed = str(seed)
        seed = self.text(seed, (*path, "seed"), "seed") or default.seed
        return Sampling(
            period=timedelta(seconds=period.wall_seconds) if period else default.period,
            share=share if share is not None else default.share,
            minimum=minimum if minimum is not None else default.minimum,
            strata=strata,
            double_share=double or 0.0,
            seed=seed,
        )

    def _redaction(self, raw: Any, path: YamlPath) -> Redaction:
        data = self._mapping(raw, path, "redaction", _REDACTION_KEYS)
        fields = tuple(self.texts(data.get("fields", list(REDACTABLE_FIELDS[:2])), (*path, "fields"), "fields"))
        for index, name in enumerate(fields):
            if name not in REDACTABLE_FIELDS:
                self.problem(
                    (*path, "fields", index), f"unknown field {name!r} (known: {', '.join(REDACTABLE_FIELDS)})"
                )
        mask = self.text(data.get("mask", "[redacted]"), (*path, "mask"), "mask") or "[redacted]"
        patterns: list[RedactionPattern] = []
        raw_patterns = data.get("patterns", [])
        if not isinstance(raw_patterns, list):
            self.problem((*path, "patterns"), "patterns must be a list of {name, regex, replacement}")
            raw_patterns = []
        names: set[str] = set()
        for index, item in enumerate(raw_patterns):
            found = self._pattern(item, (*path, "patterns", index), mask)
            if found is None:
                continue
            if found.name in names:
                self.problem((*path, "patterns", index, "name"), f"pattern name {found.name!r} is used twice")
            names.add(found.name)
            patterns.append(found)
        redaction = Redaction(fields=fields, mask=mask, patterns=tuple(patterns))
        # Examples are checked against the whole redaction, in order, as a reviewer would see them.
        for index, item in enumerate(raw_patterns):
            if isinstance(item, dict) and isinstance(item.get("examples"), list):
                self._examples(item["examples"], (*path, "patterns", index, "examples"), redaction)
        return redaction

    def _pattern(self, item: Any, path: YamlPath, mask: str) -> RedactionPattern | None:
        data = self._mapping(item, path, "a pattern", _PATTERN_KEYS)
        if not data:
            return None
        name = self.text(data.get("name"), (*path, "name"), "name")
        source = self.text(data.get("regex"), (*path, "regex"), "regex")
        replacement = data.get("replacement", mask)
        if not isinstance(replacement, str):
            self.problem((*path, "replacement"), "replacement must be text")
            return None
        if name is None or source is None:
            return None
        try:
            regex = re.compile(source)
        except re.error as exc:
            self.problem((*path, "regex"), f"pattern {name!r}: not a regular expression: {exc}")
            return None
        if regex.search("") is not None:
            self.problem((*path, "regex"), f"pattern {name!r} matches the empty text: it would mask nothing useful")
            return None
        if regex.groups and "value" not in regex.groupindex and "\\" in replacement:
            self.problem((*path, "replacement"), "replacement is literal text (name the masked part (?P<value>...))")
            return None
        # A literal replacement: backslashes in it must not be read as group references.
        return RedactionPattern(name=name, regex=regex, replacement=replacement.replace("\\", "\\\\"))

    def _examples(self, raw: list[Any], path: YamlPath, redaction: Redaction) -> None:
        for index, example in enumerate(raw):
            where = (*path, index)
            if not isinstance(example, dict) or set(example) != {"text", "shown"}:
                self.problem(where, "an example is {text: ..., shown: ...}")
                continue
            got = redaction.text(str(example["text"]))
            if got != str(example["shown"]):
                self.problem(where, f"example {example['text']!r} is shown as {got!r}, not {example['shown']!r}")

    def _rubric(self, raw: Any, path: YamlPath) -> Rubric:
        data = self._mapping(raw, path, "rubric", _RUBRIC_KEYS)
        scale_raw = data.get("scale", [1, 5])
        scale = (1, 5)
        if (
            isinstance(scale_raw, list)
            and len(scale_raw) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in scale_raw)
            and 0 <= scale_raw[0] < scale_raw[1] <= 100
        ):
            scale = (scale_raw[0], scale_raw[1])
        else:
            self.problem((*path, "scale"), f"scale must be [lowest, highest] whole numbers, got {scale_raw!r}")
        comment_required = data.get("comment_required", False)
        if not isinstance(comment_required, bool):
            self.problem((*path, "comment_required"), "comment_required must be true or false")
            comment_required = False
        items: list[RubricItem] = []
        raw_items = data.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            self.problem((*path, "items"), "the rubric needs items: a list of {id, label}")
            raw_items = []
        for index, item in enumerate(raw_items):
            found = self._item(item, (*path, "items", index))
            if found is None:
                continue
            if any(i.id == found.id for i in items):
                self.problem((*path, "items", index, "id"), f"rubric item {found.id!r} is listed twice")
                continue
            items.append(found)
        return Rubric(items=tuple(items), scale=scale, comment_required=comment_required)

    def _item(self, raw: Any, path: YamlPath) -> RubricItem | None:
        data = self._mapping(raw, path, "a rubric item", _ITEM_KEYS)
        if not data:
            return None
        item_id = self.text(data.get("id"), (*path, "id"), "id")
        if item_id is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", item_id):
            self.problem((*path, "id"), f"rubric item id {item_id!r} must be lower_snake_case")
            return None
        label = data.get("label")
        labels: dict[str, str] = {}
        if isinstance(label, str) and label.strip():
            labels = {"en": label}
        elif isinstance(label, dict) and all(isinstance(v, str) and v.strip() for v in label.values()) and label:
            labels = {str(k): v for k, v in label.items()}
            if "en" not in labels:
                self.problem((*path, "label"), "label needs an 'en' text (the fallback for other languages)")
        else:
            self.problem((*path, "label"), "label must be text or a mapping of language to text")
        description = data.get("description", "")
        if not isinstance(description, str):
            self.problem((*path, "description"), "description must be text")
            description = ""
        if item_id is None or "en" not in labels:
            return None
        return RubricItem(id=item_id, label=labels, description=description)


__all__ = [
    "STRATA",
    "Drawn",
    "IntakeConfigError",
    "Redaction",
    "ReviewRules",
    "Rubric",
    "SampleCandidate",
    "Sampling",
    "default_review_path",
    "draw",
    "load_review",
]
