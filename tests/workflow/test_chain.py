"""canonical_bytes: the C-encoder fast path gives exactly RFC 8785's bytes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.chain import canonical_bytes

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text()  # any code point but lone surrogates: control characters, U+2028, emoji, CJK
    | st.text(alphabet=st.characters(max_codepoint=0x7F))
)
_keys = st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text(min_size=1)  # ASCII keys and any keys
documents: st.SearchStrategy[Any] = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=6), max_leaves=40
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_fast_path_equals_rfc8785(document: Any) -> None:
    assert canonical_bytes(document) == rfc8785.dumps(document)


@pytest.mark.parametrize(
    "document",
    [
        {"amount": 1.5},  # floats take rfc8785's number formatting
        {"ключ": 1, "b": 2},  # non-ASCII keys sort by UTF-16 units there
        {"\U0001f600": 1, "\uffff": 2},
        {"big": 2**53 + 1},
        {"lone": "\ud800"},
        {"text": 'tab\t, nul\x00, quote", backslash\\, U+2028 \u2028, 货'},
    ],
)
def test_documents_off_the_fast_path_still_match(document: Any) -> None:
    try:
        expected = rfc8785.dumps(document)
    except Exception as exc:  # noqa: BLE001 - whatever rfc8785 refuses, we refuse alike
        with pytest.raises(type(exc)):
            canonical_bytes(document)
    else:
        assert canonical_bytes(document) == expected
