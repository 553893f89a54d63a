"""The reports' small generated data set (tests/reports), shared by the report and read-model tests.

The data set (times in Asia/Shanghai; T0 is Monday 2026-03-02 10:00, T1 = T0 + 49 h is
Wednesday 11:00) and what each case contributes:

  c0  m-1 product_quality  filed T0-7d, withdrawn 5 min later (previous period only)
  c2  m-1 product_quality  filed T0, assigned +10m; the merchant stays silent: the response
                           clock breaches at T0+48h10m -> decided for the consumer; closed T1+6h;
                           consumer rates 4 "ok" at T1+7h
  c1  m-1 counterfeit      filed T1, assigned +5m, merchant responds +1h, mediation +2h, offer
                           +3h accepted +4h, settled +5h, closed +6h, reopened by the consumer +7h
  c3  m-1 product_quality  filed T1+10m, assigned +20m, merchant concedes T1+1h20m, closed
                           T1+2h; consumer rates 5 "处理很快" T1+3h, merchant 3 T1+3h10m
  c4  m-1 not_received     filed T1+30m, withdrawn T1+40m; consumer rates 1 "没人处理" T1+1h
  c5  m-2 other            filed T1+50m, assigned (med-2) T1+1h, responds T1+2h, mediation
                           T1+3h, escalated T1+4h, ruled for the merchant T1+5h
"""

from __future__ import annotations

from datetime import timedelta

from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.builders import new_case
from workflow.model import Actor

H = timedelta(hours=1)
M = timedelta(minutes=1)
T1 = T0 + 49 * H
END = T0 + timedelta(days=14)
MERCHANT2 = Actor("mu-2", "merchant", merchant_id="m-2")
MEDIATOR2 = Actor("med-2", "mediator")


def at(service: CaseService, moment: object) -> None:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    clock.set(moment)  # type: ignore[arg-type]


def build(service: CaseService) -> dict[str, str]:
    ids: dict[str, str] = {}

    def file(name: str, when: object, **changes: object) -> None:
        at(service, when)
        ids[name] = service.file(actor=CONSUMER, new_case=new_case(order_ref=name, **changes)).id

    def do(name: str, when: object, actor: Actor, command: str, **data: object) -> None:
        at(service, when)
        service.execute(actor=actor, case_id=ids[name], name=command, data=dict(data))

    file("c0", T0 - timedelta(days=7))
    do("c0", T0 - timedelta(days=7) + 5 * M, CONSUMER, "withdraw")
    file("c2", T0)
    do("c2", T0 + 10 * M, MEDIATOR, "assign")
    at(service, T0 + 48 * H + 10 * M)
    assert fire_due_timers(service, T0 + 48 * H + 10 * M) == 1
    file("c1", T1, category="counterfeit")
    do("c1", T1 + 5 * M, MEDIATOR, "assign")
    file("c3", T1 + 10 * M)
    do("c3", T1 + 20 * M, MEDIATOR, "assign")
    file("c4", T1 + 30 * M, category="not_received")
    do("c4", T1 + 40 * M, CONSUMER, "withdraw")
    file("c5", T1 + 50 * M, category="other", merchant_id="m-2")
    do("c5", T1 + H, MEDIATOR2, "assign")
    do("c1", T1 + H, MERCHANT, "respond", statement="It is genuine.")
    do("c4", T1 + H, CONSUMER, "rate", score=1, comment="没人处理")
    do("c3", T1 + H + 20 * M, MERCHANT, "accept_claim")
    do("c1", T1 + 2 * H, MEDIATOR, "start_mediation")
    do("c3", T1 + 2 * H, MEDIATOR, "close")
    do("c5", T1 + 2 * H, MERCHANT2, "respond", statement="We shipped the right item.")
    do("c1", T1 + 3 * H, MERCHANT, "propose_offer", amount=20000)
    do("c3", T1 + 3 * H, CONSUMER, "rate", score=5, comment="处理很快")
    do("c5", T1 + 3 * H, MEDIATOR2, "start_mediation")
    do("c3", T1 + 3 * H + 10 * M, MERCHANT, "rate", score=3)
    offer = service.get(actor=AUDITOR, case_id=ids["c1"]).offers[-1].offer_id
    do("c1", T1 + 4 * H, CONSUMER, "accept_offer", offer_id=offer)
    do("c5", T1 + 4 * H, MEDIATOR2, "escalate")
    do("c1", T1 + 5 * H, MEDIATOR, "settle")
    do("c5", T1 + 5 * H, SENIOR, "rule", decision="for_merchant", citations=["crpl-24"])
    do("c1", T1 + 6 * H, MEDIATOR, "close")
    do("c2", T1 + 6 * H, MEDIATOR, "close")
    do("c1", T1 + 7 * H, CONSUMER, "reopen")
    do("c2", T1 + 7 * H, CONSUMER, "rate", score=4, comment="ok")
    at(service, T1 + 8 * H)
    return ids
