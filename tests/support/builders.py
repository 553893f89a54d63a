"""Builders for service-level tests."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cases.mediators import MAX_CAPACITY, register_mediator, registered_mediators
from cases.merchants import append_merchant_event
from cases.personal import PersonalData
from cases.registry import WorkflowRegistry, record_versions
from cases.service import CaseService, reroute_on_warning
from cases.triage import Triage
from notify.rules import default_rules
from outbox.hook import OutboxHook
from policies.base import Authorizer
from policies.cedar import CedarAuthorizer, load_policy_dir, packaged_policies
from policies.store import PolicyStore
from runtime.engine import Engine
from runtime.settings import Settings, memory_keys
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.db import Database
from tests.support.actors import T0
from workflow.merchant import MERCHANT_FLAGGED, MerchantEvent
from workflow.model import NewCase


def new_case(**overrides: Any) -> NewCase:
    values: dict[str, Any] = {
        "consumer_id": "c-1",
        "merchant_id": "m-1",
        "category": "product_quality",
        "subject": "电水壶两天就坏了",
        "description": "The kettle stopped heating after two days.",
        "order_ref": "ORD-1001",
        "claim_amount": 29900,
        "currency": "CNY",
    }
    values.update(overrides)
    return NewCase(**values)


def default_policies() -> Authorizer:
    return packaged_policies()


def default_policies_and(tmp_path: Path, file: str, policy: str) -> CedarAuthorizer:
    """The packaged policies with ``policy`` appended to one of their files (copied under ``tmp_path``)."""
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies" / "default", policies)
    with (policies / file).open("a", encoding="utf-8") as handle:
        handle.write("\n" + policy)
    return load_policy_dir(policies)


def no_offers_from_flagged_merchants(tmp_path: Path) -> CedarAuthorizer:
    """Rules to try in what-if: a flagged merchant may make no offer at all."""
    return default_policies_and(
        tmp_path,
        "supervision.cedar",
        '@id("flagged-merchants-no-offers")\n@reason("a flagged merchant may not make offers")\n'
        'forbid (principal, action == Action::"propose_offer", resource is Case)\n'
        'when { principal.role == "merchant" && resource.merchant_flagged };\n',
    )


# The mediators the tests assign cases to by hand. Only registered mediators may be assigned,
# so make_service registers them (active, any skill, room for any number of cases); tests of
# the router, which would pick them, pass ``mediators=()`` and register their own.
TEST_MEDIATORS = ("med-1", "med-2", "sen-1")


def make_service(
    url: str,
    *,
    authorizer: Authorizer | None = None,
    sla: SlaPlanner | None = None,
    clock: ManualClock | None = None,
    mediators: Sequence[str] = TEST_MEDIATORS,
    triage: Triage | None = None,
    privacy: bool = True,
) -> CaseService:
    """A case service wired as runtime/bootstrap.py wires one (the warning subscription, the
    configuration's versions recorded, personal data protected: keys in memory, one set per
    database), with the parts a test chooses."""
    service = CaseService(
        db=Database(url),
        registry=WorkflowRegistry.from_directory(),
        authorizer=authorizer or default_policies(),
        clock=clock or ManualClock(T0),
        sla=sla,
        triage=triage,
        on_timer_warned=(reroute_on_warning,),
        privacy=PersonalData(memory_keys(url)) if privacy else None,
    )
    record_versions(service.db, service.registry, service.authorizer, service.clock.now())
    register_mediators(service, mediators)
    return service


def engine_of(service: CaseService, settings: Settings, policies: PolicyStore | None = None) -> Engine:
    """The engine around a test's case service (what runtime/bootstrap.py builds from settings)."""
    return Engine(settings=settings, cases=service, policies=policies)


def register_mediators(service: CaseService, mediator_ids: Sequence[str], **fields: Any) -> None:
    """Register each of ``mediator_ids`` not yet registered: active, any skill, ``MAX_CAPACITY``."""
    values: dict[str, Any] = {"categories": ["*"], "languages": ["*"], "capacity": MAX_CAPACITY, **fields}
    known = {m.id for m in registered_mediators(service.db)}
    for ident in mediator_ids:
        if ident not in known:
            register_mediator(
                service.db,
                mediator_id=ident,
                fields={"display_name": ident, **values},
                calendars=default_calendars(),
                now=service.clock.now(),
            )


def make_clocked_service(
    url: str,
    *,
    authorizer: Authorizer | None = None,
    start: datetime = T0,
    mediators: Sequence[str] = TEST_MEDIATORS,
    privacy: bool = True,
) -> CaseService:
    """A service whose SLA clocks run on the packaged calendars and a manual clock."""
    return make_service(
        url,
        authorizer=authorizer,
        sla=SlaPlanner(default_calendars()),
        clock=ManualClock(start),
        mediators=mediators,
        privacy=privacy,
    )


def set_merchant_flag(service: CaseService, merchant_id: str, flagged: bool) -> MerchantEvent:
    """Raise or clear a merchant's flag on its log, as supervision (reports/supervision.py) does."""
    kind = "flag_raised" if flagged else "flag_cleared"
    return service.db.run_write(
        lambda session: append_merchant_event(
            session, merchant_id, kind, {"flag": MERCHANT_FLAGGED, "flag_id": None}, service.clock.now()
        )
    )


def make_outbox_engine(url: str, *, clock: ManualClock | None = None, settings: Settings | None = None) -> Engine:
    """An engine whose case service records notifications (the outbox hook wired as
    runtime/bootstrap.py wires it), with SLA clocks on the packaged calendars."""
    hook = OutboxHook(default_rules())
    service = make_service(url, sla=SlaPlanner(default_calendars()), clock=clock or ManualClock(T0))
    service.on_written = (hook,)
    settings = settings or Settings(environment="test", database_url=url, run_ticker=False, run_dispatcher=False)
    return Engine(settings=settings, cases=service, outbox=hook)
