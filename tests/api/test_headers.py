"""Protective response headers: nosniff everywhere, no-store on personal data, evidence
downloads as attachments under a safe name, HEAD wherever GET is answered."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.headers import attachment, safe_filename
from tests.support.api import FILING, Api, file_minimal
from tests.support.live import serve


def _boom() -> None:
    raise RuntimeError("an unexpected failure")


def test_every_response_is_nosniff(api_factory: Callable[..., Api]) -> None:
    api = api_factory({"rate_limit_per_minute": 4, "max_body_bytes": 2048})
    api.client.app.add_api_route("/v1/boom", _boom)  # type: ignore[attr-defined]
    consumer = api.token("c-1", "consumer")
    case = file_minimal(api)
    answers = [
        api.client.get("/healthz"),
        api.client.get("/openapi.json"),
        api.client.get("/no/such/path"),
        api.client.delete("/v1/cases", headers=consumer),  # 405
        api.client.get("/v1/cases"),  # 401
        api.client.get(f"/v1/cases/{case['id']}", headers=consumer),
        api.client.post("/v1/cases", content=b"x" * 4096, headers={**consumer, "Content-Type": "application/json"}),
        api.client.get("/v1/boom", headers=api.token("c-2", "consumer")),  # 500
        api.client.get("/v1/cases", headers=consumer),  # 429: the fifth request of c-1
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 405, 401, 200, 413, 500, 429]
    for answer in answers:
        assert answer.headers.get_list("X-Content-Type-Options") == ["nosniff"], answer.request.url


def test_personal_data_is_never_stored_by_caches(api: Api) -> None:
    """Every /v1 operation of the document, answered with data or with a problem, says no-store."""
    case = file_minimal(api)
    auditor = api.token("aud-1", "auditor")
    paths = api.client.get("/openapi.json").json()["paths"]
    seen = 0
    for template, item in paths.items():
        if not template.startswith("/v1/") or "get" not in item:
            continue
        url = re.sub(r"\{[^}]+\}", lambda m: case["id"] if m.group(0) == "{case_id}" else "x", template)
        for headers in (auditor, {}):
            answer = api.client.get(url, headers=headers)
            assert answer.headers.get_list("Cache-Control") == ["no-store"], (url, answer.status_code)
            seen += 1
    filed = api.client.post("/v1/cases", json=FILING, headers=api.token("c-1", "consumer"))
    assert filed.headers.get_list("Cache-Control") == ["no-store"]
    assert seen > 40
    # Public, non-personal documents may be cached.
    assert "no-store" not in api.client.get("/openapi.json").headers.get("Cache-Control", "")


# The only shapes attachment() writes: a quoted ASCII name, and the exact name in RFC 8187 form.
DISPOSITION = re.compile(r"""attachment; filename="([ !#-$&-\[\]-~]*)"(?:; filename\*=UTF-8''([\w!#$&+\-.^`|~%]+))?""")


def _filename_of(header: str) -> str:
    """The name a client following RFC 6266 saves the download under (filename* first)."""
    match = DISPOSITION.fullmatch(header)
    assert match is not None, header
    return unquote(match.group(2), errors="strict") if match.group(2) else match.group(1)


def test_evidence_downloads_as_an_attachment_under_a_safe_name(api: Api) -> None:
    consumer = api.token("c-1", "consumer")
    case = file_minimal(api)
    version = case["version"]
    names = {
        "../../etc/passwd.txt": "passwd.txt",
        "..\\..\\boot.ini": "boot.ini",
        "收据 2026 (1).pdf": "收据 2026 (1).pdf",
        "C:\\Users\\李\\发票.pdf": "发票.pdf",  # a Windows path: only its last segment
        "...": None,  # nothing left: the evidence id names it
    }
    for sent, expected in names.items():
        media = "application/pdf" if sent.endswith(".pdf") else "text/plain"
        uploaded = api.client.post(
            f"/v1/cases/{case['id']}/evidence",
            headers={**consumer, "If-Match": f'"{version}"'},
            files={"file": (sent, b"%PDF-1.4 content", media)},
        )
        assert uploaded.status_code == 201, uploaded.text
        version = int(uploaded.headers["ETag"].strip('"'))
        evidence = uploaded.json()
        content = api.client.get(f"/v1/cases/{case['id']}/evidence/{evidence['id']}/content", headers=consumer)
        assert content.status_code == 200 and content.content == b"%PDF-1.4 content"
        disposition = content.headers["Content-Disposition"]
        assert disposition.isascii()
        assert _filename_of(disposition) == (expected or evidence["id"]), disposition
        assert content.headers["X-Content-Type-Options"] == "nosniff"
        assert content.headers["Cache-Control"] == "no-store"


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=300))
def test_any_file_name_becomes_a_safe_attachment_header(name: str) -> None:
    header = attachment(name, "EVD-1")
    # One header line of ASCII: nothing a client could read as another header or parameter.
    assert header.isascii() and "\r" not in header and "\n" not in header and "\x00" not in header
    parsed = _filename_of(header)
    assert parsed == (safe_filename(name) or "EVD-1")
    assert set(parsed) <= set(unicodedata.normalize("NFC", name)) or parsed == "EVD-1"  # only removals
    assert parsed and "/" not in parsed and "\\" not in parsed and not parsed.startswith(".")
    assert not any(unicodedata.category(c)[0] == "C" for c in parsed) and len(parsed) <= 150


def test_head_is_answered_wherever_get_is(api_factory: Callable[..., Api]) -> None:
    """Every GET operation of the document answers HEAD with the GET's status and headers
    and no body, in process and from a real server."""
    api = api_factory({"rate_limit_per_minute": 10_000})
    case = file_minimal(api)
    auditor = api.token("aud-1", "auditor")
    paths = api.client.get("/openapi.json").json()["paths"]
    urls = [
        re.sub(r"\{[^}]+\}", lambda m: case["id"] if m.group(0) == "{case_id}" else "x", template)
        for template, item in paths.items()
        if "get" in item and "export" not in template
    ]
    assert len(urls) > 20
    for url in urls:
        got, head = api.client.get(url, headers=auditor), api.client.head(url, headers=auditor)
        assert head.status_code == got.status_code != 405, url
        assert head.content == b""
        for name in ("content-type", "etag", "cache-control", "x-content-type-options"):
            assert head.headers.get(name) == got.headers.get(name), (url, name)
    assert api.client.head("/docs").status_code == 200
    with serve(api.client.app) as base:  # type: ignore[arg-type]
        got = httpx2.get(f"{base}/v1/cases/{case['id']}", headers=auditor)
        head = httpx2.head(f"{base}/v1/cases/{case['id']}", headers=auditor)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
        assert head.headers["etag"] == got.headers["etag"]


def test_405_allows_head_beside_get(api: Api) -> None:
    answer = api.client.delete("/v1/cases", headers=api.token("c-1", "consumer"))
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/v1/cases", "/v1/queue", "/v1/policies"]))
def test_head_needs_what_get_needs(api: Api, path: str) -> None:
    """HEAD is a GET without the body, not a way around authentication."""
    assert api.client.head(path).status_code == 401
