"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import EngineDep
from api.onehop import OneHopRoute
from api.problems import problem
from api.schemas import Health
from outbox.status import outbox_depth

router = APIRouter(tags=["operations"], route_class=OneHopRoute)


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database answers and policies are loaded",
    responses={503: {"description": "Not ready"}},
)
def readyz(engine: EngineDep) -> Health | Response:
    try:
        engine.db.ping()
        depth = outbox_depth(engine.db)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return problem(503, "unavailable", f"database not reachable: {type(exc).__name__}")
    return Health(
        status="ready", database=engine.db.dialect, policies=engine.cases.authorizer.version, outbox_depth=depth
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
