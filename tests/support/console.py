"""The console tests' toolbox: the real app over a real database with the desk's triage, a
client that signs in as a person and posts forms with their CSRF token, and the form
values the pages carry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_token
from cases.triage import Triage
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from tests.support.actors import T0
from tests.support.builders import engine_of, make_service
from workflow.model import Actor

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')


def console_engine(db_url: str, *, demo: bool = False, clock: ManualClock | None = None) -> Engine:
    """An engine as `disputes serve` builds one: default policies, clocks, the desk's triage."""
    # No background ticker or dispatcher: tests drive clocks and deliveries themselves.
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, run_dispatcher=False, demo=demo)
    service = make_service(
        db_url, clock=clock or ManualClock(T0), sla=SlaPlanner(default_calendars()), triage=Triage.load()
    )
    return engine_of(service, settings)


def token_for(engine: Engine, actor: Actor) -> str:
    return mint_token(
        engine.settings,
        sub=actor.id,
        role=actor.role,
        merchant_id=actor.merchant_id,
        now=engine.clock.now(),
        ttl=timedelta(days=3650),
    )


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Browserless:
    """One person's session with the console through the ASGI app (cookies kept)."""

    client: TestClient
    engine: Engine

    def sign_in(self, actor: Actor) -> None:
        page = self.client.get("/console/sign-in")
        answer = self.client.post(
            "/console/session",
            data={"csrf_token": csrf_of(page.text), "token": token_for(self.engine, actor)},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text

    def csrf(self, path: str = "/console/cases") -> str:
        return csrf_of(self.client.get(path).text)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.client.post(path, data=data, follow_redirects=False, **kwargs)


def console_client(engine: Engine) -> Browserless:
    client = TestClient(create_app(engine=engine), raise_server_exceptions=True)
    client.__enter__()
    return Browserless(client, engine)


# A one-page PDF with a line of text (a 300 x 200 point page): evidence the workbench previews.
ONE_PAGE_PDF = b"""%PDF-1.4
1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj
4 0 obj<</Length 44>>stream
BT /F1 24 Tf 40 100 Td (Waybill 42) Tj ET
endstream endobj
5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj
trailer<</Root 1 0 R>>
%%EOF
"""
