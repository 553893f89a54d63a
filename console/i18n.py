"""Languages: Chinese (zh-CN) and English, chosen by ``Accept-Language`` or a switch that sticks.

The messages live in gettext ``.po`` catalogs (``messages/zh_CN.po``, ``messages/en.po``); they
are compiled in memory when the console starts (Babel reads the ``.po``, writes the ``.mo``
into a buffer), so there is no build step and no compiled file in the repository.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGE_COOKIE = "console_lang"
MESSAGES_DIR = Path(__file__).parent / "messages"
# The catalog file and the Babel locale of each language.
CATALOG_FILES = {"zh-CN": "zh_CN.po", "en": "en.po"}
BABEL_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The compiled catalog of ``language`` (one of :data:`LANGUAGES`)."""
    with (MESSAGES_DIR / CATALOG_FILES[language]).open("rb") as source:
        catalog = read_po(source, locale=BABEL_LOCALES[language])
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _from_tag(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The viewer's language: the switch's cookie if set, else the best ``Accept-Language``
    match (RFC 9110 quality values), else :data:`DEFAULT_LANGUAGE`."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = _from_tag(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
