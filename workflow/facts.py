"""Case facts: typed values from outside the case that a workflow declares and a filing carries.

A workflow file may declare, under ``facts:``, the facts its cases carry (the payment instant,
the delivery date, the card network, a reason code, ...)::

    facts:
      paid_at:      {type: instant, required: true, title: When the buyer paid}
      delivered_on: {type: date}
      network:      {type: enum, values: [visa, mastercard], required: true}
      reason_code:  {type: string}
      items:        {type: integer}
      shipping:     {type: money}

Because the declaration is part of the workflow file, it is part of the workflow's version:
a case keeps the declaration it was filed under, as it keeps the states and clocks.

Values as stored on the case (the ``filed`` event and the snapshot) are JSON: an instant is
UTC ISO-8601 text (``...Z``), a date ``YYYY-MM-DD``, an integer a number, money
``{"amount": minor units, "currency": ISO 4217}``, strings and enum values text. Policies see
them converted by :func:`cedar_value` (instants as epoch seconds, dates as day numbers since
1970-01-01, money as a record), since Cedar has neither dates nor division.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from workflow.currency import currency_problem
from workflow.errors import InvalidCommandError

FACT_TYPES = ("instant", "date", "string", "enum", "integer", "money")
FACT_KEYS = frozenset({"type", "required", "values", "title", "description"})
# Cedar attribute names: identifiers; the engine's own prefixes stay free.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAX_TEXT = 500
_EPOCH = date(1970, 1, 1)
# Cedar's Long is a signed 64-bit integer.
_LONG = 2**63


@dataclass(frozen=True, slots=True)
class FactDef:
    """One declared fact: its name, type, whether a filing must carry it, and its enum values."""

    name: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    title: str = ""


def parse_fact_defs(raw: Any, problem: Callable[[tuple[str | int, ...], str], None]) -> tuple[FactDef, ...]:
    """The ``facts:`` section of a workflow file; each mistake reported through ``problem``
    with the path of the line it is on (``("facts", name, key)``)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problem(("facts",), "'facts' must be a mapping of fact name to {type, required, values, title}")
        return ()
    found: list[FactDef] = []
    for name, spec in raw.items():
        path: tuple[str | int, ...] = ("facts", name)
        if not _NAME.match(name):
            problem(path, f"fact name {name!r} must be lower-case letters, digits and _ (starting with a letter)")
            continue
        if not isinstance(spec, dict):
            problem(path, f"fact {name!r} must be a mapping with at least 'type'")
            continue
        for key in spec:
            if key not in FACT_KEYS:
                problem((*path, key), f"unknown key {key!r} in fact {name!r} (allowed: {', '.join(sorted(FACT_KEYS))})")
        kind = spec.get("type")
        if kind not in FACT_TYPES:
            problem(
                (*path, "type") if "type" in spec else path,
                f"fact {name!r}: unknown type {kind!r} (one of {', '.join(FACT_TYPES)})",
            )
            continue
        required = spec.get("required", False)
        if not isinstance(required, bool):
            problem((*path, "required"), f"fact {name!r}: 'required' must be true or false")
            required = False
        values: tuple[str, ...] = ()
        raw_values = spec.get("values")
        if kind == "enum":
            if (
                not isinstance(raw_values, list)
                or not raw_values
                or not all(isinstance(v, str) and v for v in raw_values)
            ):
                problem(
                    (*path, "values") if "values" in spec else path,
                    f"fact {name!r}: an enum needs 'values', a non-empty list of texts",
                )
                continue
            if len(set(raw_values)) != len(raw_values):
                problem((*path, "values"), f"fact {name!r}: enum values repeat")
            values = tuple(raw_values)
        elif raw_values is not None:
            problem((*path, "values"), f"fact {name!r}: 'values' is only for type enum (this one is {kind})")
        found.append(FactDef(name=name, type=kind, required=required, values=values, title=str(spec.get("title", ""))))
    return tuple(found)


