"""A desk's complaint categories: ids with a title per language.

A desk declares its own (``categories:`` in desk.yaml, desk/loader.py), e.g. a card issuer's
network reason codes; a desk that declares none uses :data:`DEFAULT_CATEGORIES`, the engine's
seven, so desks written before categories were declarable behave as they did. The loaded desk
carries its list; the case service, the intake files, the scenario runner, the reports and the
console read it from there, never from a global.

A case keeps the category id it was filed with. A category a later desk version no longer
declares still renders: :meth:`Categories.title` falls back to the id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# The languages every title must be given in (the console's languages).
TITLE_LANGUAGES = ("zh-CN", "en")
# Lowercase letters, digits, "_", "." and "-" (a card network's "10.4" or "4853" fits); no ",",
# which separates a mediator's skills in storage, and never "*", which means any category there.
CATEGORY_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,47}$")
CATEGORY_ID_PATTERN = CATEGORY_ID.pattern


@dataclass(frozen=True, slots=True)
class CategoryDef:
    """One category: its id (what cases, rules and reports name) and its titles by language."""

    id: str
    titles: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Categories:
    """The categories of a desk, in its order (reports and the console list them so).
    ``declared``: the desk's own list (False: the engine's default seven)."""

    defs: tuple[CategoryDef, ...]
    declared: bool = False
    _by_id: Mapping[str, CategoryDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {d.id: d for d in self.defs})

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.defs)

    def __contains__(self, category: object) -> bool:
        return isinstance(category, str) and category in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.defs)

    def title(self, category: str, language: str) -> str:
        """The title in ``language`` (else English, else the id: a category a later desk version
        dropped still renders on the cases filed under it)."""
        found = self._by_id.get(category)
        if found is None:
            return category
        return found.titles.get(language) or found.titles.get("en") or category

    def titles(self, language: str) -> dict[str, str]:
        return {d.id: self.title(d.id, language) for d in self.defs}

    def order(self, category: str) -> int:
        """Where ``category`` sorts: in the desk's order, unknown ones last."""
        ids = self.ids
        return ids.index(category) if category in self._by_id else len(ids)

    def listing(self) -> str:
        return ", ".join(self.ids)

    @property
    def version(self) -> str:
        """sha256 of the ids and titles in order: what a reload logs as the desk's categories."""
        text = json.dumps([[d.id, dict(sorted(d.titles.items()))] for d in self.defs], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


DEFAULT_CATEGORIES = Categories(
    tuple(
        CategoryDef(id_, {"zh-CN": zh, "en": en})
        for id_, zh, en in (
            ("product_quality", "产品质量", "Product quality"),
            ("counterfeit", "假冒商品", "Counterfeit"),
            ("not_received", "未收到货", "Not received"),
            ("not_as_described", "货不对板", "Not as described"),
            ("after_sales", "售后服务", "After-sales service"),
            ("false_advertising", "虚假宣传", "False advertising"),
            ("other", "其他", "Other"),
        )
    )
)


def parse_categories(
    raw: Any,
    problem: Callable[[tuple[Any, ...], str], None],
) -> Categories:
    """desk.yaml's ``categories:``, a list of ``{id, title: {zh-CN, en, ...}}``; every mistake
    is reported through ``problem(path, message)``. Absent: the default categories."""
    if raw is None:
        return DEFAULT_CATEGORIES
    if not isinstance(raw, list) or not raw:
        problem(("categories",), "categories must be a non-empty list of {id, title: {zh-CN, en}}")
        return DEFAULT_CATEGORIES
    defs: list[CategoryDef] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where: tuple[Any, ...] = ("categories", index)
        if not isinstance(item, dict):
            problem(where, "a category is a mapping: {id, title: {zh-CN, en}}")
            continue
        unknown = sorted(str(k) for k in item if k not in ("id", "title"))
        if unknown:
            problem((*where, unknown[0]), f"unknown key {unknown[0]!r} in a category (allowed: id, title)")
        category = item.get("id")
        if not isinstance(category, str) or not CATEGORY_ID.match(category):
            problem(
                (*where, "id"),
                f"category id {category!r} must be lowercase letters, digits, '_', '.' or '-' "
                "(at most 48, starting with a letter or digit)",
            )
            continue
        if category in seen:
            problem((*where, "id"), f"category {category!r} is declared twice")
            continue
        seen.add(category)
        titles = item.get("title")
        if not isinstance(titles, dict):
            languages = ", ".join(TITLE_LANGUAGES)
            problem(
                (*where, "title") if "title" in item else where, f"category {category!r} needs a title in {languages}"
            )
            continue
        missing = [
            lang for lang in TITLE_LANGUAGES if not isinstance(titles.get(lang), str) or not titles[lang].strip()
        ]
        if missing:
            problem((*where, "title"), f"category {category!r} has no title in {', '.join(missing)}")
            continue
        bad = sorted(str(k) for k, v in titles.items() if not isinstance(v, str))
        if bad:
            problem((*where, "title", bad[0]), f"category {category!r}: title {bad[0]!r} must be text")
            continue
        defs.append(CategoryDef(category, {str(k): v.strip() for k, v in titles.items()}))
    return Categories(tuple(defs), declared=True)
