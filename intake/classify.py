"""Classify a complaint from its subject and description, and say why.

The rules are data (``intake/default/classification.yaml``): per category, keyword
groups (a language, a weight, terms) and regular expressions (a weight), plus
negation cues that cancel a keyword ("不是假货", "quality is fine"). Text is
normalised (NFKC, lower case) and segmented into words: Chinese with ``jieba``,
whose dictionary is given every Chinese term of the rules so that a term such as
虚假宣传 or 没收到 comes out as one word instead of 虚假/宣传 or 没收/到货; English
words come out whole and a term ending in ``*`` matches any word it begins
(``refund*`` matches "refunded"). A term of several words ("not received",
"没有 收到") matches those words in a row. Keywords match whole words only, so 假
never matches inside 假期; regular expressions match the normalised text.

Each matched term counts once per field, its group's weight times the field's
weight. The category with the highest score wins (the earlier one in the file on
a tie) if the score reaches ``min_score``; otherwise the complaint is the default
category. The result carries every match of the winning category, which the case
layer records on the ``filed`` event so that a mediator sees why.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from intake.config import DEFAULT_DIR, Reader, YamlPath, read_located
from workflow.categories import DEFAULT_CATEGORIES, Categories

# The languages the classifier tells apart (and mediators may be given), written once.
Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
FIELDS = ("subject", "description")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_SECTION_KEYS = {"default_category", "min_score", "field_weights", "word_frequency", "words", "negation", "categories"}
_CATEGORY_KEYS = {"description", "keywords", "patterns"}
_GROUP_KEYS = {"name", "lang", "weight", "terms"}
_PATTERN_KEYS = {"name", "regex", "weight"}
_NEGATION_KEYS = {"before", "after", "window"}


def default_classification_path() -> Path:
    return DEFAULT_DIR / "classification.yaml"


# --- text -----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def detect_language(text: str) -> str:
    """'zh' when Chinese characters carry the text, else 'en'. One Chinese character
    is counted as four Latin letters (a word in either script is about that long)."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return "zh" if cjk and cjk * 4 >= latin else "en"


_BASE_LOCK = threading.Lock()
_BASE: list[Any] = []
_SEGMENTERS: dict[tuple[tuple[str, ...], int], Segmenter] = {}


def _jieba() -> Any:
    with warnings.catch_warnings():
        # jieba 0.42 has invalid escape sequences (warned about when its source is compiled)
        # and imports pkg_resources (deprecated in newer setuptools): neither is ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        import jieba

    return jieba


def _base_tokenizer() -> Any:
    """jieba's tokenizer with its packaged dictionary, loaded once per process.

    Imported here, not at the top: importing jieba and loading its dictionary takes a
    second or two, which every CLI command would pay whether it classifies or not.
    jieba logs its loading to stderr at DEBUG; it is told to keep quiet first."""
    with _BASE_LOCK:
        if not _BASE:
            jieba = _jieba()
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _BASE.append(tokenizer)
        return _BASE[0]


class Segmenter:
    """Words of a text: jieba's dictionary plus the rules' own words.

    Each word set gets its own tokenizer (a copy of the base dictionary, ~50 ms), so that
    the words of one rules file never change how another file's classifier segments."""

    def __init__(self, words: Iterable[str], frequency: int) -> None:
        base = _base_tokenizer()
        tokenizer = _jieba().Tokenizer()
        # jieba 0.42 keeps its dictionary in FREQ/total; sharing the loaded one avoids
        # re-reading the dictionary file for every rules file.
        tokenizer.FREQ = dict(base.FREQ)
        tokenizer.total = base.total
        tokenizer.initialized = True
        for word in words:
            tokenizer.add_word(word, freq=frequency)
        self._tokenizer = tokenizer

    def tokens(self, text: str) -> tuple[str, ...]:
        """Normalised words and punctuation, without whitespace."""
        pieces: list[str] = self._tokenizer.lcut(normalise(text))
        return tuple(p for p in (str(piece).strip() for piece in pieces) if p)


