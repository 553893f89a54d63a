"""CedarAuthorizer: decisions with reasons from a validated Cedar policy directory."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cedarpy

from policies import facts
from policies.base import Decision
from policies.loader import LoadedPolicies, PolicyInfo, load
from policies.visibility import Visibility, visible_cases
from workflow.model import Actor, CaseSnapshot

DEFAULT_POLICY_DIR = Path(__file__).resolve().parent / "default"

_CEDAR_ID = re.compile(r"\bpolicy\d+\b")


@functools.cache
def packaged_policies() -> CedarAuthorizer:
    """The packaged default policy set, loaded once (an authorizer is immutable)."""
    return load_policy_dir()


def load_policy_dir(path: str | Path = DEFAULT_POLICY_DIR) -> CedarAuthorizer:
    """Load, validate and pre-parse a policy directory.

    Raises :class:`policies.loader.PolicyLoadError` (a ``ValueError``) whose
    ``problems`` are ``workflow.definition.Problem(file, line, message)`` items.
    """
    return CedarAuthorizer(load(path))


class CedarAuthorizer:
    """Implements :class:`policies.base.Authorizer` with one immutable, pre-parsed policy set.

    Safe to share between threads: the cedarpy handles are immutable and the only
    mutable state is a thread-safe cache of parsed entity handles.
    """

    def __init__(self, loaded: LoadedPolicies, *, check_requests: bool = False, split_by_action: bool = True) -> None:
        """``check_requests`` also type-checks every request against the schema at
        decision time. Off by default: the policies were validated at load and the
        facts builder is tested against the schema, and the check costs about as much
        as the decision itself.

        ``split_by_action`` hands Cedar only the policies whose scope reaches the
        actions asked (see :meth:`_policies_reaching`); off, every decision sees the
        whole set. The answers are the same either way (a property test compares them)."""
        self._loaded = loaded
        self._policies = loaded.policy_set
        self._schema = loaded.schema if check_requests else None
        self._base = loaded.base_entities
        self._desk_id = loaded.desk.id
        # Case facts (workflow/facts.py) are given only to a desk that declares some.
        self._fact_types = dict(loaded.fact_types)
        self._fact_zone = ZoneInfo(loaded.fact_zone)
        self._related = loaded.related_names
        self._declares = bool(self._fact_types or self._related)
        self._by_cedar_id = dict(loaded.by_cedar_id)
        self._reasons_zh = {p.reason: p.reason_zh for p in loaded.policies if p.reason_zh}
        self._order = {info.cedar_id: index for index, info in enumerate(loaded.policies)}
        info = loaded.schema_info
        self._case_actions = info.applies_to(facts.CASE)
        self._desk_actions = info.applies_to(facts.DESK)
        # action -> the permits whose scope reaches it, named on a default deny so
        # that a refusal says what would have allowed it.
        permits: dict[str, list[PolicyInfo]] = {}
        context_actions: set[str] = set()
        every = self._case_actions | self._desk_actions
        self._reach: dict[str, frozenset[str]] = {}
        for policy in loaded.policies:
            reached = (
                every if policy.actions is None else frozenset().union(*(info.descendants(a) for a in policy.actions))
            )
            self._reach[policy.cedar_id] = reached
            if policy.reads_context:
                context_actions |= reached
            if policy.effect == "permit":
                for action in reached:
                    permits.setdefault(action, []).append(policy)
        self._permits = {action: tuple(found) for action, found in permits.items()}
        # A schema-checked request needs its context whether a policy reads it or not.
        self._context_actions = every if check_requests else frozenset(context_actions)
        # Entities carry only the attributes some policy reads: Cedar parses every
        # attribute of every entity per decision, and most facts serve few rules.
        # A schema-checked request needs them all.
        read = [info.attributes for info in loaded.policies]
        self._attributes: frozenset[str] | None = (
            None if check_requests or any(a is None for a in read) else frozenset().union(*read)  # type: ignore[arg-type]
        )
        # Parsed entity handles (lru_cache is thread-safe; handles of a few KB each). A caller's
        # User entity is parsed once per set of actions asked, not once per decision: it is a
        # pure function of the (immutable) Actor and the attributes those actions' policies
        # read. The case is added per decision, cached by its exact JSON (equal text, equal
        # facts): a service asks about the same case content repeatedly (list the actions,
        # then act).
        self._base_json: list[dict[str, Any]] = json.loads(str(self._base))
        self._base_for = functools.lru_cache(maxsize=512)(self._base_for)  # type: ignore[method-assign]
        self._with_user = functools.lru_cache(maxsize=1024)(self._with_user)  # type: ignore[method-assign]
        self._with_case = functools.lru_cache(maxsize=256)(self._with_case)  # type: ignore[method-assign]
        # A decision is a pure function of Cedar's answer and the caller's role and case state,
        # and few distinct ones recur (a Decision is immutable, so one may serve many calls).
        self._decided = functools.lru_cache(maxsize=1024)(self._decided)  # type: ignore[method-assign]
        self._static = loaded.policy_set.to_pst().static_policies
        # Per action (or set of actions asked together): pure functions of the loaded set.
        self._groups_of = functools.lru_cache(maxsize=64)(self._groups_of)  # type: ignore[method-assign]
        self._attributes_for = functools.lru_cache(maxsize=64)(self._attributes_for)  # type: ignore[method-assign]
        # Per caller: deriving a list's condition walks the view permits (bench/results.md); a caller
        # lists again and again, and the answer is a pure function of the caller and the set.
        self.visibility = functools.lru_cache(maxsize=1024)(self.visibility)  # type: ignore[method-assign]
        self._subset: Callable[[frozenset[str]], cedarpy.PolicySet] = (
            functools.lru_cache(maxsize=512)(self._policies_reaching) if split_by_action else self._whole_set
        )

    # --- what the loaded set is ---------------------------------------------------

    @property
    def version(self) -> str:
        """sha256 of the directory's files (see :func:`policies.loader.directory_version`)."""
        return self._loaded.version

    @property
    def directory(self) -> Path:
        return self._loaded.directory

    @property
    def loaded(self) -> LoadedPolicies:
        return self._loaded

    @property
    def policies(self) -> tuple[PolicyInfo, ...]:
        return self._loaded.policies

    @property
    def policy_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self._loaded.policies)

    def reason_in(self, reason: str, language: str) -> str:
        """A policy's reason as decisions give it (its ``@reason``) in ``language``: for Chinese
        ("zh", "zh-CN") the policy's ``@reason_zh`` where it has one; otherwise as it is."""
        if language.split("-")[0].lower() == "zh":
            return self._reasons_zh.get(reason, reason)
        return reason

    @property
    def case_actions(self) -> frozenset[str]:
        """Every action the schema declares on a ``Case`` (triggers, actions, reads, file)."""
        return self._case_actions

    @property
    def desk_actions(self) -> frozenset[str]:
        return self._desk_actions

    def permits_for(self, action: str) -> tuple[PolicyInfo, ...]:
        return self._permits.get(action, ())

    # --- decisions ----------------------------------------------------------------

    def decide(
        self,
        *,
        actor: Actor,
        action: str,
        case: CaseSnapshot,
        now: datetime,
        payload: Mapping[str, Any] | None = None,
    ) -> Decision:
        return self._decide_case(actor, [action], case, now, {action: payload} if payload is not None else {})[0]

    def decide_many(
        self,
        *,
        actor: Actor,
        actions: Sequence[str],
        case: CaseSnapshot,
        now: datetime,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Decision]:
        """One Cedar batch for all ``actions`` (e.g. the ~25 a case offers its caller, or a
        command's view and action). ``payloads`` gives the payload of the actions that have one."""
        return self._decide_case(actor, list(actions), case, now, payloads or {})

    def decide_each(self, *, actor: Actor, action: str, cases: Sequence[CaseSnapshot], now: datetime) -> list[Decision]:
        """``action`` (a read such as ``view``, without payload) decided on each of ``cases``, a
        page of a list, in one Cedar batch: the cases are entities of one store, so the
        batch crosses into Cedar once instead of once per case. Case ids must be distinct.
        The cases carry only the attributes the policies reaching ``action`` read."""
        _require_aware(now)
        if action not in self._case_actions:
            return [self._unknown(action, "a case") for _ in cases]
        if not cases:
            return []
        keep = self._attributes_for(frozenset((action,)))
        user = facts.user_entity(actor)
        entities = [user]
        requests: list[dict[str, Any]] = []
        request: dict[str, Any] = {"principal": user["uid"], "action": facts.uid(facts.ACTION, action)}
        if action in self._context_actions:
            request["context"] = json.dumps(facts.context(now, None, None))
        for case in cases:
            entity = self._case_entity(case, now, keep)
            entities.append(entity)
            requests.append({**request, "resource": entity["uid"]})
        store = self._base.with_added_json_str(json.dumps(entities))
        answers = cedarpy.is_authorized_batch(requests, self._subset(frozenset((action,))), store, self._schema)
        return [
            self._decision(action, answer, actor, f"in state {case.state}")
            for case, answer in zip(cases, answers, strict=True)
        ]

    def visibility(self, *, actor: Actor, action: str = "view") -> Visibility:
        """The cases ``actor`` may do ``action`` on, as a condition on the cases' columns
        derived from the policies reaching ``action`` (see :mod:`policies.visibility`): a
        superset to narrow a list before :meth:`decide_each`, or, when ``decided``, the
        answer itself."""
        reaching = [p for p in self._loaded.policies if action in self._reach[p.cedar_id]]
        permits = [self._static[p.cedar_id] for p in reaching if p.effect == "permit"]
        forbids = [self._static[p.cedar_id] for p in reaching if p.effect == "forbid"]
        found = visible_cases(permits, forbids, actor, action, self._groups_of(action))
        if self._schema is not None:
            # Requests are schema-checked: Cedar may refuse one the condition cannot foresee.
            return Visibility(found.condition, decided=False)
        return found

    def _groups_of(self, action: str) -> frozenset[str]:
        """``action`` and every action group it is (transitively) in."""
        info = self._loaded.schema_info
        return frozenset(name for name in info.actions if action in info.descendants(name)) | {action}

    def _attributes_for(self, actions: frozenset[str]) -> frozenset[str] | None:
        """The attributes read by the policies reaching ``actions``; None: send them all."""
        if self._attributes is None:
            return None
        read = [p.attributes for p in self._loaded.policies if self._reach[p.cedar_id] & actions]
        if any(a is None for a in read):
            return None
        return frozenset().union(*read)  # type: ignore[arg-type]

    def decide_desk(self, *, actor: Actor, action: str, now: datetime) -> Decision:
        """Desk actions (manage_config, manage_mediators, view_config): the resource is the desk."""
        _require_aware(now)
        where = "on the desk"
        if action not in self._desk_actions:
            return self._unknown(action, "the desk")
        entities = self._with_user(actor, frozenset((action,)))
        request: dict[str, Any] = {
            "principal": facts.uid(facts.USER, actor.id),
            "action": facts.uid(facts.ACTION, action),
            "resource": facts.uid(facts.DESK, self._desk_id),
        }
        if action in self._context_actions:
            request["context"] = json.dumps(facts.context(now, None, None))
        result = cedarpy.is_authorized_batch([request], self._subset(frozenset((action,))), entities, self._schema)[0]
        return self._decision(action, result, actor, where)

    def _decide_case(
        self,
        actor: Actor,
        actions: list[str],
        case: CaseSnapshot,
        now: datetime,
        payloads: Mapping[str, Mapping[str, Any]],
    ) -> list[Decision]:
        _require_aware(now)
        known = [a for a in actions if a in self._case_actions]
        results: dict[str, cedarpy.AuthzResult] = {}
        if known:
            principal = facts.uid(facts.USER, actor.id)
            resource = facts.uid(facts.CASE, facts.case_uid_id(case))
            # Each context is serialized once for the batch, and only if some policy reads it.
            contexts: dict[int, str] = {}
            requests: list[dict[str, Any]] = []
            for a in known:
                request: dict[str, Any] = {
                    "principal": principal,
                    "action": facts.uid(facts.ACTION, a),
                    "resource": resource,
                }
                if a in self._context_actions:
                    payload = payloads.get(a)
                    key = id(payload)
                    if key not in contexts:
                        contexts[key] = json.dumps(facts.context(now, payload, case))
                    request["context"] = contexts[key]
                requests.append(request)
            policies = self._subset(frozenset(known))
            entities = self._entities(actor, case, now, frozenset(known))
            answers = cedarpy.is_authorized_batch(requests, policies, entities, self._schema)
            results = dict(zip(known, answers, strict=True))
        where = f"in state {case.state}"
        return [
            self._decision(a, results[a], actor, where) if a in results else self._unknown(a, "a case") for a in actions
        ]

    def _whole_set(self, _actions: frozenset[str]) -> cedarpy.PolicySet:
        return self._policies

    def _policies_reaching(self, actions: frozenset[str]) -> cedarpy.PolicySet:
        """The policies whose action scope reaches one of ``actions``, under their Cedar ids.

        A policy whose scope misses the request's action can neither decide it nor fail
        on it (Cedar checks the scope before the conditions), so leaving it out changes
        no answer, reason or error; it saves Cedar walking the ~40 policies of a desk
        for the handful that concern one command (a third of a batch's time in bench B1;
        bench/results.md).
        Built once per set of actions asked together (a command's view + action, an
        actions list), from the pre-parsed set's syntax tree."""
        keep = {cedar_id: tree for cedar_id, tree in self._static.items() if self._reach[cedar_id] & actions}
        if len(keep) == len(self._static):
            return self._policies
        return cedarpy.PolicySet.from_pst(cedarpy.pst.PolicySet(static_policies=keep, templates={}, template_links=()))

    def _case_entity(self, case: CaseSnapshot, now: datetime, keep: frozenset[str] | None) -> dict[str, Any]:
        """The case's entity with the attributes in ``keep`` (None: all of them)."""
        entity = facts.case_entity(case, self._desk_id, keep)
        if self._declares:
            attrs = entity["attrs"]
            if keep is None or "facts" in keep or "days_since" in keep:
                declared = facts.declared_facts(case, self._fact_types, self._fact_zone, now)
                attrs.update({name: value for name, value in declared.items() if keep is None or name in keep})
            if keep is None or "related" in keep:
                attrs["related"] = {n: case.related[n] for n in self._related if n in case.related}
        return entity

    def _entities(self, actor: Actor, case: CaseSnapshot, now: datetime, actions: frozenset[str]) -> cedarpy.Entities:
        # The desk and the action hierarchy are parsed once at load, the caller once per set of
        # actions; per call only the case is added. Both carry only the attributes the policies
        # reaching ``actions`` read: Cedar tries every JSON escape on each value it parses, so
        # an attribute costs it tens of thousands of instructions, however short (a command's
        # view + action read about 5 of the 20 a case has).
        entity = self._case_entity(case, now, self._attributes_for(actions))
        return self._with_case(actor, actions, json.dumps([entity]))

    def _with_user(self, actor: Actor, actions: frozenset[str]) -> cedarpy.Entities:
        """The load-time entities and ``actor``'s User, for requests about ``actions``."""
        user = _only(facts.user_entity(actor), self._attributes_for(actions))
        return self._base_for(actions).with_added_json_str(json.dumps([user]))

    def _base_for(self, actions: frozenset[str]) -> cedarpy.Entities:
        """The load-time entities requests about ``actions`` can reach: all but the Action
        entities, and of those only the actions asked, the actions the policies reaching them
        name, and every group these are in.

        Each parse of a request's entities copies its base and recomputes the hierarchy
        (``with_added_json_str``), at a cost that grows with the ~45 actions of a desk; a
        request needs only its own action's groups (``action in ...``), and a policy whose
        scope misses the action is never evaluated (see :meth:`_policies_reaching`), so an
        action it names cannot matter."""
        named = set(actions)
        for policy in self._loaded.policies:
            if self._reach[policy.cedar_id] & actions:
                tree = self._static[policy.cedar_id]
                named.update(uid.id for uid in cedarpy.pst.entity_uids(tree) if uid.type.basename == facts.ACTION)
        needed = frozenset().union(*(self._groups_of(name) for name in named))
        kept = [e for e in self._base_json if e["uid"]["type"] != facts.ACTION or e["uid"]["id"] in needed]
        if len(kept) == len(self._base_json):
            return self._base
        return cedarpy.Entities.from_json_str(json.dumps(kept))

    def _with_case(self, actor: Actor, actions: frozenset[str], case_json: str) -> cedarpy.Entities:
        return self._with_user(actor, actions).with_added_json_str(case_json)

    def _decision(self, action: str, result: cedarpy.AuthzResult, actor: Actor, where: str) -> Decision:
        diagnostics = result.diagnostics
        return self._decided(
            action, result.allowed, tuple(diagnostics.reasons), tuple(diagnostics.errors), actor.role, where
        )

    def _decided(
        self, action: str, allowed: bool, reasons: tuple[str, ...], cedar_errors: tuple[str, ...], role: str, where: str
    ) -> Decision:
        """The decision Cedar's answer (``allowed``, the deciding and the failing policies) makes."""
        deciding = sorted(
            (self._by_cedar_id[r] for r in reasons if r in self._by_cedar_id),
            key=lambda p: self._order[p.cedar_id],
        )
        errors = tuple(_CEDAR_ID.sub(self._annotated, e) for e in cedar_errors)
        if allowed and cedar_errors:
            # Cedar skips a policy it cannot evaluate. For a forbid that would turn
            # a refusal into an allow, so the decision fails closed instead.
            broken = [
                self._by_cedar_id[cedar_id]
                for error in cedar_errors
                for cedar_id in _CEDAR_ID.findall(error)
                if cedar_id in self._by_cedar_id and self._by_cedar_id[cedar_id].effect == "forbid"
            ]
            if broken:
                return Decision(
                    action=action,
                    allowed=False,
                    reasons=tuple(
                        f"policy {p.id!r} could not be evaluated and might forbid this: {p.reason}" for p in broken
                    ),
                    policy_ids=tuple(p.id for p in broken),
                    errors=errors,
                )
        if deciding:
            return Decision(
                action=action,
                allowed=allowed,
                reasons=tuple(dict.fromkeys(p.reason for p in deciding)),
                policy_ids=tuple(p.id for p in deciding),
                errors=errors,
            )
        # Deny by default: nothing decided, so say so and name the rules that
        # would have allowed the action.
        refusal = f"no policy permits {action} for role {role} {where}"
        hints = tuple(dict.fromkeys(p.reason for p in self._permits.get(action, ())))
        return Decision(action=action, allowed=False, reasons=(refusal, *hints), errors=errors)

    def _annotated(self, match: re.Match[str]) -> str:
        info = self._by_cedar_id.get(match.group(0))
        return info.id if info is not None else match.group(0)

    def _unknown(self, action: str, what: str) -> Decision:
        # Never evaluated: a policy with an unconstrained action scope would
        # otherwise match a name the schema does not know.
        reason = f"{action!r} is not an action on {what} in this policy set"
        return Decision(action=action, allowed=False, reasons=(reason,))


def _only(entity: dict[str, Any], keep: frozenset[str] | None) -> dict[str, Any]:
    """``entity`` with only the attributes in ``keep`` (None: all of them)."""
    if keep is not None:
        entity["attrs"] = {k: v for k, v in entity["attrs"].items() if k in keep}
    return entity


def _require_aware(now: datetime) -> None:
    # Checked on every call, not only when a policy reads the clock, so that a
    # caller passing a naive instant fails at once rather than on some action.
    if now.tzinfo is None:
        raise ValueError("naive datetime: every instant in the engine must be timezone-aware")
