"""The API's schemas derive their closed lists from the domain's one list of each."""

from __future__ import annotations

from typing import get_args

from api.schemas import CaseCreate, MediatorCreate
from api.schemas.mediators import MediatorCategory, MediatorLanguage
from intake.classify import LANGUAGES
from workflow.model import CATEGORIES, Category


def _enum(schema: dict[str, object], *path: str) -> list[str]:
    node: object = schema
    for key in path:
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, dict)
    found = node.get("enum") or next(item["enum"] for item in node["anyOf"] if "enum" in item)
    return list(found)


def test_the_category_list_is_written_once() -> None:
    assert CATEGORIES == get_args(Category) and len(CATEGORIES) == 7
    assert set(get_args(MediatorCategory)) == {*CATEGORIES, "*"}
    assert set(get_args(MediatorLanguage)) == {*LANGUAGES, "*"}


def test_the_request_schemas_offer_exactly_the_domains_categories() -> None:
    assert _enum(CaseCreate.model_json_schema(), "properties", "category") == list(CATEGORIES)
    mediator = MediatorCreate.model_json_schema()
    items = mediator["properties"]["categories"]["items"]
    assert set(items["enum"]) == {*CATEGORIES, "*"}
