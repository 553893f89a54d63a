"""One definition of an identifier and of free text, for every way in: the HTTP schemas, the
domain's decide(), the service and the command line all call these functions.

Identifiers (merchant ids, order references, mediator and user ids, calendar names) are
matched against other records, so two that look alike must be one string. They are
normalised with NFKC (full-width "ｍ-１００１" becomes "m-1001", the ligature "ﬁ" becomes
"fi") and then refused if they are empty or longer than their cap, or hold a character
that is not a letter, mark, number, punctuation or symbol: whitespace, control and format
characters (zero-width spaces and joiners, bidi controls, soft hyphens), line and paragraph
separators, private-use, surrogate and unassigned code points, and the other characters
Unicode marks as default-ignorable (invisible fillers, variation selectors). An identifier
may not start with a combining mark (it would fuse with whatever is printed before it).

Free text (subjects, descriptions, messages, reasons, names) is a person's own words and is
kept as written: no normalisation. It refuses control characters other than tab, line feed
and carriage return (NUL, ESC and the C1 controls among them; PostgreSQL refuses NUL
outright), unpaired surrogates (they cannot be stored as UTF-8), and the bidi embedding,
override and isolate controls (they make text read differently from how it is stored).
Marks that scripts and emoji need (zero-width joiner and non-joiner, left-to-right and
right-to-left marks) stay allowed. Required text must hold at least one visible character:
whitespace and invisible characters alone are blank.

Pure: the callers turn a refusal into their own error (a 422 problem, an
``InvalidCommandError``, a command-line usage error).
"""

from __future__ import annotations

import re
import unicodedata

from workflow.errors import InvalidCommandError

IDENTIFIER_MAX = 100
TEXT_MAX = 20_000

# Letters, marks, numbers, punctuation and symbols: the general categories an identifier's
# characters may have. Everything else (Z*: separators, C*: control, format, surrogate,
# private use, unassigned) is refused.
_IDENTIFIER_CATEGORIES = frozenset("LMNPS")

# Default_Ignorable_Code_Point from Unicode's DerivedCoreProperties.txt (Unicode 15.1):
# characters that render as nothing. Most are format characters (refused by category
# anyway); the letters and marks among them (U+115F HANGUL CHOSEONG FILLER, U+3164 HANGUL
# FILLER, U+034F COMBINING GRAPHEME JOINER, variation selectors...) would pass the category
# test and make an invisible difference. U+2800 BRAILLE PATTERN BLANK is not default-ignorable
# but prints as a blank cell; it is refused with them.
_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

# Free text: C0 controls but tab, LF and CR; DEL; the C1 controls.
_TEXT_CONTROLS = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r")
# Bidi embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI).
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def invisible(ch: str) -> bool:
    """A character that prints as nothing (or as a blank): default-ignorable, or a braille blank."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


def identifier_problem(value: str, *, limit: int = IDENTIFIER_MAX) -> str | None:
    """Why ``value`` (already NFKC-normalised) is not an identifier, or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if unicodedata.category(value[0])[0] == "M":
        return "must not start with a combining mark"
    for ch in value:
        category = unicodedata.category(ch)
        if category[0] not in _IDENTIFIER_CATEGORIES or invisible(ch):
            return f"must not contain {_describe(ch, category)}"
    return None


def normalise_identifier(value: str, *, limit: int = IDENTIFIER_MAX) -> str:
    """``value`` in NFKC, or ValueError saying why it cannot be an identifier."""
    normal = unicodedata.normalize("NFKC", value)
    problem = identifier_problem(normal, limit=limit)
    if problem is not None:
        raise ValueError(f"an identifier {problem}")
    return normal


def identifier(value: object, field: str, *, limit: int = IDENTIFIER_MAX) -> str:
    """The domain's form of :func:`normalise_identifier`: InvalidCommandError naming ``field``."""
    if not isinstance(value, str):
        raise InvalidCommandError(f"{field} must be text", field=field)
    try:
        return normalise_identifier(value, limit=limit)
    except ValueError as exc:
        raise InvalidCommandError(f"{field}: {exc}", field=field) from None


def is_identifier(value: str, *, limit: int = IDENTIFIER_MAX) -> bool:
    """Is ``value`` an identifier exactly as given (already normalised)? For ids that must match
    as they are, such as a token's subject."""
    return unicodedata.is_normalized("NFKC", value) and identifier_problem(value, limit=limit) is None


def blank(value: str) -> bool:
    """Nothing visible: only whitespace, controls and invisible characters."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") or invisible(ch) for ch in value)


# Every character free text refuses, as one class: found at C speed even in a long
# description (a per-character loop was fifty times slower; bench/results.md).
_TEXT_REFUSED = re.compile("[" + "".join(map(re.escape, sorted(_TEXT_CONTROLS | BIDI_CONTROLS))) + "\ud800-\udfff]")


def text_problem(value: str, *, required: bool, limit: int = TEXT_MAX) -> str | None:
    """Why ``value`` is not acceptable free text, or None."""
    if len(value) > limit:
        return f"must be at most {limit} characters"
    refused = _TEXT_REFUSED.search(value)
    if refused is not None:
        ch = refused.group()
        return f"must not contain {_describe(ch, unicodedata.category(ch))}"
    if required and blank(value):
        return "must not be blank"
    return None


def check_free_text(value: str, *, required: bool, limit: int = TEXT_MAX) -> str:
    """``value`` unchanged, or ValueError saying why it is not acceptable free text."""
    problem = text_problem(value, required=required, limit=limit)
    if problem is not None:
        raise ValueError(f"text {problem}")
    return value


def free_text(value: object, field: str, *, required: bool = True, limit: int = TEXT_MAX) -> str:
    """The domain's form of :func:`check_free_text`: InvalidCommandError naming ``field``.
    ``None`` and "" are the empty text (refused when required)."""
    if value is None or value == "":
        if required:
            raise InvalidCommandError(f"{field} is required", field=field)
        return ""
    if not isinstance(value, str):
        raise InvalidCommandError(f"{field} must be text", field=field)
    problem = text_problem(value, required=required, limit=limit)
    if problem is not None:
        raise InvalidCommandError(f"{field} {problem}", field=field)
    return value


def _describe(ch: str, category: str) -> str:
    """A character named so that the message itself shows no invisible or control character."""
    name = unicodedata.name(ch, "")
    kind = {
        "Cc": "a control character",
        "Cf": "a format character",
        "Cs": "a surrogate",
        "Co": "a private-use character",
        "Cn": "an unassigned code point",
        "Zs": "a space",
        "Zl": "a line separator",
        "Zp": "a paragraph separator",
    }.get(category, "an invisible character")
    return f"{kind} (U+{ord(ch):04X}{' ' + name if name else ''})"
