"""The authorization matrix: every route x every role x case states, expectations in a data file.

`authz_matrix.yaml` holds, per route (and request variant) and case state, the status
each role must get, in the role order of its header. A route of the app missing from
the file fails the test. Set AUTHZ_MATRIX_PRINT=1 to print what the app answers now,
in the file's format (for reviewing a policy change, never for blind copying).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cases.service import CaseService
from tests.api.conftest import Api
from workflow.model import Actor

MATRIX_FILE = Path(__file__).with_name("authz_matrix.yaml")


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    # The matrix sends a thousand-odd requests as fast as the engine answers them; the
    # rate limiter is another test's subject (test_limits.py), not a role's permission.
    return api_factory({"rate_limit_per_minute": 10**6, "auth_failures_per_minute": 10**6})


MATRIX: dict[str, Any] = yaml.safe_load(MATRIX_FILE.read_text(encoding="utf-8"))
ROLES: list[str] = MATRIX["roles"]
IDENTITIES: dict[str, tuple[str, str, str | None] | None] = {
    "consumer": ("c-1", "consumer", None),
    "other_consumer": ("c-2", "consumer", None),
    "merchant": ("mu-1", "merchant", "m-1"),
    "other_merchant": ("mu-2", "merchant", "m-2"),
    "assigned_mediator": ("med-1", "mediator", None),
    "other_mediator": ("med-2", "mediator", None),
    "senior_mediator": ("sen-1", "senior_mediator", None),
    "auditor": ("aud-1", "auditor", None),
    "admin": ("adm-1", "admin", None),
    "anonymous": None,
}
# The mediator record `POST /v1/mediators` registers and `PATCH /v1/mediators/{mediator_id}` changes.
MEDIATOR_ID = "med-9"
CONSUMER = Actor("c-1", "consumer")
MERCHANT = Actor("mu-1", "merchant", "m-1")
MEDIATOR = Actor("med-1", "mediator")
FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-9",
    "category": "counterfeit",
    "subject": "假货",
    "description": "序列号查不到。",
    "claim": {"amount": 50000, "currency": "CNY"},
}


def build_case(api: Api, state: str) -> dict[str, str]:
    """A case in ``state`` with one submitted evidence item, and for mediating an open
    merchant offer and an open information request to the consumer."""
    service: CaseService = api.service
    created = api.client.post("/v1/cases", json=FILING, headers=api.token("c-1", "consumer"))
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


def call(api: Api, role: str, key: str, spec: dict[str, Any], ids: dict[str, str]) -> int:
    method, path = key.split("#")[0].split(" ", 1)
    url = path.format(**ids, mediator_id=MEDIATOR_ID)
    headers: dict[str, str] = {}
    identity = IDENTITIES[role]
    if identity is not None:
        headers.update(api.token(identity[0], identity[1], identity[2]))
    if spec.get("if_match"):
        version = api.service.get(actor=Actor("aud-1", "auditor"), case_id=ids["case_id"]).version
        headers["If-Match"] = f'"{version}"'
    kwargs: dict[str, Any] = {}
    if "body" in spec:
        kwargs["json"] = spec["body"]
    if "file" in spec:
        kwargs["files"] = {"file": ("photo.png", b"\x89PNG photo", "image/png")}
    response = api.client.request(method, url, headers=headers, **kwargs)
    assert response.status_code < 500, f"{role} {key}: {response.status_code} {response.text}"
    return response.status_code


def test_every_route_is_in_the_matrix(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    covered = {key.split("#")[0] for key in MATRIX["routes"]}
    assert routes - covered == set(), f"routes missing from {MATRIX_FILE.name}"
    assert covered - routes == set(), "the matrix names routes the app lacks"


def test_matrix(api: Api) -> None:
    printing = os.environ.get("AUTHZ_MATRIX_PRINT") == "1"
    failures: list[str] = []
    shared: dict[str, dict[str, str]] = {}
    for key, spec in MATRIX["routes"].items():
        for state in spec.get("states", ["filed", "mediating", "closed"]):
            expected = str(spec.get(state, spec.get("all", ""))).split()
            got: list[str] = []
            for index, role in enumerate(ROLES):
                # Reads share one case per state; each mutation gets a fresh one.
                if spec.get("mutates"):
                    ids = build_case(api, state)
                else:
                    ids = shared.get(state) or shared.setdefault(state, build_case(api, state))
                status = call(api, role, key, spec, ids)
                got.append(str(status))
                if not printing and (index >= len(expected) or expected[index] != str(status)):
                    want = expected[index] if index < len(expected) else "?"
                    failures.append(f"{key} [{state}] {role}: expected {want}, got {status}")
            if printing:
                print(f"  {key!r} {state}: {' '.join(got)}")
    assert not failures, "\n".join(failures)
