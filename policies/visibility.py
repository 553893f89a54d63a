"""Which cases a caller may see, as a condition on a case's stored columns, derived from the
policies themselves.

A list cannot ask Cedar about every case in the database. So ``GET /v1/cases`` (and the queue)
first narrow the rows with a condition the database evaluates, then let Cedar decide ``view``
on each row that passes (``cases/service.py``). Cedar has the last word; this module makes the
first step safe for any desk: the condition is derived from the permits that reach the action,
for one caller, and holds for every case some permit lets the caller view. It is a superset by
construction, so the list misses nothing the policies show, whatever a desk's operators wrote;
how much it narrows depends on how much of the permits it understands.

How a permit becomes a condition:

- A policy applies when its scope matches, each ``when`` holds and no ``unless`` holds: the
  condition is the conjunction of what each part translates to. Forbids are left out (they
  only take cases away, which Cedar does row by row).
- Facts of the caller (``principal``, ``principal.role``, ``principal.merchant``, ``action``)
  are known, so an expression over them is evaluated here: ``principal.role == "consumer"``
  drops the permit for a merchant. Facts of the case that are columns (:data:`COLUMNS`)
  become column conditions: ``resource.consumer == principal`` is ``consumer_id = <caller>``.
- Anything else (``context``, other attributes, arithmetic, ``like``, ``if``, ...) is
  unknown and translates to :data:`TRUE`: it can only widen the condition.
- A part's translation is *exact* when it agrees with Cedar on every case where Cedar
  evaluates the part without an error. Negation (``!``, ``!=``, ``unless``) is taken only of
  exact parts; of any other it is :data:`TRUE`. In SQL an absent mediator is NULL, and the
  three-valued ``AND``/``OR``/``NOT`` then agree with Cedar's short-circuit evaluation,
  where reading the absent attribute is an error (the permit does not apply).
- An expression that is an error for this caller (``principal.merchant`` of a consumer) is
  :data:`FALSE`: Cedar skips a permit it cannot evaluate.

The conditions are plain data (:class:`Condition`), so ``cases/`` renders them as SQL and
tests evaluate them (:func:`holds`) without a database.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cedarpy import pst

from policies import facts
from workflow.model import Actor

# Case attributes (as Cedar sees them) -> the cases table's column, with the kind of value:
# a string, or a User entity whose id the column holds.
COLUMNS: Mapping[str, tuple[str, str]] = {
    "state": ("state", "string"),
    "category": ("category", "string"),
    "workflow": ("workflow_name", "string"),
    "priority": ("priority", "string"),
    "currency": ("currency", "string"),
    "merchant": ("merchant_id", "string"),
    "consumer": ("consumer_id", facts.USER),
    "mediator": ("mediator_id", facts.USER),
}
# Attributes a case may lack (``resource has mediator``); their column is NULL then.
OPTIONAL = frozenset({"mediator"})
# The resource itself, ``Case::"<id>"``, is the id column.
ID_COLUMN = "id"


# --- conditions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Always:
    """True or false whatever the case."""

    value: bool


@dataclass(frozen=True, slots=True)
class Equals:
    """The column holds one of ``values`` (NULL never does)."""

    column: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Present:
    """The column is not NULL."""

    column: str


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]


Condition = Always | Equals | Present | Not | AllOf | AnyOf
TRUE = Always(True)
FALSE = Always(False)


def holds(condition: Condition, row: Mapping[str, str | None]) -> bool:
    """Whether the database would select ``row`` (column -> value) under ``condition``:
    SQL's three-valued logic, NULL counting as not selected."""
    return _sql_value(condition, row) is True


def _sql_value(condition: Condition, row: Mapping[str, str | None]) -> bool | None:
    if isinstance(condition, Always):
        return condition.value
    if isinstance(condition, Equals):
        value = row[condition.column]
        return None if value is None else value in condition.values
    if isinstance(condition, Present):
        return row[condition.column] is not None
    if isinstance(condition, Not):
        inner = _sql_value(condition.part, row)
        return None if inner is None else not inner
    values = [_sql_value(part, row) for part in condition.parts]
    if isinstance(condition, AllOf):
        return False if False in values else (None if None in values else True)
    return True if True in values else (None if None in values else False)


