"""B2's baseline: a bare FastAPI app in the engine's style (sync endpoints on the thread pool,
JSON bodies through pydantic, the same connection pool and driver settings) that makes the
same row writes as the engine for each command of the cycle, with precomputed values.

Run by the harness as ``uvicorn --factory bench.bare_app:create_app`` with
``BENCH_BARE_DATABASE_URL`` and ``BENCH_BARE_WRITES`` (a pickle of the statements the
engine issued for one case, recorded in-process on this database just before).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from bench.common import Statement, clone_id, run_statements, substitute
from store.db import make_engine


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int = Field(ge=0, le=10**12)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class FileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: str = Field(min_length=1, max_length=100)
    order_ref: str = Field(min_length=1, max_length=100)
    category: str = Field(min_length=1, max_length=40)
    subject: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    claim: Money
    desired_outcome: str = "refund"


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict, max_length=20)


def _snapshot_of(step: list[Statement]) -> str:
    """The case JSON the engine wrote in this step (the response body of the baseline)."""
    for st in step:
        if st.sql.lstrip().upper().startswith(("INSERT INTO CASES", "UPDATE CASES")):
            values = st.params.values() if isinstance(st.params, dict) else st.params
            for value in values:
                if isinstance(value, str) and value.startswith('{"id"'):
                    return value
    raise ValueError("no case row in this step")


def _events_in(step: list[Statement]) -> int:
    return sum(
        (len(st.params) if st.many else 1) for st in step if st.sql.lstrip().upper().startswith("INSERT INTO EVENTS")
    )


def create_app() -> FastAPI:
    url = os.environ["BENCH_BARE_DATABASE_URL"]
    template_id, steps = pickle.loads(Path(os.environ["BENCH_BARE_WRITES"]).read_bytes())
    engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    snapshots = [_snapshot_of(step) for step in steps]
    versions = list(itertools.accumulate(_events_in(step) for step in steps))
    counter = itertools.count(1)
    lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="bare baseline", lifespan=lifespan)

    def write(step: int, case_id: str) -> Response:
        statements = [Statement(st.sql, substitute(st.params, template_id, case_id), st.many) for st in steps[step]]
        proxy = engine.raw_connection()
        try:
            run_statements(proxy.driver_connection, statements, sqlite=sqlite)
        finally:
            proxy.close()
        return Response(
            content=snapshots[step].replace(template_id, case_id),
            media_type="application/json",
            status_code=201 if step == 0 else 200,
            headers={"ETag": f'"{versions[step]}"', "Location": f"/bare/cases/{case_id}"},
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare/cases", status_code=201)
    def file_case(body: FileBody) -> Response:
        with lock:
            number = next(counter)
        return write(0, clone_id(template_id, number))

    @app.post("/bare/cases/{case_id}/steps/{step}")
    def command(
        case_id: str,
        step: int,
        body: Annotated[StepBody, Body()],
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        if not 1 <= step < len(steps) or if_match is None:
            return Response(status_code=428 if if_match is None else 404)
        return write(step, case_id)

    return app