def _instant(value: Any) -> str | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _date(value: Any) -> str | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def normalise_fact(spec: FactDef, value: Any) -> Any:
    """``value`` in its stored form, or InvalidCommandError naming ``facts.<name>``."""
    where = f"facts.{spec.name}"

    def refuse(expected: str) -> InvalidCommandError:
        return InvalidCommandError(f"fact {spec.name!r} must be {expected}, got {value!r}", field=where)

    if spec.type == "instant":
        instant = _instant(value)
        if instant is None:
            raise refuse("an ISO-8601 instant with a UTC offset (2026-03-01T10:00:00Z)")
        return instant
    if spec.type == "date":
        day = _date(value)
        if day is None:
            raise refuse("a date YYYY-MM-DD")
        return day
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or not -_LONG <= value < _LONG:
            raise refuse("a whole number")
        return value
    if spec.type == "money":
        if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
            raise refuse('money {"amount": minor units, "currency": "CNY"}')
        amount, currency = value["amount"], value["currency"]
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < _LONG:
            raise refuse("money with a non-negative whole amount in minor units")
        problem = currency_problem(currency) if isinstance(currency, str) else "currency must be text"
        if problem is not None:
            raise InvalidCommandError(f"fact {spec.name!r}: {problem}", field=f"{where}.currency")
        return {"amount": amount, "currency": currency}
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or not value.isprintable():
        raise refuse(f"printable text of 1 to {_MAX_TEXT} characters")
    if spec.type == "enum" and value not in spec.values:
        raise InvalidCommandError(
            f"fact {spec.name!r} must be one of {', '.join(spec.values)}, got {value!r}", field=where
        )
    return value


def validate_facts(declared: tuple[FactDef, ...], given: Mapping[str, Any]) -> dict[str, Any]:
    """A filing's facts checked against the workflow's declaration, in their stored form:
    unknown names, missing required facts and values of the wrong type are refused, each
    naming its field."""
    by_name = {spec.name: spec for spec in declared}
    for name in given:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise InvalidCommandError(f"unknown fact {name!r} (this workflow declares: {known})", field=f"facts.{name}")
    result: dict[str, Any] = {}
    for spec in declared:
        value = given.get(spec.name)
        if value is None:
            if spec.required:
                raise InvalidCommandError(f"fact {spec.name!r} is required", field=f"facts.{spec.name}")
            continue
        result[spec.name] = normalise_fact(spec, value)
    return result


class _Declares(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def facts(self) -> tuple[FactDef, ...]: ...


class _Counts(Protocol):
    @property
    def related(self) -> tuple[Any, ...]: ...


def desk_related_names(workflows: Iterable[_Counts]) -> tuple[str, ...]:
    """The related-case counts a desk's workflows declare (workflow/related.py), by name."""
    return tuple(sorted({count.name for workflow in workflows for count in workflow.related}))


def desk_fact_types(workflows: Iterable[_Declares]) -> tuple[dict[str, str], list[str]]:
    """The facts a desk's workflows declare, name -> type (what the policies' schema gains),
    and one message per fact two workflows declare with different types."""
    types: dict[str, str] = {}
    where: dict[str, str] = {}
    clashes: list[str] = []
    for workflow in workflows:
        for spec in workflow.facts:
            known = types.setdefault(spec.name, spec.type)
            where.setdefault(spec.name, workflow.name)
            if known != spec.type:
                clashes.append(
                    f"fact {spec.name!r} is a {spec.type} in workflow {workflow.name!r} but a {known} in workflow "
                    f"{where[spec.name]!r}: policies see one type per fact"
                )
    return types, clashes


def day_number(day: date) -> int:
    """Days since 1970-01-01 (what policies compare dates with)."""
    return (day - _EPOCH).days


def cedar_value(kind: str, value: Any) -> Any:
    """A stored fact as policies see it (see the module docstring); ValueError when ``value``
    is not of ``kind`` (a fact stored under an older declaration)."""
    if kind == "instant" and isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    if kind == "date" and isinstance(value, str):
        return day_number(date.fromisoformat(value))
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "money" and isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return value
    if kind in ("string", "enum") and isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a stored {kind}")


def cedar_type(kind: str) -> str:
    """The Cedar schema type of a fact of ``kind``."""
    if kind in ("instant", "date", "integer"):
        return "Long"
    if kind == "money":
        return "{ amount: Long, currency: String }"
    return "String"