def simplify(condition: Condition) -> Condition:
    """Constants folded, nested conjunctions and disjunctions flattened, repeats dropped.

    (``Present(c) AND c = v`` stays as it is: ``c = v`` alone is NULL, not false, where ``c``
    is NULL, and under a ``NOT`` that difference selects other rows.)"""
    if isinstance(condition, Not):
        part = simplify(condition.part)
        if isinstance(part, Always):
            return Always(not part.value)
        return part.part if isinstance(part, Not) else Not(part)
    if isinstance(condition, AllOf):
        parts = _flat(AllOf, (simplify(p) for p in condition.parts))
        if FALSE in parts:
            return FALSE
        parts = [p for p in parts if p != TRUE]
        return parts[0] if len(parts) == 1 else (AllOf(tuple(parts)) if parts else TRUE)
    if isinstance(condition, AnyOf):
        parts = _flat(AnyOf, (simplify(p) for p in condition.parts))
        if TRUE in parts:
            return TRUE
        parts = [p for p in parts if p != FALSE]
        return parts[0] if len(parts) == 1 else (AnyOf(tuple(parts)) if parts else FALSE)
    return condition


def _flat(kind: type[AllOf] | type[AnyOf], parts: Iterable[Condition]) -> list[Condition]:
    flat: list[Condition] = []
    for part in parts:
        for item in part.parts if isinstance(part, kind) else (part,):
            if item not in flat:
                flat.append(item)
    return flat


def restrict(condition: Condition, known: Mapping[str, str]) -> Condition:
    """``condition`` on the rows whose columns hold ``known`` values (a list's equality
    filters), simplified: with ``state = 'assigned'`` asked, ``state = 'filed' AND ...`` is
    false and drops out, which leaves the database a condition its indexes serve."""

    def fold(part: Condition) -> Condition:
        if isinstance(part, Equals) and part.column in known:
            return Always(known[part.column] in part.values)
        if isinstance(part, Present) and part.column in known:
            return TRUE
        if isinstance(part, Not):
            return Not(fold(part.part))
        if isinstance(part, AllOf):
            return AllOf(tuple(fold(p) for p in part.parts))
        if isinstance(part, AnyOf):
            return AnyOf(tuple(fold(p) for p in part.parts))
        return part

    return simplify(fold(condition))


# --- from policies to a condition ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visibility:
    """The cases a caller may see, as far as the database can tell.

    ``condition``: every case the caller may see meets it (a superset). ``decided``: the
    condition is also exactly the policies' answer, case by case, so a list needs no
    per-row decision; true when every policy reaching the action translated faithfully
    (see the module's docstring) for this caller."""

    condition: Condition
    decided: bool


def visible_cases(
    permits: Iterable[pst.Template],
    forbids: Iterable[pst.Template],
    actor: Actor,
    action: str,
    action_groups: frozenset[str],
) -> Visibility:
    """What ``permits`` and ``forbids`` (the policies whose scope reaches ``action``) let
    ``actor`` do ``action`` on. ``action_groups`` is the action and every group it is in
    (for ``action in Action::"read"`` in a condition).

    A case is shown when some permit applies and no forbid does, and the engine also hides
    it when a forbid cannot be evaluated (``CedarAuthorizer`` fails closed). So a forbid
    translated exactly can be subtracted: on a case the caller may see, every forbid
    evaluated to false without an error, where an exact translation is false too."""
    translate = _Translator(actor, action, action_groups)
    allowing = [translate.policy(p) for p in permits]
    refusing = [translate.policy(f) for f in forbids]
    condition = simplify(
        AllOf((AnyOf(tuple(p.condition for p in allowing)), *(Not(f.condition) for f in refusing if f.exact)))
    )
    decided = all(p.faithful for p in (*allowing, *refusing))
    return Visibility(condition, decided)


