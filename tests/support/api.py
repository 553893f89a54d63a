"""The API tests' toolbox: a client on the real app with a token per role, callers that keep a
case's ETag, and cases filed and brought to a state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from fastapi.testclient import TestClient

from api.auth import mint_token
from cases.service import CaseService
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT

# The least a filing needs: the body the guard, header, limit and body-size tests send.
FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "other",
    "subject": "s",
    "description": "d",
    "claim": {"amount": 100, "currency": "CNY"},
}


@dataclass
class Api:
    client: TestClient
    service: CaseService
    clock: ManualClock
    settings: Settings
    engine: Engine

    def token(self, sub: str, role: str, merchant_id: str | None = None) -> dict[str, str]:
        token = mint_token(
            self.settings, sub=sub, role=role, merchant_id=merchant_id, now=self.clock.now(), ttl=timedelta(days=3650)
        )
        return {"Authorization": f"Bearer {token}"}


def file_minimal(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """File :data:`FILING` (or ``body``) as the consumer c-1; the case as the API answered it."""
    created = api.client.post("/v1/cases", json=body or FILING, headers=api.token("c-1", "consumer"))
    assert created.status_code == 201, created.text
    return dict(created.json())


# --- stories: callers that keep the case's ETag ---------------------------------------------------

STORY_FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-20261111-7",
    "category": "product_quality",
    "subject": "电饭煲内胆涂层脱落",
    "description": "用了一周内胆涂层大面积脱落，担心食品安全。",
    "claim": {"amount": 45900, "currency": "CNY"},
    "desired_outcome": "refund",
}


class Party:
    """One caller: remembers the case's ETag so each mutation sends If-Match."""

    def __init__(self, api: Api, sub: str, role: str, merchant_id: str | None = None) -> None:
        self.api = api
        self.headers = api.token(sub, role, merchant_id)

    def etag(self, case_id: str) -> str:
        got = self.api.client.get(f"/v1/cases/{case_id}", headers=self.headers)
        assert got.status_code == 200, got.text
        return got.headers["ETag"]

    def post(
        self, case_id: str, path: str, body: dict[str, Any] | None = None, expect: int = 200, **kwargs: Any
    ) -> httpx2.Response:
        headers = {**self.headers, "If-Match": self.etag(case_id)}
        if body is not None:
            kwargs["json"] = body
        response = self.api.client.post(f"/v1/cases/{case_id}{path}", headers=headers, **kwargs)
        assert response.status_code == expect, f"{path}: {response.status_code} {response.text}"
        return response

    def move(self, case_id: str, trigger: str, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.post(case_id, "/transitions", {"trigger": trigger, **extra}).json()
        return result

    def get(self, path: str) -> Any:
        response = self.api.client.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()


def parties(api: Api) -> tuple[Party, Party, Party, Party]:
    return (
        Party(api, "c-1", "consumer"),
        Party(api, "mu-1", "merchant", "m-1"),
        Party(api, "med-1", "mediator"),
        Party(api, "sen-1", "senior_mediator"),
    )


def file_case(api: Api, consumer: Party) -> str:
    created = api.client.post("/v1/cases", json=STORY_FILING, headers=consumer.headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# --- the authorization matrix's cases -------------------------------------------------------------

# Personal data in the matrix's cases: the filing's description and a mediator's internal note.
# The matrix checks that no answer shows either to a role the policies do not let see it.
MATRIX_DESCRIPTION = "序列号查不到。收件人张伟，电话13812345678"
MATRIX_INTERNAL_NOTE = "内部备注：商家负责人王芳 13987654321"
MATRIX_FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-9",
    "category": "counterfeit",
    "subject": "假货",
    "description": MATRIX_DESCRIPTION,
    "claim": {"amount": 50000, "currency": "CNY"},
}


def case_in_state(api: Api, state: str) -> dict[str, str]:
    """A case in ``state`` with one submitted evidence item, and for mediating an open
    merchant offer and an open information request to the consumer."""
    service: CaseService = api.service
    created = api.client.post("/v1/cases", json=MATRIX_FILING, headers=api.token("c-1", "consumer"))
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    version = created.json()["version"]
    upload = api.client.post(
        f"/v1/cases/{case_id}/evidence",
        headers={**api.token("c-1", "consumer"), "If-Match": f'"{version}"'},
        files={"file": ("label.png", b"\x89PNG label", "image/png")},
    )
    assert upload.status_code == 201, upload.text
    ids = {"case_id": case_id, "evidence_id": upload.json()["id"], "offer_id": "off0", "request_id": "rq0"}
    service.execute(actor=CONSUMER, case_id=case_id, name="submit_evidence")
    if state == "filed":
        return ids
    service.execute(actor=MEDIATOR, case_id=case_id, name="assign")
    service.execute(
        actor=MEDIATOR, case_id=case_id, name="comment", data={"body": MATRIX_INTERNAL_NOTE, "internal": True}
    )
    if state == "closed":
        service.execute(actor=MERCHANT, case_id=case_id, name="accept_claim")
        service.execute(actor=MEDIATOR, case_id=case_id, name="close")
        return ids
    service.execute(actor=MERCHANT, case_id=case_id, name="respond", data={"statement": "We will refund."})
    service.execute(actor=MEDIATOR, case_id=case_id, name="start_mediation")
    offered = service.execute(actor=MERCHANT, case_id=case_id, name="propose_offer", data={"amount": 20000})
    ids["offer_id"] = offered.offers[-1].offer_id
    asked = service.execute(
        actor=MEDIATOR,
        case_id=case_id,
        name="request_info",
        data={"party": "consumer", "question": "Photo of the receipt?"},
    )
    ids["request_id"] = asked.info_requests[-1].request_id
    assert state == "mediating"
    return ids
