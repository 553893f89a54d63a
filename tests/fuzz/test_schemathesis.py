"""Schemathesis against the OpenAPI document, in-process, with a token per role.

Every operation gets FUZZ_EXAMPLES examples (100 by default, schemathesis's own default,
as in CI); each example is sent as the next role in turn, and half of them address a real
case so that the handlers past the 404 are reached. Every check schemathesis has is on
(schemathesis.toml widens the statuses two of them accept and fuzzes the multipart upload
with valid shapes only, saying why) and the app runs with its default settings, the rate
limiter included: no server error, status codes, content types, headers and bodies as the
document declares.

A second run sends every operation's cases through a limiter that allows one request a
minute, so that the 429 answers themselves are checked against the document.

Two checks expect a request without valid credentials to get exactly 401 or 403; the rate
limiter, which runs before authentication, may answer it 429 instead (and must: issue 16
asks that failed authentication be throttled). :func:`missing_required_header_or_throttled`
and :func:`ignored_auth_or_throttled` are those checks with that one answer also accepted.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import IgnoredAuth
from schemathesis.specs.openapi.checks import ignored_auth, missing_required_header
from sqlmodel import SQLModel

from api.app import create_app
from api.auth import mint_token
from runtime.settings import Settings
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.db import make_engine
from tests.support.actors import T0
from tests.support.builders import engine_of, make_service, new_case
from workflow.model import Actor

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
ROLES = [
    ("c-1", "consumer", None),
    ("mu-1", "merchant", "m-1"),
    ("med-1", "mediator", None),
    ("sen-1", "senior_mediator", None),
    ("aud-1", "auditor", None),
    ("adm-1", "admin", None),
    None,
]

# The document is read at import time, so the app and its database exist from then on.
_DIR = tempfile.TemporaryDirectory(prefix="disputes-fuzz-")
_URL = f"sqlite:///{Path(_DIR.name) / 'fuzz.db'}"
_engine = make_engine(_URL)
SQLModel.metadata.create_all(_engine)
_engine.dispose()
# The app's default limits, both of them: 600 requests a minute per caller and 60 failed
# authentications a minute per address. Only the hold-back of a throttled failure (a tarpit:
# wall-clock waiting, no other behaviour) is off, or the run would spend minutes asleep.
SETTINGS = Settings(environment="test", database_url=_URL, run_ticker=False, auth_failure_delay_seconds=0)
for _limit in ("rate_limit_per_minute", "auth_failures_per_minute"):
    assert getattr(SETTINGS, _limit) == Settings.model_fields[_limit].default
SERVICE = make_service(_URL, clock=ManualClock(T0), sla=SlaPlanner(default_calendars()))
APP = create_app(engine=engine_of(SERVICE, SETTINGS))
CONFIG_FILE = str(Path(__file__).resolve().parents[2] / "schemathesis.toml")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=SchemathesisConfig.from_path(CONFIG_FILE))
THROTTLED = create_app(engine=engine_of(SERVICE, SETTINGS.model_copy(update={"rate_limit_per_minute": 1})))
throttled_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", THROTTLED, config=SchemathesisConfig.from_path(CONFIG_FILE)
)
# Behind a wall of 429s every request looks alike: a few random ones per operation suffice.
throttled_schema.config.phases.update(phases=["fuzzing"])
HEALTH_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[dict[str, Any]]:
    case = SERVICE.file(actor=Actor("c-1", "consumer"), new_case=new_case())
    SERVICE.execute(actor=Actor("med-1", "mediator"), case_id=case.id, name="assign")
    tokens = [
        {
            "Authorization": "Bearer "
            + mint_token(SETTINGS, sub=r[0], role=r[1], merchant_id=r[2], now=T0, ttl=timedelta(days=3650))
        }
        if r
        else {}
        for r in ROLES
    ]
    yield {"case_id": case.id, "tokens": itertools.cycle(tokens), "counter": itertools.count()}
    SERVICE.db.dispose()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS)
def test_api_conforms_to_its_document(case: Any, fuzz_target: dict[str, Any]) -> None:
    _call_as_next_role(case, fuzz_target)


@throttled_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=HEALTH_CHECKS)
def test_throttled_api_conforms_to_its_document(case: Any, fuzz_target: dict[str, Any]) -> None:
    _call_as_next_role(case, fuzz_target)


def _throttled(response: Any) -> bool:
    return bool(response.status_code == 429 and response.headers.get("retry-after"))


def missing_required_header_or_throttled(ctx: Any, response: Any, case: Any) -> bool | None:
    if _throttled(response):
        return None  # refused before anything looked at the headers; Retry-After says when to come back
    result: bool | None = missing_required_header(ctx, response, case)
    return result


def ignored_auth_or_throttled(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        result: bool | None = ignored_auth(ctx, response, case)
    except IgnoredAuth as failure:
        # The check's own probe without (or with bad) credentials was throttled, not let through.
        if "`429 Too Many Requests`" in failure.message:
            return None
        raise
    return result


def _call_as_next_role(case: Any, fuzz_target: dict[str, Any]) -> None:
    if case.path_parameters and "case_id" in case.path_parameters and next(fuzz_target["counter"]) % 2 == 0:
        case.path_parameters["case_id"] = fuzz_target["case_id"]
    headers = dict(case.headers or {})
    token = next(fuzz_target["tokens"])
    # A negative case may have broken the headers on purpose (a missing Authorization, say):
    # adding a valid token back would turn it into a valid request and a false finding.
    if not (case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)):
        headers.update(token)
    case.call_and_validate(
        headers=headers,
        excluded_checks=[missing_required_header, ignored_auth],
        additional_checks=[missing_required_header_or_throttled, ignored_auth_or_throttled],
    )
