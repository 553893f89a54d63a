"""/docs and /redoc come with everything they load, from the app itself, under a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.docs import MANIFEST, STATIC, manifest
from runtime.settings import Settings

PAGES = ["/docs", "/redoc"]
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


class _Page(HTMLParser):
    """The URLs a page loads (src and href) and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]
        self._in_inline_script = tag == "script" and "src" not in found
        if self._in_inline_script:
            self.inline.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline[-1] += data


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'docs.db'}"
    # No lifespan: the pages need neither the service nor the database.
    return TestClient(create_app(Settings(environment="test", database_url=url, run_ticker=False)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_vendored_assets_are_the_published_files_listed_in_the_manifest() -> None:
    packages = manifest()["packages"]
    assert {name: p["version"] for name, p in packages.items()} == {"swagger-ui-dist": "5.36.0", "redoc": "2.5.4"}
    listed: set[Path] = {MANIFEST}
    for name, package in packages.items():
        folder = STATIC / package["folder"]
        assert package["integrity"].startswith("sha512-") and len(package["tarball_sha256"]) == 64
        assert "LICENSE" in package["files"], f"{name}: its licence travels with it"
        for file, digest in package["files"].items():
            assert _sha256((folder / file).read_bytes()) == digest, f"{name}/{file} differs from the manifest"
            listed.add(folder / file)
    present = {path for path in STATIC.rglob("*") if path.is_file()}
    assert present == listed, f"files in api/static/ that the manifest does not list: {sorted(present - listed)}"


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_load_only_what_the_app_serves(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", answer.text), "a page names another host"
    parsed = _Page()
    parsed.feed(answer.text)
    expected = {f"{p['folder']}/{f}": d for p in manifest()["packages"].values() for f, d in p["files"].items()}
    assets = [url for url in parsed.urls if url != "/openapi.json"]
    assert assets and "/openapi.json" in answer.text
    for url in assets:
        assert url.startswith("/docs-assets/"), url
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        assert fetched.headers["content-type"].split(";")[0] in CONTENT_TYPES[Path(url).suffix], url
        assert _sha256(fetched.content) == expected[url.removeprefix("/docs-assets/")]
    assert client.get("/openapi.json").status_code == 200


def _policy(header: str) -> dict[str, list[str]]:
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_carry_a_restrictive_content_security_policy(client: TestClient, page: str) -> None:
    answer = client.get(page)
    policy = _policy(answer.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"] and policy["form-action"] == ["'none'"]
    sources = [source for values in policy.values() for source in values]
    assert not [s for s in sources if s in ("*", "http:", "https:") or "://" in s or "." in s.strip("'")]
    # Scripts: this origin's files and the page's own inline start-up script, nothing else.
    parsed = _Page()
    parsed.feed(answer.text)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in parsed.inline
    }
    assert set(policy["script-src"]) == {"'self'", *hashes}
    assert "'unsafe-eval'" not in sources and "'unsafe-inline'" not in policy["script-src"]
    # Only the documentation pages carry it; an API answer has no page to protect.
    assert "Content-Security-Policy" not in client.get("/healthz").headers
