"""The one definition of an identifier and of free text (workflow/text.py), and the currency list.

Properties over arbitrary Unicode: an accepted identifier is NFKC-stable, within its cap and
free of whitespace, control, format, separator and invisible characters; accepted free text
holds no control character but tab and newlines, no bidi control and no unpaired surrogate.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.currency import check_currency, currencies
from workflow.errors import InvalidCommandError
from workflow.text import (
    BIDI_CONTROLS,
    IDENTIFIER_MAX,
    blank,
    check_free_text,
    free_text,
    identifier,
    invisible,
    is_identifier,
    normalise_identifier,
)

# Arbitrary text, with the troublesome characters made likely rather than left to chance.
TRICKY = st.sampled_from(
    [
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9b",
        "\t",
        "\n",
        "\r",
        " ",
        "\u00a0",
        "\u00ad",
        "\u034f",
        "\u061c",
        "\u115f",
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200e",
        "\u202a",
        "\u202e",
        "\u2028",
        "\u2029",
        "\u2066",
        "\u2069",
        "\u2800",
        "\u3000",
        "\u3164",
        "\ufe0f",
        "\ufeff",
        "\uffa0",
        "\U000e0041",
        "\ud800",
        "\udfff",
        "\ue000",
        "ｍ",
        "１",
        "ﬁ",
        "\u0301",
        "[red]",
        "m-1001",
        "商家",
    ]
)
ANY_TEXT = st.lists(st.one_of(st.characters(codec=None), TRICKY), max_size=40).map("".join) | st.text(max_size=150)


@given(ANY_TEXT)
def test_an_accepted_identifier_is_nfkc_stable_and_has_nothing_invisible(value: str) -> None:
    try:
        result = normalise_identifier(value)
    except ValueError:
        return
    assert unicodedata.normalize("NFKC", result) == result
    assert 1 <= len(result) <= IDENTIFIER_MAX
    for ch in result:
        assert unicodedata.category(ch)[0] in "LMNPS", repr(ch)  # no Z* (spaces, Zl, Zp), no C* (Cc, Cf...)
        assert not invisible(ch), repr(ch)
    assert unicodedata.category(result[0])[0] != "M"
    assert is_identifier(result)
    assert normalise_identifier(result) == result  # normalising again changes nothing


@given(ANY_TEXT)
def test_the_domain_and_the_schemas_judge_identifiers_alike(value: str) -> None:
    try:
        expected: str | None = normalise_identifier(value)
    except ValueError:
        expected = None
    try:
        got: str | None = identifier(value, "merchant_id")
    except InvalidCommandError as exc:
        assert exc.field == "merchant_id"
        got = None
    assert got == expected


@given(ANY_TEXT, st.booleans())
def test_accepted_free_text_is_kept_as_written_and_holds_no_controls(value: str, required: bool) -> None:
    try:
        result = check_free_text(value, required=required)
    except ValueError:
        return
    assert result == value  # free text is never rewritten
    for ch in result:
        category = unicodedata.category(ch)
        assert category != "Cc" or ch in "\t\n\r", repr(ch)
        assert category != "Cs", repr(ch)
        assert ch not in BIDI_CONTROLS, repr(ch)
    if required:
        assert not blank(result)
        assert any(not ch.isspace() for ch in result)


@pytest.mark.parametrize(
    ("given_id", "stored"),
    [
        ("ｍ-１００１", "m-1001"),  # full-width letters and digits
        ("m-1001", "m-1001"),
        ("ﬁsh-shop", "fish-shop"),  # a ligature
        ("商家-88", "商家-88"),
        ("Ｍ－１", "M-1"),
    ],
)
def test_identifiers_are_normalised_to_one_form(given_id: str, stored: str) -> None:
    assert normalise_identifier(given_id) == stored


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "m 1001",
        "m-1001\u200b",
        "\u200bm-1001",
        "m-10\u200d01",
        "m-1001\u202e",
        "\u2066m-1001\u2069",
        "m-1001\x00",
        "m-1001\x1b[2J",
        "m-1001\u0085",
        "m\u00ad-1001",
        "m-1001\ufeff",
        "m-1001\u3164",
        "m-1001\u2800",
        "m-1001\ufe0f",
        "m-1001\U000e0041",
        "m-1001\u2028",
        "\u0301m-1001",
        "m-1001\ud800",
        "m-1001\ue000",
        "m-1001\u3000",
        "x" * (IDENTIFIER_MAX + 1),
        "\ufdfa" * 6,  # 6 characters that NFKC spells out as 108: over the cap once normalised
    ],
)
def test_identifiers_with_spaces_controls_or_invisible_characters_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        normalise_identifier(value)
    with pytest.raises(InvalidCommandError):
        identifier(value, "merchant_id")


@pytest.mark.parametrize("value", ["", " ", " \t\n ", "\u3000", "\u200b", "\u200b \ufeff", "\u2800\u3164"])
def test_blank_text_is_refused_where_text_is_required(value: str) -> None:
    with pytest.raises(ValueError, match="blank"):
        check_free_text(value, required=True)
    with pytest.raises(InvalidCommandError, match="blank|required"):
        free_text(value, "subject")


@pytest.mark.parametrize("value", ["\x00", "a\x1b[31mb", "\x07", "\x9b2J", "\u202eevil", "a\u2066b", "\ud800"])
def test_controls_bidi_overrides_and_surrogates_are_refused_in_text(value: str) -> None:
    with pytest.raises(ValueError):
        check_free_text(value, required=False)


@pytest.mark.parametrize(
    "value",
    [
        "Line one\nline two\ttabbed\r\n",
        "收到的耳机是假货",
        "👨\u200d👩\u200d👧",
        "می\u200cخواهم",
        "שלום\u200f",
        "[red]x[/red]",
    ],
)
def test_ordinary_text_keeps_every_character(value: str) -> None:
    assert check_free_text(value, required=True) == value


@pytest.mark.parametrize("code", ["CNY", "USD", "EUR", "JPY", "HKD", "GBP", "KWD", "XOF"])
def test_iso_4217_currencies_are_accepted(code: str) -> None:
    assert check_currency(code) == code


@pytest.mark.parametrize("code", ["XYZ", "ABC", "cny", "Cny", "XTS", "XXX", "XAU", "RMB", "", "CNYY"])
def test_unknown_lower_case_and_non_money_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError):
        check_currency(code)


def test_the_currency_list_is_iso_4217_as_the_package_ships_it() -> None:
    known = currencies()
    assert {"CNY", "USD", "EUR", "JPY"} <= known and len(known) > 150
    assert all(len(code) == 3 and code.isupper() for code in known)