def segmenter(words: Iterable[str], frequency: int) -> Segmenter:
    key = (tuple(sorted(set(words))), frequency)
    with _BASE_LOCK:
        found = _SEGMENTERS.get(key)
    if found is None:
        found = Segmenter(key[0], frequency)
        with _BASE_LOCK:
            if len(_SEGMENTERS) >= 8:  # tests build many small rule sets; keep memory bounded
                _SEGMENTERS.pop(next(iter(_SEGMENTERS)))
            found = _SEGMENTERS.setdefault(key, found)
    return found


def _is_punctuation(token: str) -> bool:
    return all(unicodedata.category(ch).startswith(("P", "S")) for ch in token)


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """A keyword as written and as the word sequence it matches; ``*`` marks a prefix word.

    A Chinese term also matches consecutive words that together spell it exactly, so a
    segmentation that splits it (虚假/宣传) still finds it, but never part of a word."""

    text: str
    words: tuple[tuple[str, bool], ...]  # (word, is_prefix)
    joined: str = ""

    def occurrences(self, tokens: Sequence[str], where: TokenIndex | None = None) -> Iterator[tuple[int, int]]:
        """(start, end) of each place the term stands in ``tokens``, in order; with ``tokens``'
        :class:`TokenIndex`, only the positions where an occurrence can start are tried."""
        count = len(self.words)
        for index in range(len(tokens)) if where is None else where.starts(self):
            if index + count <= len(tokens) and all(
                tokens[index + k].startswith(word) if prefix else tokens[index + k] == word
                for k, (word, prefix) in enumerate(self.words)
            ):
                yield index, index + count
            elif self.joined and len(tokens[index]) < len(self.joined) and self.joined.startswith(tokens[index]):
                spelled, end = tokens[index], index + 1
                while len(spelled) < len(self.joined) and end < len(tokens):
                    spelled += tokens[end]
                    end += 1
                if spelled == self.joined:
                    yield index, end


class TokenIndex:
    """Where each word stands in one text's tokens, so a term is tried only where it can start.

    A text has a few dozen tokens and a rules file several hundred terms: walking every term
    along every token was most of the rules' time. ``at`` maps each token to its positions,
    ``prefixed`` each leading part of a token (its first 1, 2, ... characters) to the positions
    of the tokens it begins."""

    __slots__ = ("_prefixed", "at")

    def __init__(self, tokens: Sequence[str]) -> None:
        self.at: dict[str, list[int]] = {}
        for position, token in enumerate(tokens):
            self.at.setdefault(token, []).append(position)
        self._prefixed: dict[str, list[int]] | None = None

    @property
    def prefixed(self) -> dict[str, list[int]]:
        if self._prefixed is None:
            self._prefixed = {}
            for token, positions in self.at.items():
                for length in range(1, len(token) + 1):
                    self._prefixed.setdefault(token[:length], []).extend(positions)
        return self._prefixed

    def starts(self, term: Term) -> list[int]:
        """Every position where ``term`` may start (ascending): its first word there (as the
        whole token, or its beginning for a prefix word), or a token that begins its spelling."""
        word, prefix = term.words[0]
        found = (self.prefixed if prefix else self.at).get(word, [])
        joined = term.joined
        if not joined:
            return sorted(found) if prefix else found
        merged = set(found)
        for length in range(1, len(joined)):
            merged.update(self.at.get(joined[:length], ()))
        return sorted(merged)


@dataclass(frozen=True, slots=True)
class KeywordGroup:
    category: str
    name: str
    language: str
    weight: int
    terms: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class PatternRule:
    category: str
    name: str
    regex: re.Pattern[str]
    weight: int


