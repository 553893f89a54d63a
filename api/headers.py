"""Response headers that protect what the API sends, and HEAD answered like GET.

* ``X-Content-Type-Options: nosniff`` on every response: a browser renders a body only
  as its declared type (an uploaded "image" that is really HTML stays an image).
* ``Cache-Control: no-store`` on every ``/v1`` response: each is personal or confidential
  case data read with the caller's token; no shared or browser cache may keep it.
* ``Content-Disposition: attachment`` with a safe RFC 6266 file name, for downloads
  (:func:`attachment`).
* HEAD on any route that answers GET (:class:`HeadAsGet`): Starlette adds HEAD to plain
  routes only, not to FastAPI's API routes.

The middleware here wraps the whole application, outside Starlette's error middleware,
so that even an unexpected error's 500 carries the headers.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PERSONAL_DATA_PREFIX = "/v1/"
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds ``nosniff`` to every response and ``no-store`` to every personal-data response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        personal = str(scope.get("path", "")).startswith(PERSONAL_DATA_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Personal data is never cached, whatever a route said: drop any other Cache-Control.
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not (personal and name.lower() == b"cache-control")
                ]
                if not any(name.lower() == _NOSNIFF[0] for name, _ in headers):
                    headers.append(_NOSNIFF)
                if personal:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """Answer HEAD as the same GET would be answered, without the body (RFC 9110 9.3.2).

    The request goes on as a GET (so it is authenticated, rate-limited, authorized and
    audited like one); the status and headers, Content-Length included, are the GET's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


# --- Content-Disposition ----------------------------------------------------------------------

# RFC 5987 attr-char besides letters and digits: what may stand unencoded in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"
# Kept in the plain filename="..." fallback: printable ASCII but the quote, the backslash and
# "%" (some clients percent-decode the plain parameter).
_UNSAFE_ASCII = {'"', "\\", "%"}
_MAX_NAME = 150


def safe_filename(name: str) -> str:
    """``name`` as a download name: its last path segment, NFC-normalized, without control,
    format (zero-width, bidi) or separator characters other than the space, without
    leading dots, at most 150 characters. May be empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        char
        for char in unicodedata.normalize("NFC", base)
        if char == " " or unicodedata.category(char)[0] not in ("C", "Z")
    )
    return kept.strip(" ").lstrip(".")[:_MAX_NAME].strip(" ")


def attachment(name: str, fallback: str) -> str:
    """A ``Content-Disposition: attachment`` value (RFC 6266) naming ``name`` safely.

    The plain ``filename`` is ASCII (other characters become ``_``); when the name is not
    plain ASCII, ``filename*`` (RFC 8187, UTF-8) carries it exactly. ``fallback`` (ASCII)
    names the file when nothing of ``name`` is left."""
    cleaned = safe_filename(name) or fallback
    plain = "".join(char if " " <= char <= "~" and char not in _UNSAFE_ASCII else "_" for char in cleaned)
    if plain == cleaned:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(cleaned, safe=_ATTR_CHARS)}"
