"""Third-party review on the log (reports/review.py), on both backends: the week's sample dealt to
reviewers deterministically, the redacted case a reviewer reads, scores and flags as events that
replay and verify, the senior mediator's second look, and the report's figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.chains import verify_case
from cases.review import (
    flag_case,
    flagged_cases,
    resolve_flag,
    review_case,
    review_queue,
    sample_period,
    second_look,
    submit_review,
)
from cases.service import CaseService
from cases.triage import Triage
from intake.review import ReviewRules, Sampling
from reports.review import review_report
from sla.clock import ManualClock
from tests.support.actors import ADMIN, AUDITOR, CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.builders import make_clocked_service, new_case
from workflow.errors import ConflictError, InvalidCommandError, NotFoundError, PolicyDeniedError
from workflow.model import Actor

ZONE = ZoneInfo("Asia/Shanghai")
M = timedelta(minutes=1)
R1 = Actor("rev-1", "reviewer")
R2 = Actor("rev-2", "reviewer")
R3 = Actor("rev-3", "reviewer")
OTHER_MEDIATOR = Actor("med-2", "mediator")
DESCRIPTION = "我叫张三，电话13812345678，邮箱 zhang.san@example.com。水壶两天就坏了。"


def rules(**sampling: object) -> ReviewRules:
    base = Triage.load().review
    values = {"share": 0.5, "minimum": 1, "strata": ("category", "mediator"), "double_share": 0.5, "seed": "t"}
    values.update(sampling)
    return ReviewRules(
        reviewers=("rev-1", "rev-2"),
        sampling=Sampling(**values),  # type: ignore[arg-type]
        redaction=base.redaction,
        rubric=base.rubric,
        version="test",
    )


def at(service: CaseService, moment: object) -> None:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    clock.set(moment)  # type: ignore[arg-type]


def closed_case(service: CaseService, when: object, mediator: Actor, **changes: object) -> str:
    at(service, when)
    case = service.file(actor=CONSUMER, new_case=new_case(description=DESCRIPTION, **changes))
    service.execute(actor=mediator, case_id=case.id, name="assign")
    service.execute(actor=MERCHANT, case_id=case.id, name="accept_claim")
    service.execute(actor=mediator, case_id=case.id, name="close")
    return case.id


@pytest.fixture
def week(db_url: str) -> Iterator[tuple[CaseService, list[str]]]:
    service = make_clocked_service(db_url, start=T0)
    ids = [
        closed_case(
            service,
            T0 + i * 10 * M,
            MEDIATOR if i % 2 else OTHER_MEDIATOR,
            order_ref=f"ORD-{i}",
            category="product_quality" if i < 4 else "not_received",
        )
        for i in range(6)
    ]
    at(service, T0 + 2 * timedelta(hours=1))
    yield service, ids
    service.db.dispose()


def test_sampling_is_deterministic_stratified_and_dealt_once(week: tuple[CaseService, list[str]]) -> None:
    service, ids = week
    found = rules()
    first = sample_period(service, found, ADMIN, since=T0 - timedelta(hours=10), zone=ZONE)
    assert first.candidates == 6
    # Strata: (product_quality, med-1) 2 cases, (product_quality, med-2) 2, (not_received, med-1) 1,
    # (not_received, med-2) 1 -> ceil(50%) of each = 1 + 1 + 1 + 1.
    assert len(first.drawn) == 4
    assert len({d.stratum for d in first.drawn}) == 4
    assert sorted(first.assigned) == sorted(d.case_id for d in first.drawn)
    # Half of the drawn go to both reviewers; reviewers are dealt in turn.
    assert sum(len(d.reviewers) == 2 for d in first.drawn) == 2
    again = sample_period(service, found, ADMIN, since=T0 - timedelta(hours=10), zone=ZONE)
    assert again.drawn == first.drawn and again.assigned == []
    # Another seed draws from the same strata, possibly other cases; the draw depends on nothing else.
    other = sample_period(service, rules(seed="another"), ADMIN, since=T0 - timedelta(hours=10), zone=ZONE)
    assert len(other.drawn) == 4
    with pytest.raises(PolicyDeniedError):
        sample_period(service, found, AUDITOR, since=T0, zone=ZONE)
    queued = {item.case_id for item in review_queue(service, R1)} | {i.case_id for i in review_queue(service, R2)}
    assert queued >= set(first.assigned)
    with service.db.read() as session:
        for case_id in ids:
            assert verify_case(session, service.registry, case_id) == []


def test_reviewer_reads_redacted_scores_flags_and_senior_resolves(week: tuple[CaseService, list[str]]) -> None:
    service, ids = week
    found = rules()
    outcome = sample_period(service, found, ADMIN, since=T0 - timedelta(hours=10), zone=ZONE)
    mine = [d for d in outcome.drawn if "rev-1" in d.reviewers]
    case_id = mine[0].case_id
    shown = review_case(service, found, R1, case_id)
    text = repr(shown)
    for personal in ("张三", "13812345678", "zhang.san@example.com", "c-1", "ORD-"):
        assert personal not in text
    assert shown["statements"]["consumer"].startswith("我叫[姓名 name]，电话[手机号 phone]")
    assert shown["consumer"] == found.redaction.mask and shown["order_ref"] == found.redaction.mask
    assert shown["mediator_id"] in ("med-1", "med-2") and shown["category"]
    # A reviewer has no `view`: the case endpoints do not show the case to them at all.
    with pytest.raises(NotFoundError):
        service.get(actor=R1, case_id=case_id)
    # Nor may a reviewer the case was not dealt to read or score it.
    with pytest.raises(NotFoundError):
        review_case(service, found, R3, case_id)
    with pytest.raises(NotFoundError):
        submit_review(service, found, R3, case_id, scores=dict.fromkeys(found.rubric.item_ids, 3))
    # Scores are checked against the desk's rubric.
    with pytest.raises(InvalidCommandError) as bad:
        submit_review(service, found, R1, case_id, scores={"fairness": 9})
    assert bad.value.field is not None
    with pytest.raises(ConflictError):
        submit_review(service, found, R1, case_id, scores=dict.fromkeys(found.rubric.item_ids, 4), expected_version=1)
    version = shown["version"]
    after = submit_review(
        service,
        found,
        R1,
        case_id,
        scores=dict.fromkeys(found.rubric.item_ids, 4),
        comment="清楚",
        expected_version=version,
    )
    assert after.version == version + 1 and after.reviews[-1].scores["fairness"] == 4
    with pytest.raises(InvalidCommandError):
        submit_review(service, found, R1, case_id, scores=dict.fromkeys(found.rubric.item_ids, 4))
    # The senior mediator cannot take a second look before a flag.
    with pytest.raises(NotFoundError):
        second_look(service, SENIOR, case_id)
    flagged = flag_case(service, R1, case_id, reason="裁决理由没有写明依据")
    assert "review_flagged" in flagged.flags
    entries = flagged_cases(service, SENIOR, open_only=True)
    assert [e.case_id for e in entries] == [case_id] and entries[0].reason == "裁决理由没有写明依据"
    looked = second_look(service, SENIOR, case_id)
    assert looked["case"].consumer_id == "c-1"  # the desk's own see the case as it is
    assert looked["reviews"][0]["scores"]["lawful_basis"] == 4
    with pytest.raises(PolicyDeniedError):
        flagged_cases(service, MEDIATOR)
    with pytest.raises(NotFoundError):
        resolve_flag(service, MEDIATOR, case_id, decision="upheld", note="x")  # a second look is the senior's
    with pytest.raises(InvalidCommandError):
        resolve_flag(service, SENIOR, case_id, decision="maybe", note="x")
    resolved = resolve_flag(service, SENIOR, case_id, decision="upheld", note="已与调解员复盘")
    assert "review_flagged" not in resolved.flags
    assert flagged_cases(service, SENIOR, open_only=True) == []
    history = flagged_cases(service, AUDITOR)
    assert history[0].resolution is not None and history[0].resolution["decision"] == "upheld"
    with service.db.read() as session:
        assert verify_case(session, service.registry, case_id) == []


def test_report_scores_agreement_and_flags(week: tuple[CaseService, list[str]]) -> None:
    service, _ = week
    found = rules()
    outcome = sample_period(service, found, ADMIN, since=T0 - timedelta(hours=10), zone=ZONE)
    double = next(d for d in outcome.drawn if len(d.reviewers) == 2)
    items = found.rubric.item_ids
    first = dict.fromkeys(items, 4)
    second = dict.fromkeys(items, 4) | {items[0]: 2, items[1]: 5}
    submit_review(service, found, R1, double.case_id, scores=first)
    submit_review(service, found, R2, double.case_id, scores=second)
    single = next(d for d in outcome.drawn if len(d.reviewers) == 1)
    reviewer = R1 if single.reviewers == ("rev-1",) else R2
    submit_review(service, found, reviewer, single.case_id, scores=dict.fromkeys(items, 3))
    flag_case(service, reviewer, single.case_id, reason="timeliness")
    report = review_report(service.db, found, since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)).to_dict()
    assert report["reviews"] == 3 and report["double_reviewed"] == 1
    by_item = {r["key"]: r for r in report["by_item"]}
    assert by_item[items[0]]["average"] == round((4 + 2 + 3) / 3, 2)
    assert by_item[items[1]]["average"] == round((4 + 5 + 3) / 3, 2)
    agreement = {r["item"]: r for r in report["agreement"]}
    assert agreement[items[0]] == {
        "item": items[0],
        "pairs": 1,
        "exact_percent": 0.0,
        "within_one_percent": 0.0,
        "mean_abs_difference": 2.0,
    }
    assert agreement[items[1]]["within_one_percent"] == 100.0 and agreement[items[1]]["exact_percent"] == 0.0
    assert agreement[items[2]]["exact_percent"] == 100.0
    assert sum(r["reviews"] for r in report["by_mediator"]) == 3
    assert sum(r["reviews"] for r in report["by_category"]) == 3
    assert [f["case_id"] for f in report["flags"]] == [single.case_id]
    assert report["flags"][0]["resolution"] is None and report["flags"][0]["state"] == "closed"
