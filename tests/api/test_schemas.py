"""The API's schemas derive their closed lists from the domain's one list of each; categories are
the desk's, so the schemas check only a category id's form (the case service checks the rest)."""

from __future__ import annotations

import re
from typing import get_args

from api.schemas import CaseCreate, MediatorCreate
from api.schemas.mediators import MediatorLanguage
from intake.classify import LANGUAGES
from workflow.categories import CATEGORY_ID_PATTERN, DEFAULT_CATEGORIES


def _category_schema(schema: dict[str, object]) -> dict[str, object]:
    node = schema["properties"]["category"]  # type: ignore[index]
    assert isinstance(node, dict)
    return next(item for item in node["anyOf"] if item.get("type") == "string")


def test_the_language_list_is_written_once() -> None:
    assert set(get_args(MediatorLanguage)) == {*LANGUAGES, "*"}


def test_the_request_schemas_take_any_category_id_and_name_the_defaults() -> None:
    category = _category_schema(CaseCreate.model_json_schema())
    assert "enum" not in category and category["pattern"] == CATEGORY_ID_PATTERN
    assert all(name in str(category["description"]) for name in DEFAULT_CATEGORIES.ids)
    items = MediatorCreate.model_json_schema()["properties"]["categories"]["items"]
    pattern = re.compile(items["pattern"])
    assert pattern.match("*") and pattern.match("10.4") and pattern.match("product_quality")
    assert not pattern.match("a,b") and not pattern.match("Product")
