"""Who is signed in, and the CSRF token of their forms.

The session is the bearer token itself (the same JWT the API accepts), kept in an HttpOnly,
SameSite=Lax cookie (Secure when the request came over HTTPS); it is verified on every request
like an API call's token, so signing out, expiry and key rotation need no server-side store.
A request carrying ``Authorization: Bearer`` (an identity proxy in front) is signed in by it.

Every state-changing form carries a CSRF token: an HMAC of what the session is bound to (the
session token, or before sign-in a random pre-session cookie) under the token secret. A
cross-site page can neither read the cookie nor compute the HMAC, and a SameSite=Lax cookie is
not even sent with its POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request, Response

from workflow.model import Actor

SESSION_COOKIE = "console_session"
PRESESSION_COOKIE = "console_presession"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInRefused(Exception):
    """The token is not one the API would accept; ``detail`` says why (expired, bad signature...)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# Verifies a bearer token into the actor it names, or raises SignInRefused. The app (api/app.py)
# passes the API's own verification, so the console accepts exactly the tokens the API does.
TokenVerifier = Callable[[str], Actor]
# Mints a token for a demo identity (subject, role, merchant id); None outside demo mode.
DemoMinter = Callable[[str, str, str | None], str]


@dataclass(frozen=True)
class ConsoleAuth:
    verify: TokenVerifier
    secret: bytes
    mint_demo: DemoMinter | None = None


@dataclass(frozen=True)
class Visitor:
    """Who made a request: the actor if signed in, and what their forms' CSRF token is bound to."""

    actor: Actor | None
    binding: str
    from_header: bool = False
    refused: str | None = None  # why a session cookie was not accepted (expired...)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def visitor(request: Request, auth: ConsoleAuth) -> Visitor:
    """The visitor of ``request``: signed in by header, by cookie, or not at all."""
    token = bearer(request)
    if token is not None:
        try:
            return Visitor(auth.verify(token), token, from_header=True)
        except SignInRefused as refused:
            return Visitor(None, "", from_header=True, refused=refused.detail)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            return Visitor(auth.verify(cookie), cookie)
        except SignInRefused as refused:
            return Visitor(None, request.cookies.get(PRESESSION_COOKIE, ""), refused=refused.detail)
    return Visitor(None, request.cookies.get(PRESESSION_COOKIE, ""))


def csrf_token(auth: ConsoleAuth, binding: str) -> str:
    return hmac.new(auth.secret, b"console-csrf\0" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(auth: ConsoleAuth, binding: str, offered: str | None) -> bool:
    if not binding or not offered:
        return False
    return hmac.compare_digest(csrf_token(auth, binding), offered)


def new_presession() -> str:
    return secrets.token_urlsafe(32)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/console")


def set_presession(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        PRESESSION_COOKIE, value, httponly=True, samesite="lax", secure=_secure(request), path="/console"
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")
