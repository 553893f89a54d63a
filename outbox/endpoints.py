"""Webhook endpoints: registered by admins (any case, or one merchant's) and by merchants for
their own merchant id, each with the event types it wants; secrets rotated with an overlap.

An endpoint's URL must be https outside development, and its host must not resolve to a
private, loopback or link-local address (the server must not be made to call into its own
network); in development both are allowed, so tests use receivers on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, select, update
from sqlmodel import Session

from cases import idempotency
from notify.signing import new_secret
from store.db import Database
from store.tables import WEBHOOK_ENDPOINTS
from workflow.errors import InvalidCommandError, NotFoundError, PolicyDeniedError
from workflow.model import Actor

ROTATION_OVERLAP = timedelta(hours=24)
Resolver = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    description: str
    owner_id: str
    merchant_id: str | None
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str
    created_at: datetime
    slow_until: datetime | None = None

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to."""
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except socket.gaierror as exc:
        raise InvalidCommandError(f"the endpoint's host {host!r} does not resolve", field="url") from exc


def check_url(url: str, *, development: bool, resolver: Resolver = resolve) -> str:
    """The URL, or InvalidCommandError saying why it may not receive webhooks."""
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as exc:
        raise InvalidCommandError(f"not a URL: {exc}", field="url") from exc
    if parts.scheme not in ("https", "http") or not hostname or any(c.isspace() for c in url.strip()):
        raise InvalidCommandError("an endpoint is an absolute http(s) URL", field="url")
    if len(url) > 2000:
        raise InvalidCommandError("an endpoint URL is at most 2000 characters", field="url")
    if development:
        return url.strip()
    if parts.scheme != "https":
        raise InvalidCommandError("endpoints must use https outside development", field="url")
    for address in resolver(hostname):
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified:
            raise InvalidCommandError(
                f"the endpoint's host resolves to {ip}, a private, loopback or link-local address", field="url"
            )
    return url.strip()


def _types(event_types: list[str] | None) -> str:
    values = [t.strip() for t in (event_types or ["*"]) if t.strip()]
    for value in values:
        if value != "*" and not value.replace("_", "").replace(".", "").isalnum():
            raise InvalidCommandError(f"unknown event type {value!r}", field="event_types")
    return ",".join(sorted(set(values))) or "*"


def _scope(actor: Actor, merchant_id: str | None) -> str | None:
    """Whose cases the endpoint hears: admins choose (None: all); a merchant only its own."""
    if actor.role == "admin":
        return merchant_id
    if actor.role == "merchant" and actor.merchant_id and merchant_id in (None, actor.merchant_id):
        return actor.merchant_id
    raise PolicyDeniedError("manage_webhooks", ["admins, and merchants for their own merchant id, manage endpoints"])


def _of(r: Row[Any]) -> Endpoint:
    return Endpoint(
        id=r.id,
        url=r.url,
        description=r.description,
        owner_id=r.owner_id,
        merchant_id=r.merchant_id,
        event_types=tuple(r.event_types.split(",")),
        enabled=r.enabled,
        disabled_reason=r.disabled_reason,
        created_at=r.created_at,
        slow_until=r.slow_until,
    )


def register(
    db: Database,
    actor: Actor,
    *,
    url: str,
    now: datetime,
    development: bool,
    event_types: list[str] | None = None,
    merchant_id: str | None = None,
    description: str = "",
    resolver: Resolver = resolve,
) -> tuple[Endpoint, str]:
    """A new endpoint and its secret (shown once)."""
    scope = _scope(actor, merchant_id)
    checked = check_url(url, development=development, resolver=resolver)
    secret = new_secret()
    endpoint_id = "ep_" + secrets.token_hex(8)
    values = {
        "id": endpoint_id,
        "url": checked,
        "description": description[:400],
        "owner_id": actor.id,
        "merchant_id": scope,
        "event_types": _types(event_types),
        "secret": secret,
        "enabled": True,
        "disabled_reason": "",
        "created_at": now,
    }
    endpoint = Endpoint(
        id=endpoint_id,
        url=checked,
        description=values["description"],  # type: ignore[arg-type]
        owner_id=actor.id,
        merchant_id=scope,
        event_types=tuple(str(values["event_types"]).split(",")),
        enabled=True,
        disabled_reason="",
        created_at=now,
    )

    def work(session: Session) -> tuple[Endpoint, str]:
        session.execute(WEBHOOK_ENDPOINTS.insert().values(**values))
        return endpoint, secret

    # With an Idempotency-Key the key and the answer (secret included) commit with the row.
    return db.run_write(lambda s: idempotency.command(s, now, lambda: work(s)))