@dataclass(frozen=True, slots=True)
class CategoryRules:
    name: str
    keywords: tuple[KeywordGroup, ...] = ()
    patterns: tuple[PatternRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Negation:
    """Cues that cancel a keyword: within ``window`` words before it, or after it, in one clause."""

    before: tuple[Term, ...] = ()
    after: tuple[Term, ...] = ()
    window: int = 2


@dataclass(frozen=True, slots=True)
class ClassificationRules:
    categories: tuple[CategoryRules, ...]
    default_category: str = "other"
    min_score: int = 1
    field_weights: tuple[tuple[str, int], ...] = (("subject", 2), ("description", 1))
    words: tuple[str, ...] = ()  # extra words for the segmenter
    word_frequency: int = 20_000
    negation: Negation = field(default_factory=Negation)
    version: str = ""  # sha256 of the file
    source: str = "<rules>"


@dataclass(frozen=True, slots=True)
class Match:
    """One piece of evidence: which rule matched what, where, worth how many points."""

    category: str
    rule: str
    kind: str  # keyword or pattern
    term: str  # the keyword as written, or the regular expression
    matched: str  # the words or text found
    field: str
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "rule": self.rule,
            "kind": self.kind,
            "term": self.term,
            "matched": self.matched,
            "field": self.field,
            "points": self.points,
        }


@dataclass(frozen=True, slots=True)
class Classification:
    category: str
    score: int
    language: str
    evidence: tuple[Match, ...]  # the winning category's matches
    scores: tuple[tuple[str, int], ...]  # every category that scored, best first
    negated: tuple[Match, ...] = ()  # keywords a negation cancelled
    rules_version: str = ""

    @property
    def matched(self) -> bool:
        """False when nothing reached the minimum score and the default category was taken."""
        return bool(self.evidence)

    def to_event_data(self) -> dict[str, Any]:
        """What the ``filed`` event records (integers and text only: it is hashed)."""
        return {
            "category": self.category,
            "score": self.score,
            "language": self.language,
            "evidence": [m.to_dict() for m in self.evidence],
            "scores": dict(self.scores),
            "negated": [m.to_dict() for m in self.negated],
            "rules_version": self.rules_version,
        }


