"""Realistic demo data for `disputes demo`, created through CaseService like any other client would."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from cases.mediators import MAX_CAPACITY, change_mediator, register_mediator, registered_mediators
from cases.service import CaseService
from sla.clock import ManualClock
from workflow.errors import MediatorUnavailableError
from workflow.model import Actor, NewCase

MERCHANTS = {
    "m-1001": "星河数码旗舰店",
    "m-1002": "Blue Harbor Apparel",
    "m-1003": "好厨坊家电专营店",
    "m-1004": "Lumen Beauty Official",
    "m-1005": "速达生鲜",
}
MEDIATORS = [Actor("med-li", "mediator"), Actor("med-chen", "mediator"), Actor("med-wong", "mediator")]
SENIOR = Actor("sen-zhao", "senior_mediator")
SENIOR_THRESHOLD = 500_000  # 5,000.00 CNY, as in policies/default/settings.json
CONSUMERS = [Actor(f"c-{n}", "consumer") for n in range(2001, 2021)]

COMPLAINTS: list[tuple[str, str, str, int]] = [
    ("counterfeit", "收到的耳机是假货", "序列号在官网查不到，做工粗糙，和页面图片不一致。要求退一赔三。", 89900),
    ("product_quality", "电水壶用了两天就坏了", "加热指示灯亮但不加热，联系客服三天没有回复。", 15900),
    ("not_received", "物流显示已签收但没收到", "快递显示签收，但我本人和家人都没有收到包裹，驿站也查不到。", 45600),
    ("after_sales", "保修期内维修被拒", "空调一年内不制冷，商家说人为损坏拒绝保修，没有任何检测报告。", 329900),
    ("false_advertising", "虚假宣传：宣称有机实际不是", "商品页写有机认证，收到后包装上没有任何认证标志。", 12800),
    ("not_as_described", "颜色尺码与描述不符", "下单的是深蓝色L码，收到的是黑色M码，要求换货或退款。", 25900),
    (
        "counterfeit",
        "Fake sneakers",
        "The pair I received has a misprinted logo and the box label does not scan.",
        119900,
    ),
    (
        "product_quality",
        "Blender cracked on first use",
        "The jug cracked on the first use with ice. Photos attached.",
        39900,
    ),
    (
        "not_received",
        "Order never arrived",
        "Tracking stopped updating ten days ago; the seller does not answer.",
        8800,
    ),
    (
        "after_sales",
        "Refund promised but not paid",
        "The seller agreed to refund on chat two weeks ago and never paid.",
        64900,
    ),
    (
        "false_advertising",
        "Misleading battery claims",
        "Advertised 30 hours of battery; it lasts about 6 hours.",
        29900,
    ),
    ("not_as_described", "Laptop has less memory than listed", "Listing says 16 GB, the machine reports 8 GB.", 649900),
]

Step = Callable[[CaseService, str, Actor, Actor, Actor], None]

# The triggers and actions the demo drives; a desk whose default workflow lacks one of
# them (another desk's structure) gets no demo data rather than half of it.
DEMO_COMMANDS = frozenset(
    {
        "comment",
        "withdraw",
        "reject",
        "assign",
        "escalate",
        "respond",
        "start_mediation",
        "request_info",
        "provide_info",
        "rule",
        "propose_offer",
        "accept_offer",
        "settle",
        "close",
        "rate",
    }
)


def _run(service: CaseService, case_id: str, actor: Actor, name: str, reason: str = "", **data: object) -> None:
    service.execute(actor=actor, case_id=case_id, name=name, data=dict(data), reason=reason)


def create_demo(
    service: CaseService,
    clock: ManualClock,
    *,
    count: int = 60,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """File ``count`` cases and drive them into every state, with messages, offers and
    information requests along the way. Returns the case ids."""
    rng = random.Random(seed)
    plan = ["filed", "assigned", "mediating", "settled", "escalated", "closed"]
    ids: list[str] = []
    # Only registered mediators may be assigned, so the demo's mediators are registered first,
    # with room for every case the demo gives them; the router stays off while the demo files,
    # so that its cases keep their planned states. Complaints filed afterwards are routed.
    registered = _register_mediators(service, capacity=MAX_CAPACITY)
    triage = service.triage
    quiet = replace(service, triage=replace(triage, route=False)) if triage is not None else service
    _file_and_drive(quiet, clock, rng, plan, ids, count, progress)
    _set_capacity(service, registered, DEMO_CAPACITY)
    return ids


def _file_and_drive(
    service: CaseService,
    clock: ManualClock,
    rng: random.Random,
    plan: list[str],
    ids: list[str],
    count: int,
    progress: Callable[[int], None] | None,
) -> None:
    for index in range(count):
        category, subject, description, amount = COMPLAINTS[index % len(COMPLAINTS)]
        consumer = CONSUMERS[index % len(CONSUMERS)]
        merchant_id = list(MERCHANTS)[index % len(MERCHANTS)]
        merchant = Actor(f"mu-{merchant_id}", "merchant", merchant_id=merchant_id)
        mediator = MEDIATORS[index % len(MEDIATORS)]
        clock.advance(timedelta(minutes=rng.randint(5, 40)))
        case = service.file(
            actor=consumer,
            new_case=NewCase(
                consumer_id=consumer.id,
                merchant_id=merchant_id,
                category=category,
                subject=subject,
                description=description,
                order_ref=f"ORD-{2026_1100_0000 + index}",
                claim_amount=amount,
                currency="CNY",
            ),
        )
        ids.append(case.id)
        target = plan[index % len(plan)]
        _drive(service, clock, rng, case.id, target, consumer, merchant, mediator, index)
        if progress:
            progress(index + 1)


# (id, name, categories, languages); each takes DEMO_CAPACITY load units once the demo is filed.
DEMO_CAPACITY = 20
DEMO_CALENDARS = ("default", "24x7")
DEMO_MEDIATORS = [
    ("med-li", "李调解员", ["counterfeit", "product_quality", "false_advertising"], ["zh", "en"]),
    ("med-chen", "陈调解员", ["not_received", "after_sales", "not_as_described", "other"], ["zh"]),
    ("med-wong", "Wong Mei", ["*"], ["en"]),
]


def _register_mediators(service: CaseService, *, capacity: int) -> list[str]:
    """Register the demo mediators not yet registered; return their ids."""
    known = {m.id for m in registered_mediators(service.db)}
    added: list[str] = []
    for ident, name, categories, languages in DEMO_MEDIATORS:
        if ident not in known:
            fields = {
                "display_name": name,
                "categories": categories,
                "languages": languages,
                "capacity": capacity,
                "calendar": "24x7",
            }
            register_mediator(
                service.db, mediator_id=ident, now=service.clock.now(), calendars=DEMO_CALENDARS, fields=fields
            )
            added.append(ident)
    return added


def _set_capacity(service: CaseService, mediator_ids: list[str], capacity: int) -> None:
    for ident in mediator_ids:
        change_mediator(
            service.db,
            mediator_id=ident,
            fields={"capacity": capacity},
            calendars=DEMO_CALENDARS,
            now=service.clock.now(),
        )


def _drive(
    service: CaseService,
    clock: ManualClock,
    rng: random.Random,
    case_id: str,
    target: str,
    consumer: Actor,
    merchant: Actor,
    mediator: Actor,
    index: int,
) -> None:
    def tick() -> None:
        clock.advance(timedelta(minutes=rng.randint(1, 30)))

    _run(service, case_id, consumer, "comment", body="请尽快处理，谢谢。" if index % 2 else "Please help, thank you.")
    if target == "filed":
        return
    if target == "closed" and (index // 6) % 3 == 0:
        _run(service, case_id, consumer, "withdraw")
        return
    if target == "closed" and (index // 6) % 3 == 1:
        _run(service, case_id, mediator, "reject", reason="订单不在平台交易范围内 / order not placed on this platform")
        return
    tick()
    try:
        _run(service, case_id, mediator, "assign", mediator_id=mediator.id)
    except MediatorUnavailableError:
        return  # a demo bigger than its mediators' capacity: the rest wait, as on a real desk
    if target == "escalated" and index % 12 == 4:
        tick()
        _run(service, case_id, mediator, "escalate")
        return
    tick()
    _run(service, case_id, merchant, "respond", statement="我们已核实订单，愿意协商处理。")
    if target == "assigned":
        return
    tick()
    _run(service, case_id, mediator, "start_mediation")
    _run(service, case_id, mediator, "request_info", party="consumer", question="请上传商品照片和订单截图。")
    snapshot = service.get(actor=mediator, case_id=case_id)
    request_id = snapshot.info_requests[-1].request_id
    tick()
    _run(service, case_id, consumer, "provide_info", request_id=request_id, answer="已上传照片。")
    if target == "mediating":
        return
    if target == "escalated":
        _run(service, case_id, mediator, "escalate")
        return
    tick()
    claim = service.get(actor=mediator, case_id=case_id).claim_amount
    if claim > SENIOR_THRESHOLD:
        # Large claims are settled by a senior mediator's ruling (the default policies' rule).
        _run(service, case_id, mediator, "escalate", reason="claim above the senior threshold")
        _run(
            service,
            case_id,
            SENIOR,
            "rule",
            reason="evidence supports half the claim",
            decision="partial",
            awarded_amount=claim // 2,
            citations=["crpl-24"],
        )
    else:
        _settle_by_offer(service, case_id, consumer, merchant, mediator, claim)
    if target == "settled":
        return
    tick()
    _run(service, case_id, mediator, "close")
    _run(service, case_id, consumer, "rate", score=rng.randint(3, 5), comment="处理及时。")


def _settle_by_offer(
    service: CaseService, case_id: str, consumer: Actor, merchant: Actor, mediator: Actor, claim: int
) -> None:
    amount = claim // 2
    _run(service, case_id, merchant, "propose_offer", amount=amount, terms="退一半货款，无需退货。")
    offer_id = service.get(actor=mediator, case_id=case_id).offers[-1].offer_id
    _run(service, case_id, consumer, "accept_offer", offer_id=offer_id)
    _run(service, case_id, mediator, "settle")
