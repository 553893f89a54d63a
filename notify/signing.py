"""Standard Webhooks signing (https://www.standardwebhooks.com), with the standard library only.

A message is signed as ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``; the key is
the base64 part of a ``whsec_...`` secret. During a secret rotation a message carries one
signature per live secret, separated by spaces, so a receiver holding either verifies it.
The tests verify these signatures with the independent ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class SecretError(ValueError):
    """A webhook secret that is not ``whsec_`` followed by base64 text."""


def new_secret() -> str:
    """A fresh random secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_...`` secret holds."""
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretError("a webhook secret is 'whsec_' followed by base64 text") from exc
    if len(key) < 24:
        raise SecretError("a webhook secret holds at least 24 bytes")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,...`` signature of the message under one secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets_in_force: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret in force (rotation)."""
    signatures = " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_force)
    if not signatures:
        raise SecretError("a message needs at least one secret to be signed")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


def verify(secret: str, received: Mapping[str, str], body: bytes) -> bool:
    """Whether one of the message's signatures is the secret's (for the project's own checks;
    receivers use their own library)."""
    expected = signature(secret, received["webhook-id"], int(received["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, given) for given in received["webhook-signature"].split())