def _visible(actor: Actor, row: Row[Any]) -> bool:
    if actor.role in ("admin", "system"):
        return True
    return actor.role == "merchant" and row.merchant_id is not None and row.merchant_id == actor.merchant_id


def get(db: Database, actor: Actor, endpoint_id: str) -> Endpoint:
    with db.read() as session:
        row = session.execute(select(WEBHOOK_ENDPOINTS).where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)).first()
    if row is None or not _visible(actor, row):
        raise NotFoundError("webhook endpoint", endpoint_id)
    return _of(row)


def list_endpoints(db: Database, actor: Actor) -> list[Endpoint]:
    _scope(actor, actor.merchant_id if actor.role == "merchant" else None)
    stmt = select(WEBHOOK_ENDPOINTS).order_by(WEBHOOK_ENDPOINTS.c.created_at, WEBHOOK_ENDPOINTS.c.id)
    if actor.role != "admin":
        stmt = stmt.where(WEBHOOK_ENDPOINTS.c.merchant_id == actor.merchant_id)
    with db.read() as session:
        return [_of(r) for r in session.execute(stmt).all()]


def update_endpoint(
    db: Database,
    actor: Actor,
    endpoint_id: str,
    *,
    development: bool,
    url: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
    resolver: Resolver = resolve,
) -> Endpoint:
    get(db, actor, endpoint_id)
    values: dict[str, object] = {}
    if url is not None:
        values["url"] = check_url(url, development=development, resolver=resolver)
    if event_types is not None:
        values["event_types"] = _types(event_types)
    if description is not None:
        values["description"] = description[:400]
    if enabled is not None:
        values["enabled"] = enabled
        values["disabled_reason"] = "" if enabled else f"disabled by {actor.id}"
        if enabled:
            values["slow_until"] = None
    if values:
        db.run_write(
            lambda s: s.execute(update(WEBHOOK_ENDPOINTS).where(WEBHOOK_ENDPOINTS.c.id == endpoint_id).values(**values))
        )
    return get(db, actor, endpoint_id)


def rotate_secret(db: Database, actor: Actor, endpoint_id: str, now: datetime) -> str:
    """A new secret; the old one keeps signing too for ``ROTATION_OVERLAP`` (both signatures sent)."""
    get(db, actor, endpoint_id)
    secret = new_secret()

    def work(session: Session) -> str:
        row = session.execute(select(WEBHOOK_ENDPOINTS.c.secret).where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)).first()
        if row is None:
            raise NotFoundError("webhook endpoint", endpoint_id)
        session.execute(
            update(WEBHOOK_ENDPOINTS)
            .where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)
            .values(secret=secret, previous_secret=row.secret, previous_secret_until=now + ROTATION_OVERLAP)
        )
        return secret

    return db.run_write(lambda s: idempotency.command(s, now, lambda: work(s)))


def remove(db: Database, actor: Actor, endpoint_id: str) -> None:
    get(db, actor, endpoint_id)
    db.run_write(lambda s: s.execute(delete(WEBHOOK_ENDPOINTS).where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)))


def secrets_in_force(row: Row[Any], now: datetime) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous during rotation."""
    found = [row.secret]
    previous, until = row.previous_secret, row.previous_secret_until
    if previous and until is not None and until > now:
        found.append(previous)
    return found