class Classifier:
    """Applies one rules file. Safe to share between threads."""

    def __init__(self, rules: ClassificationRules) -> None:
        self.rules = rules
        words = [*rules.words]
        for category in rules.categories:
            for group in category.keywords:
                if group.language == "zh":
                    words.extend(t.text.replace("*", "") for t in group.terms if " " not in t.text.strip())
        self._words = tuple(w for w in (normalise(w).strip() for w in words) if w)
        self._segmenter: Segmenter | None = None
        self._lock = threading.Lock()

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            with self._lock:
                if self._segmenter is None:
                    self._segmenter = segmenter(self._words, self.rules.word_frequency)
        return self._segmenter

    def tokens(self, text: str) -> tuple[str, ...]:
        return self.segmenter.tokens(text)

    def classify(self, subject: str, description: str = "") -> Classification:
        rules = self.rules
        weights = dict(rules.field_weights)
        texts = {"subject": subject, "description": description}
        scores: dict[str, int] = {}
        found: dict[str, list[Match]] = {}
        negated: list[Match] = []
        for field_name in FIELDS:
            text = texts[field_name]
            factor = weights.get(field_name, 0)
            if not text or factor <= 0:
                continue
            tokens = self.tokens(text)
            # Every occurrence of a term contains its first word in the words run together:
            # a substring test (in C) rules out most terms before the word-by-word walk.
            haystack = "".join(tokens)
            index = TokenIndex(tokens)
            normalised = normalise(text)
            for category in rules.categories:
                for group in category.keywords:
                    for term in group.terms:
                        if term.words[0][0] not in haystack:
                            continue
                        found_term = self._keyword(category.name, group, term, tokens, index, field_name, factor)
                        if found_term is None:
                            continue
                        match, cancelled = found_term
                        if cancelled:
                            negated.append(match)
                            continue
                        found.setdefault(category.name, []).append(match)
                        scores[category.name] = scores.get(category.name, 0) + match.points
                for pattern in category.patterns:
                    hit = pattern.regex.search(normalised)
                    if hit is None:
                        continue
                    points = pattern.weight * factor
                    found.setdefault(category.name, []).append(
                        Match(
                            category.name,
                            pattern.name,
                            "pattern",
                            pattern.regex.pattern,
                            hit.group(0),
                            field_name,
                            points,
                        )
                    )
                    scores[category.name] = scores.get(category.name, 0) + points
        order = {c.name: index for index, c in enumerate(rules.categories)}
        ranked = sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
        language = detect_language(f"{subject}\n{description}")
        if ranked and ranked[0][1] >= rules.min_score:
            best, score = ranked[0]
            return Classification(
                best, score, language, tuple(found[best]), tuple(ranked), tuple(negated), rules.version
            )
        return Classification(rules.default_category, 0, language, (), tuple(ranked), tuple(negated), rules.version)

    def _keyword(
        self,
        category: str,
        group: KeywordGroup,
        term: Term,
        tokens: Sequence[str],
        index: TokenIndex,
        field_name: str,
        factor: int,
    ) -> tuple[Match, bool] | None:
        """The term's match in ``tokens`` and whether negation cancels it (it counts if any
        of its occurrences is not negated)."""
        first: tuple[int, int] | None = None
        for start, end in term.occurrences(tokens, index):
            first = first or (start, end)
            if not self._negated(tokens, start, end):
                return self._match(category, group, term, tokens, (start, end), field_name, factor), False
        if first is None:
            return None
        return self._match(category, group, term, tokens, first, field_name, factor), True

    @staticmethod
    def _match(
        category: str,
        group: KeywordGroup,
        term: Term,
        tokens: Sequence[str],
        span: tuple[int, int],
        field_name: str,
        factor: int,
    ) -> Match:
        words = tokens[span[0] : span[1]]
        shown = "".join(words) if group.language == "zh" else " ".join(words)
        return Match(category, group.name, "keyword", term.text, shown, field_name, group.weight * factor)

    def _negated(self, tokens: Sequence[str], start: int, end: int) -> bool:
        """A negation cue ends less than ``window`` words before the term, or starts less than
        ``window`` words after it, with no punctuation in between."""
        negation = self.rules.negation
        window = negation.window
        reach = window + 3  # cues may be several words long
        before: list[str] = []
        for index in range(start - 1, max(-1, start - 1 - reach), -1):
            if _is_punctuation(tokens[index]):
                break
            before.insert(0, tokens[index])
        # The cues tried only where they can start (most are absent): a text's terms are many
        # and each asks this.
        where = TokenIndex(before)
        for cue in negation.before:
            if any(len(before) - cue_end < window for _, cue_end in cue.occurrences(before, where)):
                return True
        after: list[str] = []
        for index in range(end, min(len(tokens), end + reach)):
            if _is_punctuation(tokens[index]):
                break
            after.append(tokens[index])
        where = TokenIndex(after)
        return any(cue_start < window for cue in negation.after for cue_start, _ in cue.occurrences(after, where))


# --- loading --------------------------------------------------------------------------------


def load_classification(path: str | Path, categories: Categories = DEFAULT_CATEGORIES) -> ClassificationRules:
    """Load a classification rules file whose rules name ``categories`` (the desk's); raise
    :class:`IntakeConfigError` listing every problem."""
    located, version = read_located(path)
    return _ClassificationReader(located, categories).build(version)


def load_classifier(path: str | Path | None = None) -> Classifier:
    return Classifier(load_classification(path or default_classification_path()))


