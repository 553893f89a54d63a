"""B10: the browser console's server time: a case page with 200 events and a merchant's inbox
over 500 claims (issue #19: p95 <= 50 ms each on SQLite).

Requests go through the whole app in process (``create_app``, the console mounted, a bearer
header as an identity proxy would send it), timed from the request to the last byte of the
answer. The baseline, measured in the same run on the same data, is the API's JSON answer
for the same reads: the case and its events (``/v1/cases/{id}`` + ``/v1/cases/{id}/events``)
and the merchant's queue (``/v1/queue``); the ratio says what rendering the page costs on top.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_token
from bench.common import CONSUMER, MEDIATOR, MERCHANT, Outcome, Row, fmt_ms, log, make_service, new_case, percentile
from bench.context import Context
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import SystemClock
from workflow.model import Actor

NAME = "B10"
TARGET_SECONDS = 0.050
CASE_EVENTS = 200
INBOX_CLAIMS = 500


def _bearer(settings: Settings, actor: Actor) -> dict[str, str]:
    # Token expiry is wall-clock time (the engine's manual clock stands at T0).
    now = SystemClock().now()
    token = mint_token(settings, sub=actor.id, role=actor.role, merchant_id=actor.merchant_id, now=now)
    return {"Authorization": f"Bearer {token}"}


def _p95(get: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        get()
        times.append(time.perf_counter() - start)
    return percentile(times, 0.95)


def _ok(client: TestClient, path: str, headers: dict[str, str]) -> Callable[[], object]:
    def get() -> object:
        answer = client.get(path, headers=headers)
        if answer.status_code != 200:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text[:200]}")
        return answer

    return get


def run(ctx: Context) -> Outcome:
    out = Outcome()
    with ctx.backend.fresh("console") as url:
        settings = Settings(environment="test", database_url=url, run_ticker=False)
        service = make_service(url)
        engine = Engine(settings=settings, cases=service)
        # The quick form (the harness's smoke test) uses smaller data; the target is for the full sizes.
        case_events, inbox_claims = ctx.pick(quick=(60, 100), full=(CASE_EVENTS, INBOX_CLAIMS))
        log(f"B10: a case with {case_events} events, {inbox_claims} claims against one merchant")
        long_case = service.file(actor=CONSUMER, new_case=new_case())
        service.execute(actor=MEDIATOR, case_id=long_case.id, name="assign", data={"mediator_id": MEDIATOR.id})
        version = service.get(actor=CONSUMER, case_id=long_case.id).version
        speakers = (CONSUMER, MERCHANT)
        while version < case_events:
            author = speakers[version % 2]
            version = service.execute(
                actor=author, case_id=long_case.id, name="comment", data={"body": f"message {version}"}
            ).version
        for index in range(inbox_claims - 1):
            claim = service.file(actor=CONSUMER, new_case=new_case(order_ref=f"TB-{index}"))
            if index % 5:  # most with a running response clock, some waiting for a mediator
                service.execute(actor=MEDIATOR, case_id=claim.id, name="assign", data={"mediator_id": MEDIATOR.id})
        count = ctx.pick(quick=10, full=100)
        with TestClient(create_app(engine=engine)) as client:
            consumer, merchant = _bearer(settings, CONSUMER), _bearer(settings, MERCHANT)
            case_page = _ok(client, f"/console/cases/{long_case.id}", consumer)

            def case_api() -> object:
                _ok(client, f"/v1/cases/{long_case.id}", consumer)()
                return _ok(client, f"/v1/cases/{long_case.id}/events?limit=200", consumer)()

            inbox_page = _ok(client, "/console/inbox", merchant)
            inbox_api = _ok(client, "/v1/queue?limit=50", merchant)
            for warm in (case_page, case_api, inbox_page, inbox_api):
                for _ in range(3):
                    warm()
            samples: dict[str, list[float]] = {"case": [], "case_api": [], "inbox": [], "inbox_api": []}
            for _ in range(ctx.runs):
                samples["case"].append(_p95(case_page, count))
                samples["case_api"].append(_p95(case_api, count))
                samples["inbox"].append(_p95(inbox_page, count))
                samples["inbox_api"].append(_p95(inbox_api, count))
                log(f"B10: case page p95 {fmt_ms(samples['case'][-1])}, inbox p95 {fmt_ms(samples['inbox'][-1])}")
        service.db.dispose()
    for label, page, api, what in (
        ("case page", "case", "case_api", f"{case_events} events"),
        ("merchant inbox", "inbox", "inbox_api", f"{inbox_claims} claims, first page of 50 and the summary"),
    ):
        page_p95 = sorted(samples[page])[len(samples[page]) // 2]
        api_p95 = sorted(samples[api])[len(samples[api]) // 2]
        out.rows.append(
            Row(
                f"B10 console {label} ({what}): p95 server time",
                f"API JSON {fmt_ms(api_p95)}",
                fmt_ms(page_p95),
                page_p95 / api_p95,
                f"p95 <= {TARGET_SECONDS * 1000:.0f} ms",
                page_p95 <= TARGET_SECONDS,
            )
        )
    out.notes.append(
        f"B10: {count} requests per run, p95 of each run, median over {ctx.runs} runs; in-process through the "
        "whole app (TestClient), signed in by a bearer header; the ratio is the page's p95 over the API's "
        "JSON for the same reads (case + events; the merchant's queue)."
    )
    return out
