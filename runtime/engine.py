"""The Engine: every part of a running desk, built once (runtime/bootstrap.py) with concrete types.

HTTP routes (api/deps.py), command-line commands (cli/) and the worker's ticker
(runtime/ticker.py) receive the one Engine and call the rooms' functions with its parts; none
of them opens a database session itself. ``clock`` is the time source; ``sla`` is the SLA
planner (which timer events a change causes): the two are different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cases.registry import WorkflowRegistry
from cases.service import CaseService
from cases.triage import Triage
from notify.rules import NotificationRules, default_rules
from outbox.hook import OutboxHook
from policies.store import PolicyStore
from runtime.settings import Settings, signing_key
from sla.clock import Clock
from sla.planner import SlaPlanner
from store.db import Database


@dataclass
class Engine:
    """A running desk. The case service holds the parts a command reads (database, time source,
    workflow registry, the policy set in force, SLA planner, triage); the engine adds the
    settings, the reloadable policy store and the checkpoint signing key."""

    settings: Settings
    cases: CaseService
    # The reloadable policy set the case service's authorizer comes from; None when none is
    # loaded (DISPUTES_ALLOW_ALL, or an engine assembled around a fixed authorizer).
    policies: PolicyStore | None = None
    # The transactional outbox's write hook (wired as ``cases.on_written``); it holds the desk's
    # notification rules in force. None: an engine that records no notifications.
    outbox: OutboxHook | None = None

    def notification_rules(self) -> NotificationRules:
        """The desk's notification rules in force (the packaged ones without an outbox)."""
        return self.outbox.rules if self.outbox is not None else default_rules()

    @property
    def db(self) -> Database:
        return self.cases.db

    @property
    def clock(self) -> Clock:
        """The time source (``datetime.now()`` is never called in domain code)."""
        return self.cases.clock

    @property
    def registry(self) -> WorkflowRegistry:
        return self.cases.registry

    @property
    def sla(self) -> SlaPlanner | None:
        """The SLA planner (None: an engine without clocks)."""
        return self.cases.sla

    @property
    def triage(self) -> Triage:
        """The desk's triage in force (a reload swaps it on the case service). An engine whose
        case service triages nothing reads the packaged rules (for reports and mediator loads)."""
        return self.cases.triage or self._packaged_triage

    @cached_property
    def _packaged_triage(self) -> Triage:
        return Triage.load(route=False)

    @cached_property
    def signing_key(self) -> Ed25519PrivateKey:
        """The key that signs checkpoints (loaded, or in development generated, on first use)."""
        return signing_key(self.settings)

    @property
    def retention(self) -> timedelta:
        """How long personal data is kept after a case closes (the desk's ``retention_years``)."""
        return self.cases.retention

    def dispose(self) -> None:
        """Close the database's connections."""
        self.db.dispose()