def _term(text: str) -> Term:
    """A term's words, split the way complaint text is (so both sides agree).

    Chinese terms are whole words of the segmenter's dictionary; spaces separate the
    words of a phrase; a trailing ``*`` on a word makes it a prefix."""
    words: list[tuple[str, bool]] = []
    for piece in normalise(text).split():
        prefix = piece.endswith("*")
        piece = piece.rstrip("*")
        if not piece:
            continue
        parts = [piece] if _CJK.search(piece) else _LATIN_WORDS.findall(piece) or [piece]
        for index, part in enumerate(parts):
            words.append((part, prefix and index == len(parts) - 1))
    pieces = normalise(text).split()
    joined = pieces[0] if len(pieces) == 1 and _CJK.search(pieces[0]) and not pieces[0].endswith("*") else ""
    return Term(text=text, words=tuple(words), joined=joined)


# English words split like jieba splits them: letters and digits, apostrophes and hyphens apart.
_LATIN_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


class _ClassificationReader(Reader):
    def build(self, version: str) -> ClassificationRules:
        section = self.section("classification", _SECTION_KEYS)
        base: YamlPath = ("classification",)
        categories_raw = section.get("categories")
        categories: list[CategoryRules] = []
        if not isinstance(categories_raw, dict) or not categories_raw:
            self.problem((*base, "categories"), "categories must be a mapping of category name -> rules")
        else:
            for name, options in categories_raw.items():
                category = self._category(name, options, (*base, "categories", name))
                if category is not None:
                    categories.append(category)
        default = section.get("default_category", "other")
        if default not in self.categories:
            self.problem(
                (*base, "default_category"),
                f"default_category must be one of the desk's categories ({self.categories.listing()}), got {default!r}",
            )
            default = "other"
        min_score = self.integer(section.get("min_score", 1), (*base, "min_score"), "min_score", minimum=1)
        frequency = self.integer(
            section.get("word_frequency", 20_000), (*base, "word_frequency"), "word_frequency", minimum=1, maximum=10**9
        )
        weights = self._field_weights(section.get("field_weights"), (*base, "field_weights"))
        words = self.texts(section.get("words", []), (*base, "words"), "words")
        negation = self._negation(section.get("negation"), (*base, "negation"))
        self.fail_if_problems()
        return ClassificationRules(
            categories=tuple(categories),
            default_category=default,
            min_score=min_score or 1,
            field_weights=weights,
            words=tuple(words),
            word_frequency=frequency or 20_000,
            negation=negation,
            version=version,
            source=self.located.file,
        )

    def _field_weights(self, raw: Any, path: YamlPath) -> tuple[tuple[str, int], ...]:
        if raw is None:
            return (("subject", 2), ("description", 1))
        if not isinstance(raw, dict):
            self.problem(path, "field_weights must map subject and description to whole numbers")
            return ()
        self.unknown_keys(raw, set(FIELDS), path, "field_weights")
        result = []
        for name in FIELDS:
            value = self.integer(raw.get(name, 1), (*path, name), f"field_weights.{name}", maximum=100)
            result.append((name, value if value is not None else 1))
        return tuple(result)

    def _negation(self, raw: Any, path: YamlPath) -> Negation:
        if raw is None:
            return Negation()
        if not isinstance(raw, dict):
            self.problem(path, "negation must be a mapping with before, after and window")
            return Negation()
        self.unknown_keys(raw, _NEGATION_KEYS, path, "negation")
        window = self.integer(raw.get("window", 2), (*path, "window"), "negation.window", minimum=1, maximum=10)
        before = self.texts(raw.get("before", []), (*path, "before"), "negation.before")
        after = self.texts(raw.get("after", []), (*path, "after"), "negation.after")
        return Negation(tuple(_term(t) for t in before), tuple(_term(t) for t in after), window or 2)

    def _category(self, name: str, options: Any, path: YamlPath) -> CategoryRules | None:
        if name not in self.categories:
            self.problem(path, f"unknown category {name!r} (the desk's categories: {self.categories.listing()})")
        if not isinstance(options, dict):
            self.problem(path, f"category {name!r} must be a mapping with keywords and/or patterns")
            return None
        self.unknown_keys(options, _CATEGORY_KEYS, path, f"category {name!r}")
        groups: list[KeywordGroup] = []
        raw_groups = options.get("keywords", [])
        if not isinstance(raw_groups, list):
            self.problem((*path, "keywords"), f"{name}: keywords must be a list of groups")
            raw_groups = []
        for index, raw in enumerate(raw_groups):
            group = self._group(name, raw, (*path, "keywords", index), index)
            if group is not None:
                groups.append(group)
        patterns: list[PatternRule] = []
        raw_patterns = options.get("patterns", [])
        if not isinstance(raw_patterns, list):
            self.problem((*path, "patterns"), f"{name}: patterns must be a list")
            raw_patterns = []
        for index, raw in enumerate(raw_patterns):
            pattern = self._pattern(name, raw, (*path, "patterns", index), index)
            if pattern is not None:
                patterns.append(pattern)
        if not groups and not patterns and "keywords" not in options and "patterns" not in options:
            self.problem(path, f"category {name!r} has neither keywords nor patterns")
        return CategoryRules(name=name, keywords=tuple(groups), patterns=tuple(patterns))

    def _group(self, category: str, raw: Any, path: YamlPath, index: int) -> KeywordGroup | None:
        if not isinstance(raw, dict):
            self.problem(path, f"{category}: a keyword group is a mapping with lang, weight and terms")
            return None
        self.unknown_keys(raw, _GROUP_KEYS, path, "a keyword group")
        lang = raw.get("lang")
        if lang not in LANGUAGES:
            self.problem(
                (*path, "lang") if "lang" in raw else path,
                f"{category}: lang must be one of {', '.join(LANGUAGES)}, got {lang!r}",
            )
        weight = self.integer(raw.get("weight", 1), (*path, "weight"), f"{category}: weight", minimum=1, maximum=1000)
        terms = self.texts(raw.get("terms"), (*path, "terms"), f"{category}: terms")
        if not terms and isinstance(raw.get("terms"), list):
            self.problem((*path, "terms"), f"{category}: a keyword group needs at least one term")
        name = raw.get("name", f"{category}.keywords[{index}]")
        if not isinstance(name, str):
            self.problem((*path, "name"), f"{category}: name must be text")
            name = f"{category}.keywords[{index}]"
        if lang not in LANGUAGES or weight is None:
            return None
        parsed = []
        for term_index, text in enumerate(terms):
            term = _term(text)
            if not term.words:
                self.problem((*path, "terms", term_index), f"{category}: term {text!r} has no words")
                continue
            parsed.append(term)
        return KeywordGroup(category, name, str(lang), weight, tuple(parsed))

    def _pattern(self, category: str, raw: Any, path: YamlPath, index: int) -> PatternRule | None:
        if not isinstance(raw, dict):
            self.problem(path, f"{category}: a pattern is a mapping with regex and weight")
            return None
        self.unknown_keys(raw, _PATTERN_KEYS, path, "a pattern")
        source = self.text(raw.get("regex"), (*path, "regex"), f"{category}: regex")
        weight = self.integer(raw.get("weight", 1), (*path, "weight"), f"{category}: weight", minimum=1, maximum=1000)
        name = raw.get("name", f"{category}.patterns[{index}]")
        if not isinstance(name, str):
            self.problem((*path, "name"), f"{category}: name must be text")
            name = f"{category}.patterns[{index}]"
        if source is None or weight is None:
            return None
        try:
            regex = re.compile(normalise(source), re.IGNORECASE)
        except re.error as exc:
            self.problem((*path, "regex"), f"{category}: invalid regular expression {source!r}: {exc}")
            return None
        if regex.search(""):
            self.problem((*path, "regex"), f"{category}: regular expression {source!r} matches empty text")
            return None
        return PatternRule(category, name, regex, weight)


def summary(rules: ClassificationRules) -> Mapping[str, int]:
    """How many terms and patterns each category has (for `disputes intake check`)."""
    return {c.name: sum(len(g.terms) for g in c.keywords) + len(c.patterns) for c in rules.categories}
