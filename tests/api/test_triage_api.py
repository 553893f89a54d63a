"""The learned triage and the rulebook over real HTTP: filing without a category, the filed
event's model and top three, needs_triage and the triage queue, a mediator's correction, a
ruling refused without a citation and shown with its cited rule on the consumer's case page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from cases.triage import Triage
from desk.loader import load_desk
from tests.support.api import Api

DESK = load_desk()
TRIAGE = Triage.of_desk(DESK)
CONSUMER = ("c-1", "consumer")
MEDIATOR = ("med-1", "mediator")
SENIOR = ("sen-1", "senior_mediator")


def filing(subject: str, description: str = "") -> dict[str, Any]:
    return {
        "merchant_id": "m-1",
        "order_ref": "TB-1",
        "subject": subject,
        "description": description,
        "claim": {"amount": 29900, "currency": "CNY"},
    }


@pytest.fixture
def desk(api_factory: Callable[..., Api]) -> Api:
    api = api_factory()
    api.service.triage = replace(TRIAGE, route=False)
    api.service.rulebook = DESK.parts["rulebook"]
    return api


def file(desk: Api, subject: str, description: str = "") -> dict[str, Any]:
    created = desk.client.post("/v1/cases", json=filing(subject, description), headers=desk.token(*CONSUMER))
    assert created.status_code == 201, created.text
    return dict(created.json())


def filed_event(desk: Api, case_id: str) -> dict[str, Any]:
    history = desk.client.get(f"/v1/cases/{case_id}/events", headers=desk.token(*MEDIATOR)).json()
    return dict(history["data"][0]["data"])


def test_filing_without_a_category_is_classified_by_the_model_with_its_version_and_top_three(desk: Api) -> None:
    case = file(desk, "快递一直不动", "物流信息停在中转站已经12天没动了，问客服也说不知道")
    record = filed_event(desk, case["id"])["classification"]
    assert case["category"] == "not_received" == record["category"]
    assert record["source"] == "model"
    model = TRIAGE.model
    assert model is not None and record["model"]["version"] == model.version
    assert record["model"]["embedder_version"] == model.embedder_version
    top = record["top"]
    assert len(top) == 3 and top[0]["category"] == "not_received"
    assert top[0]["probability_bp"] >= top[1]["probability_bp"] >= top[2]["probability_bp"] > 0
    assert abs(record["margin_bp"] - (top[0]["probability_bp"] - top[1]["probability_bp"])) <= 1
    # The words the rules took from the complaint: in rule_evidence, and only there.
    assert {m["term"] for m in record["rule_evidence"]["matches"]} >= {"物流"}
    assert "evidence" not in record and "negated" not in record


def test_below_the_desks_confidence_a_case_needs_triage_and_the_queue_puts_the_smallest_margin_first(
    desk: Api,
) -> None:
    desk.service.triage = replace(TRIAGE, route=False, confidence=1.0)  # every case is "unsure"
    texts = [
        ("东西不对", "收到的和页面上的不太一样，客服也不怎么理人"),
        ("Tracking stuck", "tracking stuck for 12 days"),
        ("问题", "买的东西有点问题，希望处理一下"),
    ]
    cases = [file(desk, *t) for t in texts]
    assert all("needs_triage" in c["flags"] for c in cases)
    margins = {c["id"]: filed_event(desk, c["id"])["classification"]["margin_bp"] for c in cases}
    queue = desk.client.get("/v1/triage-queue", headers=desk.token(*MEDIATOR))
    assert queue.status_code == 200, queue.text
    listed = queue.json()["data"]
    assert [item["case_id"] for item in listed] == sorted(margins, key=lambda k: margins[k])
    assert all(len(item["choices"]) == 2 for item in listed)
    assert desk.client.get("/v1/triage-queue", headers=desk.token(*CONSUMER)).status_code == 403

    # A mediator's correction is an event, clears the flag and takes the case off the queue.
    first = listed[0]
    target = next(c for c in ("other", "after_sales") if c != first["category"])
    case = desk.client.get(f"/v1/cases/{first['case_id']}", headers=desk.token(*MEDIATOR)).json()
    fixed = desk.client.post(
        f"/v1/cases/{first['case_id']}/category",
        json={"category": target, "reason": "the consumer describes a refund the merchant refuses"},
        headers={**desk.token(*MEDIATOR), "If-Match": f'"{case["version"]}"'},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["category"] == target and "needs_triage" not in fixed.json()["flags"]
    history = desk.client.get(f"/v1/cases/{first['case_id']}/events", headers=desk.token(*MEDIATOR)).json()
    corrected = [e for e in history["data"] if e["type"] == "category_corrected"]
    assert corrected[0]["data"] == {
        "from": first["category"],
        "to": target,
        "reason": "the consumer describes a refund the merchant refuses",
    }
    again = desk.client.get("/v1/triage-queue", headers=desk.token(*MEDIATOR)).json()["data"]
    assert first["case_id"] not in [item["case_id"] for item in again]


def test_only_mediators_correct_categories_and_bad_corrections_are_refused(desk: Api) -> None:
    case = file(desk, "假货", "品牌专柜说这个批号他们从来没生产过")
    path = f"/v1/cases/{case['id']}/category"
    body = {"category": "other", "reason": "not a counterfeit"}
    current = {"If-Match": f'"{case["version"]}"'}
    denied = desk.client.post(path, json=body, headers={**desk.token(*CONSUMER), **current})
    assert denied.status_code == 403
    bad = desk.client.post(
        path, json={"category": "nonsense", "reason": "x"}, headers={**desk.token(*MEDIATOR), **current}
    )
    assert bad.status_code == 422
    same = desk.client.post(
        path, json={"category": case["category"], "reason": "x"}, headers={**desk.token(*MEDIATOR), **current}
    )
    assert same.status_code == 422
    stale = desk.client.post(path, json=body, headers={**desk.token(*MEDIATOR), "If-Match": '"99"'})
    assert stale.status_code == 412


def test_a_ruling_without_a_citation_is_refused_and_one_with_a_citation_shows_the_rule_to_the_consumer(
    desk: Api,
) -> None:
    case = file(desk, "假货", "品牌专柜说这个批号他们从来没生产过")
    case_id = case["id"]

    def fire(actor: tuple[str, str], trigger: str, **data: Any) -> Any:
        current = desk.client.get(f"/v1/cases/{case_id}", headers=desk.token(*MEDIATOR)).json()
        return desk.client.post(
            f"/v1/cases/{case_id}/transitions",
            json={"trigger": trigger, "data": data, "reason": "see evidence"},
            headers={**desk.token(*actor), "If-Match": f'"{current["version"]}"'},
        )

    assert fire(MEDIATOR, "assign", mediator_id="med-1").status_code == 200
    assert fire(MEDIATOR, "escalate").status_code == 200
    refused = fire(SENIOR, "rule", decision="for_consumer")
    assert refused.status_code == 403
    assert "a ruling must cite at least one entry of the desk's rulebook" in refused.json()["detail"]
    unknown = fire(SENIOR, "rule", decision="for_consumer", citations=["no-such-entry"])
    assert unknown.status_code == 422 and "no-such-entry" in unknown.json()["detail"]
    ruled = fire(SENIOR, "rule", decision="for_consumer", citations=["crpl-55", "platform-authenticity"])
    assert ruled.status_code == 200, ruled.text

    rules = desk.client.get(f"/v1/cases/{case_id}/rules", headers=desk.token(*CONSUMER))
    assert rules.status_code == 200, rules.text
    cited = rules.json()["cited"]
    assert [e["id"] for e in cited] == ["crpl-55", "platform-authenticity"]
    assert "三倍" in cited[0]["summary"]["zh-CN"] and "three times" in cited[0]["summary"]["en"]
    assert "crpl-55" in [e["id"] for e in rules.json()["applicable"]]
