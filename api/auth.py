"""Bearer JWT identities: verify tokens into Actors, and mint development tokens."""

from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from api.problems import ProblemError
from runtime.settings import Settings
from workflow.durations import parse_duration
from workflow.model import Actor

# Where the middleware leaves the actor it verified, for the CurrentActor dependency.
VERIFIED_ACTOR = "verified_actor"
TOKEN_ROLES = ("consumer", "merchant", "mediator", "senior_mediator", "auditor", "admin", "reviewer")


class UnauthenticatedError(ProblemError):
    """No usable identity: missing, malformed, expired or wrongly signed token (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, "unauthenticated", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _verification_key(settings: Settings) -> str:
    if settings.jwt_algorithm == "HS256":
        return settings.jwt_secret
    key = settings.jwt_public_key or ""
    if not key.lstrip().startswith("-----BEGIN"):
        key = Path(key).read_text(encoding="utf-8")
    return key


# Seconds since the epoch, as PyJWT reads the clock; a module attribute so tests can move it.
_now = time.time


def actor_from_token(token: str, settings: Settings) -> Actor:
    """Verify signature, expiry and claims. Only the configured algorithm is accepted, so
    ``alg: none`` and algorithm-confusion tokens are refused."""
    actor, expires = _verified(
        token, _verification_key(settings), settings.jwt_algorithm, settings.jwt_issuer, settings.jwt_leeway_seconds
    )
    # A token verified earlier is taken from the cache; its expiry still counts on every use.
    if _now() > expires + settings.jwt_leeway_seconds:
        raise UnauthenticatedError("the token has expired")
    return actor


# Tokens verified, by their exact text and the key and rules they were checked with. A
# client sends the same token with every request for hours, and checking its signature
# and claims again cost a measurable share of a request (bench B2; bench/results.md). The signature depends only on the
# text and the key; "not before" and "issued at" only become truer with time; expiry is
# checked on each use above. Refusals are not cached (lru_cache keeps no exceptions).
@functools.lru_cache(maxsize=4096)
def _verified(token: str, key: str, algorithm: str, issuer: str | None, leeway: float) -> tuple[Actor, float]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"require": ["sub", "exp"]},
            issuer=issuer,
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError:
        raise UnauthenticatedError("the token has expired") from None
    except jwt.InvalidSignatureError:
        raise UnauthenticatedError("the token's signature is invalid") from None
    except jwt.InvalidAlgorithmError:
        raise UnauthenticatedError(f"the token must be signed with {algorithm}") from None
    except jwt.DecodeError:
        raise UnauthenticatedError("the token is malformed") from None
    except jwt.InvalidTokenError as exc:
        raise UnauthenticatedError(f"the token is invalid: {exc}") from None
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub:
        raise UnauthenticatedError("the token has no subject")
    if role not in TOKEN_ROLES:
        raise UnauthenticatedError(f"the token's role {role!r} is not one of {', '.join(TOKEN_ROLES)}")
    merchant_id = claims.get("merchant_id")
    if role == "merchant" and (not isinstance(merchant_id, str) or not merchant_id):
        raise UnauthenticatedError("a merchant token must carry merchant_id")
    actor = Actor(id=sub, role=role, merchant_id=merchant_id if role == "merchant" else None)
    return actor, float(claims["exp"])


def mint_token(
    settings: Settings,
    *,
    sub: str,
    role: str,
    now: datetime,
    merchant_id: str | None = None,
    ttl: timedelta = timedelta(hours=8),
    private_key: str | None = None,
) -> str:
    """A signed token for development and tests (HS256 with the configured secret, or RS256
    with ``private_key``)."""
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {', '.join(TOKEN_ROLES)}")
    if role == "merchant" and not merchant_id:
        raise ValueError("a merchant token needs --merchant")
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    if merchant_id:
        claims["merchant_id"] = merchant_id
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_algorithm == "RS256":
        if private_key is None:
            raise ValueError("RS256 tokens are minted with a private key")
        return jwt.encode(claims, private_key, algorithm="RS256")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def parse_ttl(text: str) -> timedelta:
    """'8h', '30m', '7d' -> timedelta."""
    duration = parse_duration(text)
    if duration.business:
        raise ValueError("a token lifetime is wall-clock time, not business time")
    return timedelta(seconds=duration.wall_seconds)
