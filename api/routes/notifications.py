"""Webhook endpoints (admins; merchants for their own merchant id), their failed deliveries, and
every caller's notification inbox and contact settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.answers import answering
from api.deps import CurrentActor, EngineDep
from api.onehop import OneHopRoute
from api.openapi import problems
from api.params import Position
from api.schemas.notifications import (
    ContactBody,
    ContactPublic,
    EndpointCreate,
    EndpointCreated,
    EndpointPublic,
    EndpointsPublic,
    EndpointUpdate,
    FailedDeliveriesPublic,
    FailedDeliveryPublic,
    Marked,
    MarkRead,
    NoticePublic,
    NoticesPublic,
    Resend,
    Resent,
    SecretPublic,
    UnreadCount,
)
from cases.queries import encode_cursor
from outbox import endpoints, inbox
from outbox.endpoints import Endpoint
from outbox.status import list_failed, resend
from runtime.engine import Engine

webhooks = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=OneHopRoute)
notices = APIRouter(prefix="/v1/notifications", tags=["notifications"], route_class=OneHopRoute)


def _development(engine: Engine) -> bool:
    """Outside production, endpoints may be plain http and on this machine (tests, trials)."""
    return engine.settings.environment != "production"


@webhooks.get(
    "",
    response_model=EndpointsPublic,
    summary="The webhook endpoints you manage",
    responses=problems(401, 403),
)
def list_endpoints(actor: CurrentActor, engine: EngineDep) -> EndpointsPublic:
    return EndpointsPublic(data=[EndpointPublic.of(e) for e in endpoints.list_endpoints(engine.db, actor)])


@webhooks.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint (admins; merchants for their own cases)",
    responses=problems(401, 403, 422),
)
def register(body: EndpointCreate, actor: CurrentActor, engine: EngineDep, response: Response) -> EndpointCreated:
    with answering(status.HTTP_201_CREATED, _created, _location):
        created, secret = endpoints.register(
            engine.db,
            actor,
            url=body.url,
            now=engine.clock.now(),
            development=_development(engine),
            event_types=body.event_types,
            merchant_id=body.merchant_id,
            description=body.description,
        )
    response.headers.update(_location((created, secret)))
    return _created((created, secret))


def _created(result: tuple[Endpoint, str]) -> EndpointCreated:
    created, secret = result
    return EndpointCreated(**EndpointPublic.of(created).model_dump(), secret=secret)


def _location(result: tuple[Endpoint, str]) -> dict[str, str]:
    return {"location": f"/v1/webhooks/{result[0].id}"}


@webhooks.get(
    "/{endpoint_id}", response_model=EndpointPublic, summary="One webhook endpoint", responses=problems(401, 404)
)
def get_endpoint(endpoint_id: str, actor: CurrentActor, engine: EngineDep) -> EndpointPublic:
    return EndpointPublic.of(endpoints.get(engine.db, actor, endpoint_id))


@webhooks.patch(
    "/{endpoint_id}",
    response_model=EndpointPublic,
    summary="Change an endpoint: its URL, event types, or enable it again",
    responses=problems(401, 404, 422),
)
def change_endpoint(endpoint_id: str, body: EndpointUpdate, actor: CurrentActor, engine: EngineDep) -> EndpointPublic:
    changed = endpoints.update_endpoint(
        engine.db,
        actor,
        endpoint_id,
        development=_development(engine),
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
        description=body.description,
    )
    return EndpointPublic.of(changed)


@webhooks.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an endpoint",
    responses=problems(401, 404),
    response_class=Response,
)
def remove_endpoint(endpoint_id: str, actor: CurrentActor, engine: EngineDep) -> Response:
    endpoints.remove(engine.db, actor, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@webhooks.post(
    "/{endpoint_id}/rotate-secret",
    response_model=SecretPublic,
    summary="A new signing secret; the old one also signs for 24 hours",
    responses=problems(401, 404),
)
def rotate(endpoint_id: str, actor: CurrentActor, engine: EngineDep) -> SecretPublic:
    with answering(status.HTTP_200_OK, _secret):
        secret = endpoints.rotate_secret(engine.db, actor, endpoint_id, engine.clock.now())
    return _secret(secret)


def _secret(secret: str) -> SecretPublic:
    return SecretPublic(secret=secret)


@webhooks.get(
    "/{endpoint_id}/failed",
    response_model=FailedDeliveriesPublic,
    summary="Deliveries that failed after the last retry",
    responses=problems(401, 404),
)
def failed(
    endpoint_id: str,
    actor: CurrentActor,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FailedDeliveriesPublic:
    found = list_failed(engine.db, actor, endpoint_id, limit=limit)
    return FailedDeliveriesPublic(data=[FailedDeliveryPublic.of(f) for f in found])


@webhooks.post(
    "/{endpoint_id}/resend",
    response_model=Resent,
    summary="Send failed deliveries again (and enable the endpoint)",
    responses=problems(401, 404, 422),
)
def resend_failed(endpoint_id: str, body: Resend, actor: CurrentActor, engine: EngineDep) -> Resent:
    with answering(status.HTTP_200_OK, _resent):
        queued = resend(engine.db, actor, endpoint_id, engine.clock.now(), body.ids)
    return _resent(queued)


def _resent(queued: int) -> Resent:
    return Resent(queued=queued)


@notices.get("", response_model=NoticesPublic, summary="Your notices, newest first", responses=problems(401, 422))
def list_notices(
    actor: CurrentActor,
    engine: EngineDep,
    before: Position,
    unread: Annotated[bool, Query(description="Only unread notices.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NoticesPublic:
    found, next_pk = inbox.list_notices(
        engine.cases, engine.notification_rules(), actor, unread_only=unread, before=before, limit=limit
    )
    return NoticesPublic(
        data=[NoticePublic.of(n) for n in found], next_cursor=encode_cursor(next_pk) if next_pk else None
    )


@notices.get(
    "/unread-count", response_model=UnreadCount, summary="How many notices you have not read", responses=problems(401)
)
def unread_count(actor: CurrentActor, engine: EngineDep) -> UnreadCount:
    return UnreadCount(unread=inbox.unread_count(engine.cases, actor))


@notices.post(
    "/read", response_model=Marked, summary="Mark notices read (all of them without ids)", responses=problems(401, 404)
)
def mark_read(body: MarkRead, actor: CurrentActor, engine: EngineDep) -> Marked:
    with answering(status.HTTP_200_OK, _marked):
        marked = inbox.mark_read(engine.cases, actor, body.ids, engine.clock.now())
    return _marked(marked)


def _marked(marked: int) -> Marked:
    return Marked(marked=marked)


@notices.get(
    "/contact",
    response_model=ContactPublic,
    summary="Your e-mail, language and notice choices",
    responses=problems(401),
)
def get_contact(actor: CurrentActor, engine: EngineDep) -> ContactPublic:
    return ContactPublic.of(inbox.get_contact(engine.cases, actor))


@notices.put(
    "/contact",
    response_model=ContactPublic,
    summary="Set your e-mail, language, which kinds by e-mail, and the daily digest",
    responses=problems(401, 422),
)
def put_contact(body: ContactBody, actor: CurrentActor, engine: EngineDep) -> ContactPublic:
    contact = inbox.set_contact(
        engine.cases,
        actor,
        email=body.email,
        language=body.language,
        email_kinds=body.email_kinds,
        digest=body.digest,
        now=engine.clock.now(),
    )
    return ContactPublic.of(contact)
