"""The documentation pages, /docs (Swagger UI) and /redoc, from assets the app serves itself.

No CDN: the machine running the engine may have no internet. The assets are the published
npm packages' files, vendored in ``api/static/`` (``MANIFEST.json`` records each package's
version, its tarball's integrity and every file's sha256; tests/api/test_docs.py checks them).

Each page carries a Content-Security-Policy that lets it load only this origin's scripts
(and its own inline start-up script, by hash), fetch only /openapi.json and the API, and be
framed by nobody. Styles may be inline: both bundles set them at run time (Redoc through
styled-components); Redoc's search runs in a Worker made from a blob.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
MANIFEST = STATIC / "MANIFEST.json"
ASSETS = "/docs-assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def manifest() -> dict[str, Any]:
    """The vendored packages: name -> version, tarball integrity, sha256 of each file kept."""
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def content_security_policy(html: str, *, workers: bool = False) -> str:
    """A policy for one documentation page: same-origin scripts plus the page's own inline
    scripts by their sha256, nothing framed, nothing posted anywhere."""
    inline = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    directives = [
        "default-src 'none'",
        "script-src " + " ".join(["'self'", *inline]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        *(["worker-src blob:"] if workers else []),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def _page(html: str, *, workers: bool = False) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html, workers=workers)})


def install_docs(app: FastAPI) -> None:
    """Serve the assets under /docs-assets and the two pages (the app is built with
    ``docs_url=None, redoc_url=None`` so that FastAPI's CDN pages are not registered)."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=None,
            # No badge from the public validator service: it would send the document away.
            swagger_ui_parameters={"validatorUrl": None},
        ).body
    ).decode("utf-8")
    redoc = bytes(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        ).body
    ).decode("utf-8")

    async def swagger_ui(_: Request) -> HTMLResponse:
        return _page(swagger)

    async def redoc_page(_: Request) -> HTMLResponse:
        return _page(redoc, workers=True)

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc_page, include_in_schema=False)