@dataclass(frozen=True, slots=True)
class _Part:
    """An expression translated.

    ``exact``: the condition agrees with Cedar on every case where Cedar evaluates the
    expression without an error. ``faithful``: it agrees on every case and Cedar never
    fails on it (no attribute missing, no type error), so its negation and its use in a
    list's answer are exact too."""

    condition: Condition
    exact: bool
    faithful: bool


INEXACT = _Part(TRUE, exact=False, faithful=False)
# Cedar fails on it (an attribute this caller lacks): the policy does not apply.
FAILS = _Part(FALSE, exact=True, faithful=False)


def _certain(value: bool) -> _Part:
    return _Part(Always(value), exact=True, faithful=True)


@dataclass(frozen=True, slots=True)
class _Entity:
    type: str
    id: str


@dataclass(frozen=True, slots=True)
class _Column:
    """A fact of the case: a column, holding a string or an entity's id of ``kind``."""

    name: str
    kind: str
    optional: bool = False


class _Unknown:
    """A value this module does not work out (context, arithmetic, another attribute)."""


class _Error:
    """A value whose evaluation fails in Cedar for this caller (a missing attribute)."""


UNKNOWN = _Unknown()
ERROR = _Error()
Term = str | int | bool | _Entity | frozenset[Any] | _Column | _Unknown | _Error


def _type_name(entity_type: pst.EntityType) -> str:
    return str(entity_type)


def _present_if(condition: Condition, outcome: bool) -> frozenset[str]:
    """The optional columns that are certainly not NULL where ``condition`` is ``outcome``
    (a guard: ``resource has mediator && resource.mediator == principal`` reads the mediator
    only where it is present)."""
    if isinstance(condition, Present):
        return frozenset({condition.column}) if outcome else frozenset()
    if isinstance(condition, Equals):
        return frozenset({condition.column})  # true or false, it was read, so it was there
    if isinstance(condition, Not):
        return _present_if(condition.part, not outcome)
    if isinstance(condition, (AllOf, AnyOf)):
        sets = [_present_if(part, outcome) for part in condition.parts]
        if not sets:
            return frozenset()
        # all parts hold (AllOf true, AnyOf false): each part's guard; else only the common one
        every = isinstance(condition, AllOf) == outcome
        return frozenset().union(*sets) if every else frozenset.intersection(*sets)
    return frozenset()


