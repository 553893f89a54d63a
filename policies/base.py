"""What the case service needs from a policy engine, and the explicit no-policy stand-in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from policies.visibility import TRUE, Visibility
from workflow.errors import PolicyDeniedError
from workflow.model import Actor, CaseSnapshot

# Recorded as the policy version on events authorized without any policy set.
NO_POLICY_VERSION = "none"


@dataclass(frozen=True, slots=True)
class Decision:
    """One authorization answer with the policies that decided it and their reasons.

    ``errors`` lists policies that could not be evaluated for this request (Cedar
    skips them, which can only make the answer a refusal or drop a forbid); it is
    empty with a sound policy set and facts that match its schema.
    """

    action: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    policy_ids: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


class Authorizer(Protocol):
    """Decides whether ``actor`` may do ``action`` on ``case`` at ``now``."""

    @property
    def version(self) -> str: ...

    def decide(
        self,
        *,
        actor: Actor,
        action: str,
        case: CaseSnapshot,
        now: datetime,
        payload: Mapping[str, Any] | None = None,
    ) -> Decision: ...

    def decide_many(
        self,
        *,
        actor: Actor,
        actions: Sequence[str],
        case: CaseSnapshot,
        now: datetime,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Decision]: ...

    def decide_each(self, *, actor: Actor, action: str, cases: Sequence[CaseSnapshot], now: datetime) -> list[Decision]:
        """``action`` (a read, without payload) on each of ``cases``: a page of a list."""
        ...

    def visibility(self, *, actor: Actor, action: str = "view") -> Visibility:
        """A condition on the cases' columns that every case ``actor`` may do ``action`` on
        meets (a superset: lists narrow their rows with it, then decide each row), and
        whether it is the exact answer (``decided``: no row needs deciding)."""
        ...

    def decide_desk(self, *, actor: Actor, action: str, now: datetime) -> Decision: ...


def require_desk(authorizer: Authorizer, *, actor: Actor, action: str, now: datetime) -> Decision:
    """Decide a desk action (view_config, manage_config, manage_mediators); raise on refusal."""
    decision = authorizer.decide_desk(actor=actor, action=action, now=now)
    if not decision.allowed:
        raise PolicyDeniedError(action, decision.reasons, decision.policy_ids)
    return decision


def require(
    authorizer: Authorizer,
    *,
    actor: Actor,
    action: str,
    case: CaseSnapshot,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> Decision:
    """Decide and raise :class:`PolicyDeniedError` on refusal."""
    decision = authorizer.decide(actor=actor, action=action, case=case, now=now, payload=payload)
    if not decision.allowed:
        raise PolicyDeniedError(action, decision.reasons, decision.policy_ids)
    return decision


class AllowAllAuthorizer:
    """Permits everything. Only for tests of the layers below policies and for explicit
    opt-out; the app announces loudly at start-up when it runs with it."""

    version = NO_POLICY_VERSION

    def decide(
        self,
        *,
        actor: Actor,
        action: str,
        case: CaseSnapshot,
        now: datetime,
        payload: Mapping[str, Any] | None = None,
    ) -> Decision:
        return Decision(action=action, allowed=True, reasons=("no policy set is loaded: everything is allowed",))

    def decide_many(
        self,
        *,
        actor: Actor,
        actions: Sequence[str],
        case: CaseSnapshot,
        now: datetime,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Decision]:
        return [self.decide(actor=actor, action=a, case=case, now=now) for a in actions]

    def decide_each(self, *, actor: Actor, action: str, cases: Sequence[CaseSnapshot], now: datetime) -> list[Decision]:
        return [self.decide(actor=actor, action=action, case=c, now=now) for c in cases]

    def visibility(self, *, actor: Actor, action: str = "view") -> Visibility:
        return Visibility(TRUE, decided=True)

    def decide_desk(self, *, actor: Actor, action: str, now: datetime) -> Decision:
        return Decision(action=action, allowed=True, reasons=("no policy set is loaded: everything is allowed",))
