"""An HTTP client on the real ASGI app over a real database, with a token per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_token
from cases.service import CaseService
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from tests.cases.helpers import T0, engine_of, make_service


@dataclass
class Api:
    client: TestClient
    service: CaseService
    clock: ManualClock
    settings: Settings
    engine: Engine

    def token(self, sub: str, role: str, merchant_id: str | None = None) -> dict[str, str]:
        token = mint_token(
            self.settings, sub=sub, role=role, merchant_id=merchant_id, now=self.clock.now(), ttl=timedelta(days=3650)
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_factory(db_url: str) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(settings_overrides: dict[str, object] | None = None, **service_kwargs: object) -> Api:
        clock = ManualClock(T0)
        settings = Settings(environment="test", database_url=db_url, run_ticker=False, **(settings_overrides or {}))  # type: ignore[arg-type]
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
