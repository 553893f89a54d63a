"""The outbox tests' engines: built with the outbox hook wired, disposed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.builders import make_outbox_engine


@pytest.fixture
def outbox_engine(db_url: str) -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(clock: ManualClock | None = None) -> Engine:
        engine = make_outbox_engine(db_url, clock=clock)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()
