"""Evidence content is stored only with its evidence event, on both databases: an upload that is
refused (403, 404, 409, 412, 422) or that fails before COMMIT leaves no row in `blobs`."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from cases.commands import store_blob
from store.tables import BLOBS
from tests.support.api import Api
from workflow.model import Actor

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "other",
    "subject": "Broken kettle",
    "description": "It stopped heating.",
    "claim": {"amount": 100, "currency": "CNY"},
}
CONSUMER = ("c-1", "consumer")


def blobs(api: Api) -> int:
    with api.service.db.read() as session:
        return int(session.execute(select(func.count()).select_from(BLOBS)).scalar_one())


def filed(api: Api) -> dict[str, Any]:
    created = api.client.post("/v1/cases", json=FILING, headers=api.token(*CONSUMER))
    assert created.status_code == 201, created.text
    case: dict[str, Any] = created.json()
    return case


def upload(
    api: Api,
    case: dict[str, Any],
    who: tuple[str, ...],
    content: bytes,
    *,
    version: str | None = None,
    filename: str = "photo.png",
    description: str = "",
) -> Any:
    headers = {**api.token(*who), "If-Match": version or f'"{case["version"]}"'}
    return api.client.post(
        f"/v1/cases/{case['id']}/evidence",
        headers=headers,
        files={"file": (filename, content, "image/png")},
        data={"description": description},
    )


def test_refused_uploads_store_nothing(api: Api) -> None:
    case = filed(api)
    closed = filed(api)
    withdrawn = api.client.post(
        f"/v1/cases/{closed['id']}/transitions",
        json={"trigger": "withdraw"},
        headers={**api.token(*CONSUMER), "If-Match": f'"{closed["version"]}"'},
    )
    assert withdrawn.status_code == 200
    closed = withdrawn.json()
    attempts = [
        (403, case, ("aud-1", "auditor"), {}),  # sees the case, may not add to it
        (404, case, ("c-2", "consumer"), {}),  # not a party: the case does not exist for them
        (412, case, CONSUMER, {"version": '"999"'}),  # stale If-Match
        (409, closed, CONSUMER, {}),  # no evidence on a closed case
        (422, case, CONSUMER, {"filename": "photo\x1b[2J.png"}),  # a control character in the name
    ]
    for n, (status, target, who, extra) in enumerate(attempts):
        refused = upload(api, target, who, f"unique content {n}".encode() * 1000, **extra)
        assert refused.status_code == status, (status, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert blobs(api) == 0, f"a {status} upload left its content behind"
    empty = upload(api, case, CONSUMER, b"")
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "file"
    assert blobs(api) == 0
    still = api.client.get(f"/v1/cases/{case['id']}", headers=api.token(*CONSUMER)).json()
    assert still["version"] == case["version"]


def test_accepted_uploads_store_each_content_once(api: Api) -> None:
    case = filed(api)
    content = b"\x89PNG receipt"
    first = upload(api, case, CONSUMER, content)
    assert first.status_code == 201, first.text
    assert first.json()["sha256"] == hashlib.sha256(content).hexdigest() and blobs(api) == 1
    again = upload(api, case, CONSUMER, content, version=first.headers["ETag"])
    assert again.status_code == 201 and blobs(api) == 1  # the same bytes: one row, two evidence items
    listed = api.client.get(f"/v1/cases/{case['id']}/evidence", headers=api.token(*CONSUMER)).json()["data"]
    assert len(listed) == 2
    got = api.client.get(f"/v1/cases/{case['id']}/evidence/{listed[0]['id']}/content", headers=api.token(*CONSUMER))
    assert got.status_code == 200 and got.content == content


def test_a_failure_before_commit_leaves_neither_event_nor_blob(api: Api) -> None:
    """Fault injection: the content is stored, then the transaction dies before COMMIT."""
    case = filed(api)
    content = b"stored, then rolled back"
    digest = hashlib.sha256(content).hexdigest()

    def store_then_crash(session: Any) -> None:
        store_blob(session, digest, content)
        raise RuntimeError("the process dies before COMMIT")

    with pytest.raises(RuntimeError):
        api.service.execute(
            actor=Actor(*CONSUMER),
            case_id=case["id"],
            name="add_evidence",
            expected_version=case["version"],
            kind="action",
            then=store_then_crash,
            data={"sha256": digest, "size": len(content), "media_type": "image/png", "filename": "a.png"},
        )
    assert blobs(api) == 0
    still = api.client.get(f"/v1/cases/{case['id']}", headers=api.token(*CONSUMER)).json()
    assert still["version"] == case["version"]
