"""The API tests' client: the real ASGI app over a real database (tests/support/api.py), one
per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from runtime.settings import Settings
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from tests.support.actors import T0
from tests.support.api import Api
from tests.support.builders import engine_of, make_service


@pytest.fixture
def api_factory(db_url: str) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(settings_overrides: dict[str, object] | None = None, **service_kwargs: object) -> Api:
        clock = ManualClock(T0)
        overrides = {"run_dispatcher": False, **(settings_overrides or {})}
        settings = Settings(environment="test", database_url=db_url, run_ticker=False, **overrides)  # type: ignore[arg-type]
        service_kwargs.setdefault("sla", SlaPlanner(default_calendars()))
        service = make_service(db_url, clock=clock, **service_kwargs)  # type: ignore[arg-type]
        engine = engine_of(service, settings)
        client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
        client.__enter__()
        api = Api(client=client, service=service, clock=clock, settings=settings, engine=engine)
        made.append(api)
        return api

    yield make
    for api in made:
        api.client.__exit__(None, None, None)
        api.service.db.dispose()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()