class _Translator:
    def __init__(self, actor: Actor, action: str, action_groups: frozenset[str]) -> None:
        self.actor = actor
        self.principal = _Entity(facts.USER, actor.id)
        self.action = _Entity(facts.ACTION, action)
        self.action_groups = action_groups

    def policy(self, tree: pst.Template) -> _Part:
        """Scope, then each ``when`` and ``unless`` in order: Cedar's conjunction of them."""
        part = self.both(self.principal_scope(tree.principal), lambda _: self.resource_scope(tree.resource))
        for clause in tree.clauses:
            part = self.both(part, functools.partial(self.clause, clause))
        return part

    def clause(self, clause: pst.Clause, present: frozenset[str]) -> _Part:
        translated = self.condition(clause.expr, present)
        return translated if isinstance(clause, pst.When) else self.negated(translated)

    def principal_scope(self, scope: Any) -> _Part:
        if isinstance(scope, pst.ScopeEq) and isinstance(scope.entity, pst.EntityUid):
            return _certain(self.entity(scope.entity) == self.principal)
        if isinstance(scope, pst.ScopeIs):
            return _certain(_type_name(scope.entity_type) == facts.USER)
        if isinstance(scope, pst.ScopeAny):
            return _certain(True)
        return INEXACT  # `in` a group: not worked out here

    def resource_scope(self, scope: Any) -> _Part:
        if isinstance(scope, pst.ScopeEq) and isinstance(scope.entity, pst.EntityUid):
            entity = self.entity(scope.entity)
            if entity.type != facts.CASE:
                return _certain(False)
            return _Part(Equals(ID_COLUMN, frozenset({entity.id})), exact=True, faithful=True)
        if isinstance(scope, (pst.ScopeIs, pst.ScopeIsIn)) and _type_name(scope.entity_type) != facts.CASE:
            return _certain(False)
        if isinstance(scope, (pst.ScopeAny, pst.ScopeIs)):
            return _certain(True)
        return INEXACT

    @staticmethod
    def entity(uid: pst.EntityUid) -> _Entity:
        return _Entity(_type_name(uid.type), uid.id)

    # --- expressions as conditions ----------------------------------------------------

    def condition(self, expr: Any, present: frozenset[str] = frozenset()) -> _Part:
        """``expr`` translated; ``present``: optional columns a guard already ensured."""
        if isinstance(expr, pst.BinaryOp):
            if expr.op == "and":
                return self.both(self.condition(expr.left, present), lambda p: self.condition(expr.right, p), present)
            if expr.op == "or":
                return self.either(self.condition(expr.left, present), lambda p: self.condition(expr.right, p), present)
            if expr.op in ("eq", "not_eq"):
                equal = self.equal(self.term(expr.left), self.term(expr.right), present)
                return self.negated(equal) if expr.op == "not_eq" else equal
            if expr.op == "contains":
                return self.contains(self.term(expr.left), self.term(expr.right), present)
            if expr.op == "in":
                return self.within(self.term(expr.left), self.term(expr.right))
        if isinstance(expr, pst.UnaryOp) and expr.op == "not":
            return self.negated(self.condition(expr.arg, present))
        if isinstance(expr, pst.HasAttr):
            return self.has(self.term(expr.base), expr.attrs)
        value = self.term(expr)
        if isinstance(value, bool):
            return _certain(value)
        if isinstance(value, _Error):
            return FAILS
        return INEXACT

    @staticmethod
    def both(left: _Part, right: Callable[[frozenset[str]], _Part], present: frozenset[str] = frozenset()) -> _Part:
        """``left && right``: Cedar reads ``right`` only where ``left`` is true."""
        if left.faithful and left.condition == FALSE:
            return left
        if left.faithful and left.condition == TRUE:
            return right(present)
        guarded = present | _present_if(left.condition, True) if left.faithful else present
        second = right(guarded)
        return _Part(
            AllOf((left.condition, second.condition)), left.exact and second.exact, left.faithful and second.faithful
        )

    @staticmethod
    def either(left: _Part, right: Callable[[frozenset[str]], _Part], present: frozenset[str] = frozenset()) -> _Part:
        """``left || right``: Cedar reads ``right`` only where ``left`` is false."""
        if left.faithful and left.condition == TRUE:
            return left
        if left.faithful and left.condition == FALSE:
            return right(present)
        guarded = present | _present_if(left.condition, False) if left.faithful else present
        second = right(guarded)
        return _Part(
            AnyOf((left.condition, second.condition)), left.exact and second.exact, left.faithful and second.faithful
        )

    @staticmethod
    def negated(part: _Part) -> _Part:
        return _Part(Not(part.condition), True, part.faithful) if part.exact else INEXACT

    def equal(self, left: Term, right: Term, present: frozenset[str]) -> _Part:
        if isinstance(left, _Error) or isinstance(right, _Error):
            return FAILS
        if isinstance(left, _Unknown) or isinstance(right, _Unknown):
            return INEXACT
        if isinstance(left, _Column) and isinstance(right, _Column):
            return INEXACT
        if isinstance(right, _Column):
            left, right = right, left
        if isinstance(left, _Column):
            return self.column_in(left, (right,), present)
        return _certain(_same(left, right))

    @staticmethod
    def column_in(column: _Column, values: Iterable[Term], present: frozenset[str]) -> _Part:
        """The column equals one of ``values`` (known values; Cedar's ``==`` is false
        between values of different types, never an error). An optional column is NULL
        where the attribute is absent, where Cedar fails: faithful only under a guard."""
        wanted = set()
        for value in values:
            if column.kind == "string" and isinstance(value, str):
                wanted.add(value)
            elif isinstance(value, _Entity) and value.type == column.kind:
                wanted.add(value.id)
        faithful = not column.optional or column.name in present
        return _Part(Equals(column.name, frozenset(wanted)) if wanted else FALSE, True, faithful)

    def contains(self, container: Term, element: Term, present: frozenset[str]) -> _Part:
        if isinstance(container, _Error) or isinstance(element, _Error):
            return FAILS
        if not isinstance(container, frozenset) or isinstance(element, _Unknown):
            return INEXACT  # a set of the case's (flags, timers) or an unknown one
        if isinstance(element, _Column):
            return self.column_in(element, container, present)
        return _certain(any(_same(element, item) for item in container))

    def within(self, left: Term, right: Term) -> _Part:
        """``in`` over the entity hierarchy, where it is known: an action and its groups; a
        user (who has no parents) is only in itself."""
        candidates = right if isinstance(right, frozenset) else frozenset({right})
        targets = [t for t in candidates if isinstance(t, _Entity)]
        if not isinstance(left, _Entity) or len(targets) != len(candidates):
            return INEXACT
        if left == self.action:
            return _certain(any(t.type == facts.ACTION and t.id in self.action_groups for t in targets))
        if left.type == facts.USER:
            return _certain(left in candidates)
        return INEXACT

    def has(self, base: Term, attrs: tuple[str, ...]) -> _Part:
        if len(attrs) != 1:
            return INEXACT
        attr = attrs[0]
        if base == self.principal:
            if attr == "merchant":
                return _certain(self.actor.merchant_id is not None)
            return _certain(attr == "role")  # a User has its role, and a merchant its merchant
        if isinstance(base, _Column) and base.name == ID_COLUMN:
            if attr in OPTIONAL:
                return _Part(Present(COLUMNS[attr][0]), exact=True, faithful=True)
            if attr in COLUMNS:
                return _certain(True)
        return INEXACT

    # --- expressions as values -----------------------------------------------------------

    def term(self, expr: Any) -> Term:
        if isinstance(expr, (pst.StringLit, pst.LongLit, pst.BoolLit)):
            return expr.value
        if isinstance(expr, pst.EntityLit):
            return self.entity(expr.value)
        if isinstance(expr, pst.Var):
            if expr.name == "principal":
                return self.principal
            if expr.name == "action":
                return self.action
            if expr.name == "resource":
                return _Column(ID_COLUMN, facts.CASE)
            return UNKNOWN
        if isinstance(expr, pst.Set):
            items = [self.term(e) for e in expr.elements]
            if any(isinstance(i, _Error) for i in items):
                return ERROR
            if all(isinstance(i, (str, int, bool, _Entity)) for i in items):
                return frozenset(items)
            return UNKNOWN
        if isinstance(expr, pst.GetAttr):
            return self.attribute(self.term(expr.base), expr.attr)
        return UNKNOWN

    def attribute(self, base: Term, attr: str) -> Term:
        if isinstance(base, _Error):
            return ERROR
        if base == self.principal:
            if attr == "role":
                return self.actor.role
            if attr == "merchant" and self.actor.merchant_id is not None:
                return self.actor.merchant_id
            return ERROR  # a User has no other attribute
        if isinstance(base, _Column) and base.name == ID_COLUMN and attr in COLUMNS:
            column, kind = COLUMNS[attr]
            return _Column(column, kind, attr in OPTIONAL)
        return UNKNOWN


def _same(left: Term, right: Term) -> bool:
    """Cedar's ``==`` on known values: false between different types (``1 != true``)."""
    return type(left) is type(right) and left == right
