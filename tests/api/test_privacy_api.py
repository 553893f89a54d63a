"""Personal data over HTTP: admins erase a consumer (POST /v1/privacy/erasures); only auditors the
desk clears get values disclosed in an export; every other answer shows `[erased]` after."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.actors import CONSUMER, MEDIATOR
from tests.support.api import Api
from tests.support.builders import default_policies_and, new_case

# The desk clears one auditor by name; no policy of the packaged desk grants disclose_personal.
CLEARANCE = (
    '@id("aud-1-cleared")\n@reason("aud-1 is cleared to see personal data in exports")\n'
    'permit (principal == User::"aud-1", action == Action::"disclose_personal", resource is Desk);\n'
)


@pytest.fixture
def api(api_factory: Callable[..., Api], tmp_path: Path) -> Api:
    return api_factory(authorizer=default_policies_and(tmp_path, "desk.cedar", CLEARANCE))


def _closed(api: Api, words: str) -> str:
    case = api.service.file(actor=CONSUMER, new_case=new_case(description=words))
    api.service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    api.service.execute(actor=CONSUMER, case_id=case.id, name="withdraw")
    return case.id


def test_admins_erase_and_the_answers_show_erased(api: Api) -> None:
    case_id = _closed(api, "张伟 13812345678")
    body = {"subject": "c-1", "basis": "PIPL Art. 47 request"}
    refused = api.client.post("/v1/privacy/erasures", json=body, headers=api.token("aud-1", "auditor"))
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    invalid = api.client.post("/v1/privacy/erasures", json={"subject": "c-1"}, headers=api.token("adm-1", "admin"))
    assert invalid.status_code == 422

    done = api.client.post("/v1/privacy/erasures", json=body, headers=api.token("adm-1", "admin"))
    assert done.status_code == 200, done.text
    assert done.json() | {"id": 0} == {"id": 0, "status": "done", "erased": [case_id], "deferred": {}}
    again = api.client.post("/v1/privacy/erasures", json=body, headers=api.token("adm-1", "admin"))
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"

    case = api.client.get(f"/v1/cases/{case_id}", headers=api.token("aud-1", "auditor")).json()
    assert (case["description"], case["consumer_id"]) == ("[erased]", "[erased]")
    history = api.client.get(f"/v1/cases/{case_id}/events", headers=api.token("aud-1", "auditor")).json()
    assert history["data"][-1]["type"] == "personal_data_erased" and "13812345678" not in json.dumps(history)


def test_only_cleared_auditors_get_values_disclosed(api: Api) -> None:
    _closed(api, "李娜 13987654321")
    plain = api.client.get("/v1/audit/export", headers=api.token("aud-2", "auditor"))
    assert plain.status_code == 200 and "13987654321" not in plain.text
    refused = api.client.get("/v1/audit/export?disclose=true", headers=api.token("aud-2", "auditor"))
    assert refused.status_code == 403
    cleared = api.client.get("/v1/audit/export?disclose=true", headers=api.token("aud-1", "auditor"))
    assert cleared.status_code == 200
    lines = [json.loads(line) for line in cleared.text.splitlines()]
    assert lines[0]["disclosures"] is True
    assert "李娜 13987654321" in {line["value"] for line in lines if line["kind"] == "disclosure"}
