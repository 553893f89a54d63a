"""B6: server memory (VmRSS of the uvicorn process) after serving 100,000 cases versus 1,000.

The database is pre-loaded with valid cases (bench/bulk.py); then a fresh server
(uvicorn subprocess, production settings) serves the same kind of work on it: the
auditor walks the whole case list (200 per page, so every case is read once), reads
a random sample of cases and their actions lists, a mediator assigns a sample of
filed cases (If-Match from the ETag) and distinct consumers file new cases. VmRSS is
read from /proc/<pid>/status after the work (VmHWM, the peak, is noted too).
"""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy import select

from bench.bulk import ScaleDb, scale_db
from bench.common import AUDITOR, MEDIATOR, Outcome, Row, log, median
from bench.context import Context
from bench.server import Client, Server, engine_env, new_secret, token_for, uvicorn_server
from store.db import Database
from store.tables import CASES
from workflow.model import Actor

NAME = "B6"
TARGET = 1.2
FILE_BODY = {
    "merchant_id": "m-1",
    "order_ref": "ORD-1001",
    "category": "product_quality",
    "subject": "Kettle broken",
    "description": "The kettle stopped heating after two days.",
    "claim": {"amount": 29900, "currency": "CNY"},
}


def sample(db: ScaleDb, count: int, seed: int) -> tuple[list[str], list[str]]:
    """Random case ids, and the filed ones among them."""
    rng = random.Random(seed)
    pks = sorted({rng.randint(db.first_pk, db.last_pk) for _ in range(count)})
    database = Database(db.url)
    try:
        with database.read() as session:
            rows: list[Any] = []
            for start in range(0, len(pks), 500):
                chunk = pks[start : start + 500]
                rows += session.execute(select(CASES.c.id, CASES.c.state).where(CASES.c.pk.in_(chunk))).all()
    finally:
        database.dispose()
    return [r.id for r in rows], [r.id for r in rows if r.state == "filed"]


def workload(ctx: Context, server: Server, db: ScaleDb, secret: str, seed: int) -> dict[str, int]:
    auditor, mediator = token_for(secret, AUDITOR), token_for(secret, MEDIATOR)
    ids, filed = sample(db, ctx.pick(quick=200, full=2000), seed)
    counts = {"list pages": 0, "case reads": 0, "actions lists": 0, "assignments": 0, "filings": 0}
    with Client(server.port) as client:
        cursor = ""
        while True:
            status, _, body = client.get(f"/v1/cases?limit=200{'&cursor=' + cursor if cursor else ''}", auditor)
            assert status == 200, body[:200]
            counts["list pages"] += 1
            cursor = json.loads(body)["next_cursor"] or ""
            if not cursor:
                break
        for case_id in ids:
            status, _, body = client.get(f"/v1/cases/{case_id}", auditor)
            assert status == 200, body[:200]
            counts["case reads"] += 1
        for case_id in ids[: ctx.pick(quick=30, full=300)]:
            status, _, body = client.get(f"/v1/cases/{case_id}/actions", auditor)
            assert status == 200, body[:200]
            counts["actions lists"] += 1
        for case_id in filed[: ctx.pick(quick=30, full=300)]:
            status, headers, body = client.get(f"/v1/cases/{case_id}", mediator)
            if status != 200:
                continue
            version = int(headers["etag"].strip('W/"'))
            status, _, body = client.request(
                "POST", f"/v1/cases/{case_id}/transitions", token=mediator, body={"trigger": "assign"}, if_match=version
            )
            assert status == 200, body[:200]
            counts["assignments"] += 1
        for index in range(ctx.pick(quick=30, full=300)):
            consumer = token_for(secret, Actor(f"c-new-{seed}-{index}", "consumer"))
            status, _, body = client.request("POST", "/v1/cases", token=consumer, body=FILE_BODY)
            assert status == 201, body[:200]
            counts["filings"] += 1
    return counts


def measure(ctx: Context, db: ScaleDb) -> tuple[float, float, float, dict[str, int]]:
    """Median KiB of VmRSS at start and after the work, and of VmHWM; the work done."""
    starts, ends, peaks = [], [], []
    counts: dict[str, int] = {}
    for run in range(ctx.pick(quick=1, full=3)):
        secret = new_secret()
        with uvicorn_server("api.main:create_app", engine_env(db.url, secret)) as server:
            with Client(server.port) as client:
                client.get("/v1/cases?limit=1", token_for(secret, AUDITOR))
            starts.append(server.status()["VmRSS"])
            counts = workload(ctx, server, db, secret, seed=run + 1)
            status = server.status()
            ends.append(status["VmRSS"])
            peaks.append(status["VmHWM"])
        log(f"B6: {db.cases:,} cases: VmRSS {starts[-1] / 1024:.0f} MiB at start, {ends[-1] / 1024:.0f} MiB after")
    return median(starts), median(ends), median(peaks), counts


def run(ctx: Context) -> Outcome:
    out = Outcome()
    small_n, large_n = ctx.pick(quick=(1_000, 10_000), full=(1_000, 100_000))
    small_start, small_end, small_peak, _ = measure(ctx, scale_db(ctx, small_n))
    large_start, large_end, large_peak, counts = measure(ctx, scale_db(ctx, large_n))
    ratio = large_end / small_end
    out.rows.append(
        Row(
            f"B6 server VmRSS after serving {large_n:,} vs {small_n:,} cases",
            f"{small_end / 1024:.0f} MiB",
            f"{large_end / 1024:.0f} MiB",
            ratio,
            f"<= {TARGET}",
            ratio <= TARGET,
        )
    )
    out.notes.append(
        f"B6: VmRSS right after start-up: {small_start / 1024:.0f} MiB / {large_start / 1024:.0f} MiB; peak (VmHWM) "
        f"{small_peak / 1024:.0f} MiB / {large_peak / 1024:.0f} MiB (small / large). Work per server on the large "
        f"database: {', '.join(f'{v:,} {k}' for k, v in counts.items())}."
    )
    return out
