"""The desk's rulebook: the platform rules and legal provisions its mediators apply and cite.

``rulebook.yaml`` in a desk directory: entries, each with an ``id`` (what commands cite), a
``citation`` (the provision as a lawyer would name it), a ``title`` and a plain-language
``summary`` in zh-CN and en, and the ``categories`` and ``triggers`` it concerns. Mediators see
the entries that apply to a case's category; a ruling or a rejection cites entries by id in
``data.citations``; the case's answer shows the cited entries in plain language. Loading
reports every problem with its file and line; the desk's cross-check refuses a citation (in a
scenario, say) of an entry that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intake.config import Reader, YamlPath, read_located
from workflow.text import is_identifier

LANGS = ("zh-CN", "en")
_ENTRY_KEYS = {"id", "citation", "title", "summary", "categories", "triggers", "source"}


@dataclass(frozen=True, slots=True)
class RuleEntry:
    id: str
    citation: str
    title: dict[str, str]
    summary: dict[str, str]
    categories: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    source: str = ""
    line: int = 1

    def applies_to(self, category: str) -> bool:
        """An entry without categories applies to every case."""
        return not self.categories or category in self.categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "citation": self.citation,
            "title": dict(self.title),
            "summary": dict(self.summary),
            "categories": list(self.categories),
            "triggers": list(self.triggers),
            "source": self.source,
        }


@dataclass(frozen=True)
class Rulebook:
    entries: tuple[RuleEntry, ...] = ()
    file: str = ""
    version: str = ""
    _by_id: dict[str, RuleEntry] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({e.id: e for e in self.entries})

    def get(self, entry_id: str) -> RuleEntry | None:
        return self._by_id.get(entry_id)

    def missing(self, cited: Iterable[str]) -> list[str]:
        return [c for c in cited if c not in self._by_id]

    def for_category(self, category: str) -> list[RuleEntry]:
        return [e for e in self.entries if e.applies_to(category)]

    def cited(self, ids: Sequence[str]) -> list[RuleEntry]:
        return [e for e in (self._by_id.get(i) for i in ids) if e is not None]


def load_rulebook(path: str | Path) -> Rulebook:
    located, version = read_located(path)
    return _RulebookReader(located).build(version)


class _RulebookReader(Reader):
    def build(self, version: str) -> Rulebook:
        section = self.section("rulebook", {"entries"})
        raw = section.get("entries")
        base: YamlPath = ("rulebook", "entries")
        entries: list[RuleEntry] = []
        seen: set[str] = set()
        if not isinstance(raw, list) or not raw:
            self.problem(base, "entries must be a non-empty list")
            raw = []
        for index, item in enumerate(raw):
            entry = self._entry(item, (*base, index))
            if entry is None:
                continue
            if entry.id in seen:
                self.problem((*base, index, "id"), f"entry id {entry.id!r} is used twice")
            seen.add(entry.id)
            entries.append(entry)
        self.fail_if_problems()
        return Rulebook(tuple(entries), self.located.file, version)

    def _entry(self, raw: Any, path: YamlPath) -> RuleEntry | None:
        if not isinstance(raw, dict):
            self.problem(path, "an entry is a mapping with id, citation, title, summary")
            return None
        self.unknown_keys(raw, _ENTRY_KEYS, path, "a rulebook entry")
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not is_identifier(entry_id):
            self.problem((*path, "id"), f"id must be an identifier, got {entry_id!r}")
            return None
        citation = self.text(raw.get("citation"), (*path, "citation"), f"{entry_id}: citation")
        title = self._languages(raw.get("title"), (*path, "title"), f"{entry_id}: title")
        summary = self._languages(raw.get("summary"), (*path, "summary"), f"{entry_id}: summary")
        categories = self.texts(raw.get("categories", []), (*path, "categories"), f"{entry_id}: categories")
        triggers = self.texts(raw.get("triggers", []), (*path, "triggers"), f"{entry_id}: triggers")
        source = raw.get("source", "")
        return RuleEntry(
            id=entry_id,
            citation=citation or "",
            title=title,
            summary=summary,
            categories=tuple(categories),
            triggers=tuple(triggers),
            source=str(source),
            line=self.located.line(path),
        )

    def _languages(self, raw: Any, path: YamlPath, what: str) -> dict[str, str]:
        if not isinstance(raw, dict) or any(not isinstance(raw.get(lang), str) or not raw[lang] for lang in LANGS):
            self.problem(path, f"{what} needs text in {' and '.join(LANGS)}")
            return {}
        return {lang: str(raw[lang]) for lang in LANGS}
