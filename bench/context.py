"""What every benchmark module gets: the database backend, the size mode and shared datasets."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bench.common import Backend

T = TypeVar("T")


@dataclass
class Context:
    backend: Backend
    quick: bool
    runs: int
    warmups: int = 1
    # Datasets several benchmarks share (e.g. the scale databases), closed at the end.
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    shared: dict[str, object] = field(default_factory=dict)

    def pick(self, *, quick: T, full: T) -> T:
        return quick if self.quick else full

    def cached(self, key: str, build: Callable[[], T]) -> T:
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]  # type: ignore[return-value]

    def close(self) -> None:
        self.stack.close()
        self.shared.clear()
