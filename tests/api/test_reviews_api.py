"""Third-party review over real HTTP: an admin deals the week's sample; the reviewer reads the case
redacted, scores and flags it with If-Match; the senior mediator sees the flag, takes a second look
and resolves it; the review report shows it. Refusals answer problem+json."""

from __future__ import annotations

from datetime import timedelta

from cases.triage import Triage
from tests.support.actors import T0
from tests.support.api import Api

DESCRIPTION = "我叫李雷，手机 13912345678，收件地址不对。"
FILING = {
    "merchant_id": "m-1",
    "order_ref": "TB-77",
    "category": "not_received",
    "subject": "没收到货",
    "description": DESCRIPTION,
    "claim": {"amount": 5000, "currency": "CNY"},
}
SCORES = {"lawful_basis": 2, "fairness": 4, "timeliness": 5, "clarity": 3}


def closed_case(api: Api) -> str:
    consumer, mediator = api.token("c-1", "consumer"), api.token("med-1", "mediator")
    merchant = api.token("mu-1", "merchant", "m-1")
    case = api.client.post("/v1/cases", json=FILING, headers=consumer).json()
    version = case["version"]
    for who, trigger in ((mediator, "assign"), (merchant, "accept_claim"), (mediator, "close")):
        answer = api.client.post(
            f"/v1/cases/{case['id']}/transitions",
            json={"trigger": trigger},
            headers={**who, "If-Match": f'"{version}"'},
        )
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
    return str(case["id"])


def test_review_round_trip(api: Api) -> None:
    api.service.triage = Triage.load(route=False)
    case_id = closed_case(api)
    admin, reviewer = api.token("adm-1", "admin"), api.token("reviewer-1", "reviewer")
    senior, auditor = api.token("sen-1", "senior_mediator"), api.token("aud-1", "auditor")

    # Only admins draw the sample; a malformed period start is a 422.
    assert api.client.post("/v1/reviews/sample", json={}, headers=auditor).status_code == 403
    bad = api.client.post("/v1/reviews/sample", json={"since": "monday"}, headers=admin)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    dealt = api.client.post("/v1/reviews/sample", json={"since": (T0 - timedelta(days=1)).isoformat()}, headers=admin)
    assert dealt.status_code == 200, dealt.text
    assert dealt.json()["assigned"] == [case_id]
    assert dealt.json()["drawn"][0]["reviewers"] == ["reviewer-1", "reviewer-2"]

    queue = api.client.get("/v1/reviews", params={"pending": True}, headers=reviewer).json()["data"]
    assert [item["case_id"] for item in queue] == [case_id]
    # The reviewer has no way in through the case endpoints.
    assert api.client.get(f"/v1/cases/{case_id}", headers=reviewer).status_code == 404
    shown = api.client.get(f"/v1/reviews/{case_id}", headers=reviewer)
    assert shown.status_code == 200
    body = shown.json()
    assert "李雷" not in shown.text and "13912345678" not in shown.text and "TB-77" not in shown.text
    assert body["statements"]["consumer"].startswith("我叫[姓名 name]，手机 [手机号 phone]")
    assert [item["id"] for item in body["rubric"]["items"]] == list(SCORES)
    etag = shown.headers["ETag"]
    # Another reviewer's case is not found.
    assert api.client.get(f"/v1/reviews/{case_id}", headers=api.token("reviewer-9", "reviewer")).status_code == 404

    url = f"/v1/reviews/{case_id}/scores"
    assert api.client.post(url, json={"scores": SCORES}, headers=reviewer).status_code == 428
    assert api.client.post(url, json={"scores": SCORES}, headers={**reviewer, "If-Match": '"1"'}).status_code == 412
    off_scale = api.client.post(url, json={"scores": {**SCORES, "fairness": 7}}, headers={**reviewer, "If-Match": etag})
    assert off_scale.status_code == 422 and "fairness" in off_scale.text
    unknown = api.client.post(url, json={"scores": SCORES, "extra": 1}, headers={**reviewer, "If-Match": etag})
    assert unknown.status_code == 422
    scored = api.client.post(
        url, json={"scores": SCORES, "comment": "依据不清"}, headers={**reviewer, "If-Match": etag}
    )
    assert scored.status_code == 200, scored.text
    assert scored.json()["reviews"][0]["scores"] == SCORES
    flagged = api.client.post(
        f"/v1/reviews/{case_id}/flag",
        json={"reason": "没有说明依据"},
        headers={**reviewer, "If-Match": scored.headers["ETag"]},
    )
    assert flagged.status_code == 200 and flagged.json()["flagged"] is True

    # The senior mediator sees the flag, looks again and resolves it.
    assert api.client.get("/v1/reviews/flags", headers=api.token("med-1", "mediator")).status_code == 403
    flags = api.client.get("/v1/reviews/flags", params={"open": True}, headers=senior).json()["data"]
    assert [f["case_id"] for f in flags] == [case_id] and flags[0]["reason"] == "没有说明依据"
    look = api.client.get(f"/v1/reviews/flags/{case_id}", headers=senior)
    assert look.status_code == 200 and look.json()["case"]["id"] == case_id
    resolved = api.client.post(
        f"/v1/reviews/flags/{case_id}/resolution",
        json={"decision": "upheld", "note": "已复盘"},
        headers={**senior, "If-Match": look.headers["ETag"]},
    )
    assert resolved.status_code == 200, resolved.text
    assert "review_flagged" not in resolved.json()["flags"]
    assert api.client.get("/v1/reviews/flags", params={"open": True}, headers=senior).json()["data"] == []

    report = api.client.get(
        "/v1/reports/reviews",
        params={"since": (T0 - timedelta(days=1)).isoformat(), "until": (T0 + timedelta(days=1)).isoformat()},
        headers=auditor,
    )
    assert report.status_code == 200, report.text
    figures = report.json()
    assert figures["reviews"] == 1 and figures["by_mediator"][0]["key"] == "med-1"
    assert {r["key"]: r["average"] for r in figures["by_item"]}["lawful_basis"] == 2.0
    assert figures["flags"][0]["resolution"]["decision"] == "upheld"
    assert api.client.get("/v1/reports/reviews", headers=reviewer).status_code == 403
    # Every step is on the case's log, and the log verifies.
    types = [e["type"] for e in api.client.get(f"/v1/cases/{case_id}/events", headers=auditor).json()["data"]]
    assert types[-4:] == ["review_assigned", "review_submitted", "review_flagged", "review_flag_resolved"]
