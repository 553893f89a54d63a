"""The snapshot column's codec (store/codec.py): msgspec both ways, the same bytes the
standard library wrote, and stored snapshots of every age still readable."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from store import codec
from workflow.model import CaseSnapshot, Evidence, InfoRequest, Offer, Rating, Review, TimerState

# Any text a request may carry: quotes, backslashes, control characters, CJK, emoji;
# not lone surrogates, which no JSON request can hold.
texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
optional_texts = st.none() | texts
ints = st.integers(-(2**53), 2**53)


def _fill(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Every field of a flat dataclass drawn, defaults included."""
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "str": texts,
        "str | None": optional_texts,
        "int": ints,
        "bool": st.booleans(),
        "dict[str, int]": st.dictionaries(texts, ints, max_size=3),
    }
    return st.builds(cls, **{f.name: kinds[str(f.type)] for f in dataclasses.fields(cls)})


def _tuples(cls: type[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(_fill(cls), max_size=3).map(tuple)


extras = st.dictionaries(texts, st.none() | st.booleans() | ints | texts | st.lists(texts, max_size=2), max_size=3)

snapshots = st.builds(
    CaseSnapshot,
    **{
        f.name: {
            "str": texts,
            "str | None": optional_texts,
            "int": ints,
            "int | None": st.none() | ints,
            "bool": st.booleans(),
            "tuple[str, ...]": st.lists(texts, max_size=3).map(tuple),
            # Case facts (JSON values) and related-case counts.
            "dict[str, Any]": st.dictionaries(texts, st.none() | ints | texts, max_size=3),
            "dict[str, int]": st.dictionaries(texts, ints, max_size=3),
        }[str(f.type)]
        for f in dataclasses.fields(CaseSnapshot)
        if f.name not in {"offers", "evidence", "info_requests", "timers", "ratings", "reviews", "extra"}
    },
    offers=_tuples(Offer),
    evidence=_tuples(Evidence),
    info_requests=_tuples(InfoRequest),
    timers=_tuples(TimerState),
    ratings=_tuples(Rating),
    reviews=_tuples(Review),
    extra=extras,
)


def stdlib_text(snapshot: CaseSnapshot) -> str:
    """What the codec wrote before msgspec: ``json`` over the field-by-field dict."""
    return json.dumps(codec.snapshot_to_dict(snapshot), ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=300)
@given(snapshots)
def test_round_trip_is_exact_and_writes_the_bytes_json_wrote(snapshot: CaseSnapshot) -> None:
    text = codec.snapshot_to_json(snapshot)
    assert text == stdlib_text(snapshot)
    # A fresh decode, not the memo the encode just filled.
    decoded = codec._DECODER.decode(text)
    assert decoded == snapshot
    assert decoded.extra == snapshot.extra
    assert codec.snapshot_from_dict(json.loads(text)) == decoded


@given(snapshots)
def test_snapshot_to_dict_is_plain_json(snapshot: CaseSnapshot) -> None:
    doc = codec.snapshot_to_dict(snapshot)
    assert json.loads(json.dumps(doc)) == doc
    assert [f.name for f in dataclasses.fields(CaseSnapshot)] == list(doc)


def _stored(**changes: Any) -> str:
    doc = {
        "id": "c-1",
        "workflow_name": "default",
        "workflow_version": "v",
        "state": "filed",
        "version": 1,
        "consumer_id": "u-1",
        "merchant_id": "m-1",
        "category": "other",
        "subject": "s",
        "description": "d",
        "order_ref": "o",
        "claim_amount": 100,
        "currency": "CNY",
        "desired_outcome": "refund",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


def test_a_snapshot_from_before_later_fields_reads_with_their_defaults() -> None:
    snapshot = codec.snapshot_from_json(
        _stored(
            offers=[
                {
                    "offer_id": "o-1",
                    "amount": 5,
                    "currency": "CNY",
                    "terms": "",
                    "proposed_by": "merchant",
                    "proposer_id": "m-1",
                }
            ]
        )
    )
    assert snapshot.priority == "normal" and snapshot.flags == () and snapshot.ratings == ()
    assert snapshot.offers == (Offer("o-1", 5, "CNY", "", "merchant", "m-1"),)


def test_a_stored_snapshot_the_strict_decoder_refuses_is_read_field_by_field() -> None:
    # An amount stored as text (hand-edited, or an older writer): read as it stands,
    # as the codec always did, rather than failing every command on the case.
    snapshot = codec.snapshot_from_json(_stored(claim_amount="100", id="c-lenient"))
    assert snapshot.id == "c-lenient"
    assert snapshot.claim_amount == "100"  # type: ignore[comparison-overlap]
