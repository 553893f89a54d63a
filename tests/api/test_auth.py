"""Identities: every 401 cause, RS256, the settings' refusal of unsafe defaults, /v1/policies."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import UnauthenticatedError, actor_from_token, mint_token
from runtime.settings import DEV_SECRET, Settings
from sla.clock import SystemClock
from tests.support.actors import T0
from tests.support.api import Api

HS = Settings(environment="test", jwt_leeway_seconds=0)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "bearer token is required"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, ""),
        (bearer("not.a.jwt"), "malformed"),
        (
            bearer(mint_token(HS, sub="c-1", role="consumer", now=T0 - timedelta(days=2), ttl=timedelta(hours=1))),
            "expired",
        ),
        (
            bearer(
                jwt.encode(
                    {"sub": "c-1", "role": "consumer", "exp": 4_000_000_000},
                    "another-secret-of-32-chars-xxxxx",
                    algorithm="HS256",
                )
            ),
            "signature",
        ),
        (
            bearer(
                f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'c-1', 'role': 'admin', 'exp': 4_000_000_000})}."
            ),
            "",
        ),
        (
            bearer(jwt.encode({"sub": "c-1", "role": "pope", "exp": 4_000_000_000}, DEV_SECRET, algorithm="HS256")),
            "role",
        ),
        (
            bearer(
                jwt.encode({"sub": "mu-1", "role": "merchant", "exp": 4_000_000_000}, DEV_SECRET, algorithm="HS256")
            ),
            "merchant_id",
        ),
        (bearer(jwt.encode({"role": "consumer", "exp": 4_000_000_000}, DEV_SECRET, algorithm="HS256")), ""),
    ],
    ids=[
        "missing",
        "wrong-scheme",
        "malformed",
        "expired",
        "wrong-signature",
        "alg-none",
        "unknown-role",
        "merchant-without-id",
        "no-subject",
    ],
)
def test_each_401_cause(api: Api, headers: dict[str, str], detail: str) -> None:
    response = api.client.get("/v1/cases", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["type"].endswith(":unauthenticated")
    assert detail in response.json()["detail"]


def test_rs256_tokens() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings(environment="test", jwt_algorithm="RS256", jwt_public_key=public)
    token = mint_token(settings, sub="aud-1", role="auditor", now=SystemClock().now(), private_key=private)
    assert actor_from_token(token, settings).role == "auditor"
    # An HS256 token signed with the public key as secret (algorithm confusion) is refused.
    forged = jwt.encode({"sub": "x", "role": "admin", "exp": 4_000_000_000}, DEV_SECRET, algorithm="HS256")
    with pytest.raises(UnauthenticatedError):
        actor_from_token(forged, settings)


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValueError, match="DISPUTES_JWT_SECRET"):
        Settings(environment="production")
    with pytest.raises(ValueError):
        Settings(environment="production", jwt_secret="short")
    with pytest.raises(ValueError, match="DISPUTES_AUDIT_SIGNING_KEY"):
        Settings(environment="production", jwt_secret="s" * 40)
    with pytest.raises(ValueError, match="DISPUTES_KEY_FILE"):
        Settings(environment="production", jwt_secret="s" * 40, audit_signing_key="11" * 32)
    configured = Settings(
        environment="production", jwt_secret="s" * 40, audit_signing_key="11" * 32, key_file=Path("keys.json")
    )
    assert configured.environment == "production"


def test_policies_route_for_auditors_not_consumers(api: Api) -> None:
    listed = api.client.get("/v1/policies", headers=api.token("aud-1", "auditor"))
    assert listed.status_code == 200
    body = listed.json()
    assert len(body["version"]) == 64 and {p["id"] for p in body["data"]} >= {"consumer-withdraws", "senior-rules"}
    assert all(p["reason"] for p in body["data"])
    refused = api.client.get("/v1/policies", headers=api.token("c-1", "consumer"))
    assert refused.status_code == 403 and refused.json()["reasons"]


def test_a_token_verified_once_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are cached by their text; the cache never outlives the token."""
    import time

    from api import auth

    settings = Settings(environment="test", jwt_secret=HS.jwt_secret, jwt_leeway_seconds=0)
    token = mint_token(settings, sub="c-1", role="consumer", now=SystemClock().now(), ttl=timedelta(minutes=5))
    assert actor_from_token(token, settings).id == "c-1"
    assert actor_from_token(token, settings).id == "c-1"  # from the cache
    monkeypatch.setattr(auth, "_now", lambda: time.time() + 301)
    with pytest.raises(UnauthenticatedError, match="expired"):
        actor_from_token(token, settings)
    # A refusal is not cached: another secret's settings verify the same text afresh.
    other = Settings(environment="test", jwt_secret="another-secret-of-32-chars-xxxxx", jwt_leeway_seconds=0)
    with pytest.raises(UnauthenticatedError, match="signature"):
        actor_from_token(token, other)
