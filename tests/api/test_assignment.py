"""Manual assignment names a registered, active mediator with room for the case, on both databases.

An id that names no registered mediator (a consumer's id, a made-up one, 300,000 characters,
control characters) is a 422 on `data.mediator_id`; a registered mediator who is inactive or
full is a 409 `mediator-unavailable` with the reason. The case is left as it was either way.
The rules are the router's own (intake.routing.unavailability).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cases.service import CaseService
from tests.support.actors import CONSUMER, MEDIATOR
from tests.support.api import Api
from tests.support.builders import new_case, register_mediators
from workflow.errors import MediatorUnavailableError
from workflow.model import Actor

FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "TB-1",
    "category": "other",
    "subject": "Broken kettle",
    "description": "It stopped heating.",
    "claim": {"amount": 100, "currency": "CNY"},
}


def filed(api: Api) -> dict[str, Any]:
    created = api.client.post("/v1/cases", json=FILING, headers=api.token("c-1", "consumer"))
    assert created.status_code == 201, created.text
    case: dict[str, Any] = created.json()
    assert case["state"] == "filed"
    return case


def assign(api: Api, case: dict[str, Any], mediator_id: str | None, by: str = "med-1") -> Any:
    data = {} if mediator_id is None else {"mediator_id": mediator_id}
    return api.client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"trigger": "assign", "data": data},
        headers={**api.token(by, "mediator"), "If-Match": f'"{case["version"]}"'},
    )


def unchanged(api: Api, case: dict[str, Any]) -> None:
    now = api.client.get(f"/v1/cases/{case['id']}", headers=api.token("aud-1", "auditor")).json()
    assert (now["state"], now["version"], now["mediator_id"]) == ("filed", case["version"], None)


@pytest.mark.parametrize(
    "mediator_id",
    [
        "med-nobody",  # registered by no one
        "c-1",  # the consumer who filed the case
        "m" * 300_000,  # far past any identifier's length
        "med-1\x1b[2J",  # a terminal escape
        "med-\x00",  # NUL
        "med-1\u200b",  # a registered id with a zero-width space: not that mediator
    ],
)
def test_an_id_naming_no_registered_mediator_is_refused(api: Api, mediator_id: str) -> None:
    case = filed(api)
    refused = assign(api, case, mediator_id)
    assert refused.status_code == 422, refused.text[:300]
    problem = refused.json()
    assert problem["type"] == "urn:dispute-engine:problem:validation"
    assert [e["field"] for e in problem["errors"]] == ["data.mediator_id"]
    assert len(refused.content) < 2000  # the problem does not echo 300,000 characters back
    unchanged(api, case)


def test_an_unregistered_mediator_cannot_assign_themselves(api: Api) -> None:
    case = filed(api)
    refused = assign(api, case, None, by="med-unlisted")
    assert refused.status_code == 422 and "not a registered mediator" in refused.json()["detail"]
    unchanged(api, case)


def test_an_inactive_mediator_is_unavailable(api: Api) -> None:
    admin = api.token("adm-1", "admin")
    registered = api.client.post(
        "/v1/mediators",
        headers=admin,
        json={"id": "med-away", "display_name": "Away", "categories": ["*"], "languages": ["*"], "capacity": 5},
    )
    assert registered.status_code == 201
    assert api.client.patch("/v1/mediators/med-away", json={"active": False}, headers=admin).status_code == 200
    case = filed(api)
    refused = assign(api, case, "med-away")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:dispute-engine:problem:mediator-unavailable"
    assert (problem["mediator_id"], problem["reason"]) == ("med-away", "inactive")
    unchanged(api, case)


def test_a_full_mediator_is_unavailable_until_a_case_closes(api: Api) -> None:
    register_mediators(api.service, ["med-small"], capacity=1)
    first, second = filed(api), filed(api)
    taken = assign(api, first, "med-small")
    assert taken.status_code == 200 and taken.json()["mediator_id"] == "med-small"
    refused = assign(api, second, "med-small")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["reason"], problem["open_load"], problem["capacity"]) == ("at_capacity", 1, 1)
    unchanged(api, second)
    # The first case withdrawn (closed), the mediator has room again.
    withdrawn = api.client.post(
        f"/v1/cases/{first['id']}/transitions",
        json={"trigger": "withdraw"},
        headers={**api.token("c-1", "consumer"), "If-Match": taken.headers["ETag"]},
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "closed"
    assert assign(api, second, "med-small").status_code == 200


def test_a_registered_mediator_is_assigned_under_their_one_id(api: Api) -> None:
    case = filed(api)
    assigned = assign(api, case, "ｍｅｄ－２")  # full-width: the same id as med-2
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["mediator_id"] == "med-2"


def race_for_the_last_place(service: CaseService, mediator_id: str, round_: int) -> list[str]:
    """Two mediators assign two cases to ``mediator_id`` (capacity 1) at the same moment."""
    register_mediators(service, [mediator_id], capacity=1)
    cases = [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"R-{round_}-{i}")) for i in range(2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def take(case_id: str, by: Actor) -> None:
        start.wait()
        try:
            service.execute(actor=by, case_id=case_id, name="assign", data={"mediator_id": mediator_id})
            outcomes.append("assigned")
        except MediatorUnavailableError:
            outcomes.append("full")

    threads = [
        threading.Thread(target=take, args=(case.id, by))
        for case, by in zip(cases, (MEDIATOR, Actor("med-2", "mediator")), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_assignments_never_overfill_a_mediator(api: Api) -> None:
    """One wins the last place, the other is told the mediator is full (PostgreSQL locks the
    mediator's row; SQLite writes one transaction at a time)."""
    for round_ in range(3):
        assert sorted(race_for_the_last_place(api.service, f"med-last-{round_}", round_)) == ["assigned", "full"]
