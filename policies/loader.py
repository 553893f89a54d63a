"""Read a policy directory, validate it and report every problem with file and line.

A policy directory holds exactly one ``*.cedarschema`` file, one or more ``*.cedar``
files (read in name order) and optionally ``settings.json`` (the desk's settings:
its id, the ``Desk`` entity's attributes and the per-currency senior thresholds,
which become the ``Desk``'s tags). cedarpy reports parse errors without a position, so the
line is found here: each file is split into its policy statements, the failing
statement is re-parsed line by line until the same error appears, and failing that
the token the message names is searched for.

The version of a directory is :func:`directory_version`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

import cedarpy
from cedarpy import pst

from policies import facts
from workflow.errors import ConfigError, Problem
from workflow.facts import cedar_type

# Files that make up a policy set; anything else in the directory (a README,
# editor backups) neither loads nor changes the version.
POLICY_SUFFIX = ".cedar"
SCHEMA_SUFFIX = ".cedarschema"
SETTINGS_FILE = "settings.json"
VERSION_SUFFIXES = (POLICY_SUFFIX, SCHEMA_SUFFIX, ".json")

DEFAULT_DESK = "default"
_SETTINGS_KEYS = {"$comment", "desk", "attributes", "senior_threshold"}

# Minor-unit exponents that differ from 2, for showing thresholds in reasons.
_EXPONENTS = {
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLP": 0,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "PYG": 0,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SLOT = re.compile(r"\?(?:principal|resource)\b")
_CEDAR_POLICY_PREFIX = re.compile(r"^for policy `[^`]*`,\s*")


class PolicyLoadError(ConfigError):
    """A policy directory that cannot be used; ``problems`` lists every problem found."""


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy as written: its annotations, where it is, and which actions its scope names."""

    id: str
    reason: str
    effect: Literal["permit", "forbid"]
    file: str
    line: int
    # Action ids named in the scope; None when the scope is ``action`` (any action).
    actions: frozenset[str] | None
    cedar_id: str = ""
    # Whether the policy reads ``context``; requests for actions no such policy
    # reaches are sent without one, which saves Cedar parsing it per request.
    reads_context: bool = True
    # The attribute names it reads or tests (``x.name``, ``x["name"]``, ``x has name``);
    # None when unknown. Entities are sent with only the attributes some policy reads.
    attributes: frozenset[str] | None = None
    # The reason in Chinese (``@reason_zh``), which the console shows on zh-CN pages; empty
    # when the policy has none (the English reason is shown).
    reason_zh: str = ""


@dataclass(frozen=True, slots=True)
class ActionInfo:
    name: str
    parents: frozenset[str]
    # Resource entity types from ``appliesTo``; empty for an action group.
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """What the schema declares about actions (read from cedarpy's rendering of it)."""

    actions: Mapping[str, ActionInfo]

    def descendants(self, name: str) -> frozenset[str]:
        """``name`` and every action that is (transitively) in it."""
        found = {name}
        changed = True
        while changed:
            changed = False
            for action in self.actions.values():
                if action.name not in found and action.parents & found:
                    found.add(action.name)
                    changed = True
        return frozenset(found)

    def applies_to(self, resource_type: str) -> frozenset[str]:
        return frozenset(a.name for a in self.actions.values() if resource_type in a.resources)

    @property
    def groups(self) -> frozenset[str]:
        parents: set[str] = set()
        for action in self.actions.values():
            parents |= action.parents
        return frozenset(a for a in parents if a in self.actions and not self.actions[a].resources)


@dataclass(frozen=True, slots=True)
class DeskSettings:
    id: str
    attributes: Mapping[str, Any]
    senior_threshold: Mapping[str, int]

    def placeholders(self, language: str = "en") -> dict[str, str]:
        """Values ``{name}`` in a @reason (``language`` "en") or @reason_zh ("zh") is replaced with."""
        values = {key: str(value) for key, value in self.attributes.items() if not isinstance(value, (dict, list))}
        values["desk"] = self.id
        shown = [format_money(amount, currency) for currency, amount in sorted(self.senior_threshold.items())]
        if language == "zh":
            values["senior_threshold"] = " 或 ".join(shown) if shown else "调解台设定的金额（尚未设定）"
        else:
            values["senior_threshold"] = " or ".join(shown) if shown else "the desk's threshold (none is configured)"
        return values


@dataclass(frozen=True)
class LoadedPolicies:
    """A validated policy directory with its pre-parsed cedarpy handles."""

    directory: Path
    version: str
    schema_file: str
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    schema_info: SchemaInfo
    # In Cedar's order: the positional ids policy0, policy1, ... of ``policy_set``.
    policies: tuple[PolicyInfo, ...]
    desk: DeskSettings
    base_entities: cedarpy.Entities
    by_cedar_id: Mapping[str, PolicyInfo]
    # The case facts the desk's workflows declare (name -> type, workflow/facts.py), which the
    # schema's Case gained as ``facts`` and ``days_since``; empty when none are declared.
    fact_types: Mapping[str, str] = field(default_factory=dict)
    # The zone ``days_since`` counts local days in (desk.yaml ``zone``).
    fact_zone: str = "UTC"
    # The related-case counts the desk's workflows declare (``resource.related``).
    related_names: tuple[str, ...] = ()


def format_money(amount: int, currency: str) -> str:
    exponent = _EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{amount:,} {currency}"
    units, minor = divmod(amount, 10**exponent)
    return f"{units:,}.{minor:0{exponent}d} {currency}"


def directory_version(directory: str | Path) -> str:
    """sha256 hex over the directory's policy files.

    The files are those directly in ``directory`` whose names end in ``.cedar``,
    ``.cedarschema`` or ``.json``, in order of their names (sorted by code point).
    For each: the UTF-8 name, a NUL byte, the content's length in bytes as decimal
    ASCII, a NUL byte, then the content's raw bytes. The hash is over that whole
    byte string; so renaming, editing, adding or removing a file changes it, and
    touching a file or editing a README does not.
    """
    digest = hashlib.sha256()
    for path in _version_files(Path(directory)):
        content = path.read_bytes()
        digest.update(path.name.encode("utf-8") + b"\0" + str(len(content)).encode("ascii") + b"\0")
        digest.update(content)
    return digest.hexdigest()


def version_documents(directory: str | Path) -> tuple[str, dict[str, str]]:
    """The directory's policy files as text, and the version computed from exactly those
    bytes (so a caller storing them knows they are the files of that version)."""
    digest = hashlib.sha256()
    documents: dict[str, str] = {}
    for path in _version_files(Path(directory)):
        content = path.read_bytes()
        digest.update(path.name.encode("utf-8") + b"\0" + str(len(content)).encode("ascii") + b"\0")
        digest.update(content)
        documents[path.name] = content.decode("utf-8")
    return digest.hexdigest(), documents


def _version_files(directory: Path) -> list[Path]:
    return sorted(
        (p for p in directory.iterdir() if p.is_file() and p.name.endswith(VERSION_SUFFIXES)),
        key=lambda p: p.name,
    )


def load(directory: str | Path) -> LoadedPolicies:
    """Load and validate ``directory``; raise :class:`PolicyLoadError` listing every problem."""
    loaded, problems = try_load(directory)
    if loaded is None:
        raise PolicyLoadError(problems)
    return loaded


def try_load(
    directory: str | Path,
    *,
    fact_types: Mapping[str, str] | None = None,
    fact_zone: str = "UTC",
    related: tuple[str, ...] = (),
) -> tuple[LoadedPolicies | None, list[Problem]]:
    """Load and validate ``directory``: the result, or None and every problem found.

    ``fact_types``: the case facts the desk declares (name -> type); the schema's ``Case``
    gains them (:func:`facts_schema`), so policies reading them are type-checked."""
    loaded, problems = _Loader(Path(directory), dict(fact_types or {}), related).run()
    if loaded is not None and (fact_types or related):
        loaded = replace(loaded, fact_types=dict(fact_types or {}), fact_zone=fact_zone, related_names=related)
    return loaded, problems


_CASE_ENTITY = re.compile(r"^(entity\s+Case\b[^{]*=\s*\{)", re.MULTILINE)


def facts_schema(text: str, fact_types: Mapping[str, str], related: tuple[str, ...] = ()) -> str:
    """The schema ``text`` with the declared case facts added to ``Case``: ``facts`` (every fact
    optional: a case filed before a fact was declared has none) and ``days_since`` (local days
    from the filing and from each date or instant fact). Added on the lines already there, so
    the file's line numbers stay right in every message."""
    if not fact_types and not related:
        return text
    fields = ", ".join(f"{name}?: {cedar_type(kind)}" for name, kind in sorted(fact_types.items()))
    counts = ", ".join(f"{name}?: Long" for name in sorted(related))
    days = ", ".join(
        ["filed?: Long", *(f"{n}?: Long" for n, k in sorted(fact_types.items()) if k in ("date", "instant"))]
    )
    added = _CASE_ENTITY.sub(r"\1 facts: CaseFacts, days_since: CaseDays, related: CaseRelated,", text, count=1)
    return (
        f"{added}\ntype CaseFacts = {{ {fields} }}; type CaseDays = {{ {days} }}; type CaseRelated = {{ {counts} }};\n"
    )


# --- locating errors --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy's text in its file: from its first significant character to its ``;``."""

    text: str
    line: int  # 1-based line of the first significant character


def split_statements(text: str) -> list[Statement]:
    """Split Cedar policy text at top-level ``;`` (outside strings and ``//`` comments).

    Cedar has no other use for ``;``, so this finds the same policies the parser
    does, and each one's first line (its first annotation, or its effect).
    """
    statements: list[Statement] = []
    start: int | None = None
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "/" and text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if char == '"':
            if start is None:
                start = i
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if char == ";":
            if start is not None:
                statements.append(Statement(text[start : i + 1], text.count("\n", 0, start) + 1))
            start = None
        elif start is None and not char.isspace():
            start = i
        i += 1
    if start is not None:
        statements.append(Statement(text[start:], text.count("\n", 0, start) + 1))
    return statements


def _parse_message(parse: Callable[[str], object], text: str) -> str | None:
    try:
        parse(text)
    except ValueError as exc:
        return str(exc)
    return None


def _named_tokens(message: str) -> list[str]:
    """Things an error message names: `quoted` tokens, else the list after its last colon."""
    tokens = re.findall(r"`([^`]+)`", message)
    if not tokens and ":" in message:
        tokens = [t.strip() for t in message.rsplit(":", 1)[1].split(",") if t.strip()]
    return tokens


def _find_token(lines: list[str], tokens: list[str]) -> int | None:
    for token in tokens:
        pattern = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(token) + r"(?![A-Za-z0-9_])")
        for index, line in enumerate(lines):
            code = line.split("//", 1)[0]
            if pattern.search(code):
                return index
    return None


def locate_error(text: str, message: str, parse: Callable[[str], object]) -> int:
    """0-based line of ``text`` at which ``parse`` fails with ``message``.

    The parser stops at the first bad token; every prefix that contains it fails
    with the same message, and a prefix that stops before it does not. Errors found
    only once the whole text is read (an unknown function, a bad effect) are placed
    at the token they name.
    """
    lines = text.split("\n")
    for count in range(1, len(lines)):
        if _parse_message(parse, "\n".join(lines[:count])) == message:
            return count - 1
    if message.startswith(("unexpected token", "invalid token", "unexpected end of input")):
        return len(lines) - 1
    found = _find_token(lines, _named_tokens(message))
    return found if found is not None else 0


# --- the loader -------------------------------------------------------------------


def _numeric_id(cedar_id: str) -> int:
    digits = cedar_id.removeprefix("policy")
    return int(digits) if digits.isdigit() else 1 << 30


def _nodes(node: object) -> Iterator[object]:
    """Every node of a policy syntax tree."""
    stack: list[object] = [node]
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, tuple):
            stack.extend(value)
        elif is_dataclass(value) and not isinstance(value, type):
            stack.extend(getattr(value, f.name) for f in fields(value))


def _reads_context(node: object) -> bool:
    return any(isinstance(value, pst.Var) and value.name == "context" for value in _nodes(node))


def _attributes_read(node: object) -> frozenset[str]:
    names: set[str] = set()
    for value in _nodes(node):
        if isinstance(value, pst.GetAttr):
            names.add(value.attr)
        elif isinstance(value, pst.HasAttr):  # ``x has a.b`` tests a path
            names.update(value.attrs)
    return frozenset(names)


def _scope_actions(scope: pst.ActionConstraint) -> frozenset[str] | None:
    if isinstance(scope, pst.ActionEq):
        return frozenset({scope.entity.id})
    if isinstance(scope, pst.ActionIn):
        return frozenset(e.id for e in scope.entities)
    return None


_SCHEMA_ACTION = re.compile(
    r'^action "((?:[^"\\]|\\.)*)"(?: in \[([^\]]*)\])?( appliesTo \{.*?\n\})?;', re.MULTILINE | re.DOTALL
)


def schema_info(schema: cedarpy.Schema) -> SchemaInfo:
    """Actions, their groups and resource types, from cedarpy's normalised rendering of the schema."""
    actions: dict[str, ActionInfo] = {}
    for match in _SCHEMA_ACTION.finditer(str(schema)):
        name = match.group(1)
        parents = frozenset(re.findall(r'Action::"((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        resources: tuple[str, ...] = ()
        body = match.group(3) or ""
        found = re.search(r"resource: \[([^\]]*)\]", body)
        if found:
            resources = tuple(r.strip() for r in found.group(1).split(",") if r.strip())
        actions[name] = ActionInfo(name=name, parents=parents, resources=resources)
    return SchemaInfo(actions=actions)


class _Loader:
    def __init__(
        self, directory: Path, fact_types: Mapping[str, str] | None = None, related: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.fact_types = dict(fact_types or {})
        self.related = related
        self.problems: list[Problem] = []
        # (file, line) -> the policy's own text, to place validation errors inside it.
        self.statement_text: dict[tuple[str, int], str] = {}

    def problem(self, file: str | Path, line: int, message: str) -> None:
        self.problems.append(Problem(str(file), line, message))

    def run(self) -> tuple[LoadedPolicies | None, list[Problem]]:
        directory = self.directory
        if not directory.is_dir():
            self.problem(directory, 1, "policy directory does not exist or is not a directory")
            return None, self.problems
        files = _version_files(directory)
        version = directory_version(directory)
        schema_files = [p for p in files if p.name.endswith(SCHEMA_SUFFIX)]
        policy_files = [p for p in files if p.name.endswith(POLICY_SUFFIX)]
        if len(schema_files) != 1:
            found = ", ".join(p.name for p in schema_files) or "none"
            self.problem(directory, 1, f"a policy directory needs exactly one *{SCHEMA_SUFFIX} file (found: {found})")
        if not policy_files:
            self.problem(directory, 1, f"a policy directory needs at least one *{POLICY_SUFFIX} file")
        schema = self._schema(schema_files[0]) if len(schema_files) == 1 else None
        texts: list[tuple[Path, str]] = []
        infos: list[PolicyInfo] = []
        parsed_all = True
        for path in policy_files:
            text = self._read(path)
            parsed = self._policy_file(path, text) if text is not None else None
            if text is None or parsed is None:
                parsed_all = False
                continue
            texts.append((path, text))
            infos.extend(parsed)
        self._check_ids(infos)
        settings_path = directory / SETTINGS_FILE
        desk = self._settings(settings_path)
        policy_set: cedarpy.PolicySet | None = None
        if parsed_all and texts:
            combined = "\n".join(text for _, text in texts)
            policy_set = cedarpy.PolicySet.from_str(combined)
            # Cedar numbers the policies of one text in order; pair them with ours.
            cedar_ids = sorted(policy_set.to_pst().static_policies, key=_numeric_id)
            infos = [replace(info, cedar_id=cedar_id) for info, cedar_id in zip(infos, cedar_ids, strict=True)]
            if schema is not None:
                self._validate(combined, schema, {info.cedar_id: info for info in infos}, schema_files[0])
        base = self._desk_entities(desk, schema, settings_path) if desk is not None and schema is not None else None
        if desk is not None:
            infos = self._format_reasons(infos, desk)
        if self.problems or schema is None or desk is None or policy_set is None or base is None:
            return None, self.problems
        by_cedar_id = {info.cedar_id: info for info in infos}
        return (
            LoadedPolicies(
                directory=directory,
                version=version,
                schema_file=str(schema_files[0]),
                policy_set=policy_set,
                schema=schema,
                schema_info=schema_info(schema),
                policies=tuple(infos),
                desk=desk,
                base_entities=base,
                by_cedar_id=by_cedar_id,
            ),
            [],
        )

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(path, 1, f"cannot read file: {exc}")
            return None

    def _schema(self, path: Path) -> cedarpy.Schema | None:
        text = self._read(path)
        if text is None:
            return None
        text = facts_schema(text, self.fact_types, self.related)
        try:
            schema = cedarpy.Schema.from_str(text)
        except ValueError as exc:
            message = str(exc)
            line = locate_error(text, message, cedarpy.Schema.from_str) + 1
            self.problem(path, line, f"schema error: {message}")
            return None
        if re.search(r"^namespace ", str(schema), re.MULTILINE):
            # The facts name bare types (User, Case, Desk, Action).
            index = _find_token(text.split("\n"), ["namespace"]) or 0
            self.problem(path, index + 1, "namespaces are not supported: declare User, Case and Desk at top level")
            return None
        return schema

    def _policy_file(self, path: Path, text: str) -> list[PolicyInfo] | None:
        statements = split_statements(text)
        try:
            tree = cedarpy.PolicySet.from_str(text).to_pst()
        except ValueError as exc:
            self._syntax_problems(path, text, statements, str(exc))
            return None
        if tree.templates:
            slotted = [st.line for st in statements if _SLOT.search(st.text)] or [1]
            for line in slotted:
                self.problem(path, line, "policy templates (?principal / ?resource slots) are not supported here")
            return None
        policies = [tree.static_policies[k] for k in sorted(tree.static_policies, key=_numeric_id)]
        if len(policies) != len(statements):
            # Should not happen; fall back to the file's first line for every policy.
            statements = [Statement("", 1)] * len(policies)
        result: list[PolicyInfo] = []
        for policy, statement in zip(policies, statements, strict=True):
            self.statement_text[(str(path), statement.line)] = statement.text
            annotations = policy.annotations
            policy_id = annotations.get("id")
            reason = annotations.get("reason")
            where = f"policy at line {statement.line}"
            if policy_id is None or not policy_id.strip():
                self.problem(path, statement.line, f'{where} has no @id("...") annotation (every policy needs one)')
                policy_id = ""
            if reason is None or not reason.strip():
                shown = repr(policy_id) if policy_id else where
                self.problem(path, statement.line, f'policy {shown} has no @reason("...") annotation')
                reason = ""
            # Optional; when given, it says the same in Chinese (checked in _format_reasons).
            reason_zh = annotations.get("reason_zh")
            if reason_zh is not None and not reason_zh.strip():
                shown = repr(policy_id) if policy_id else where
                self.problem(path, statement.line, f"policy {shown} has an empty @reason_zh annotation")
            result.append(
                PolicyInfo(
                    id=policy_id,
                    reason=reason,
                    effect=policy.effect,
                    file=str(path),
                    line=statement.line,
                    actions=_scope_actions(policy.action),
                    reads_context=_reads_context(policy.clauses),
                    attributes=_attributes_read(policy.clauses),
                    reason_zh=reason_zh or "",
                )
            )
        return result

    def _syntax_problems(self, path: Path, text: str, statements: list[Statement], message: str) -> None:
        reported = False
        for statement in statements:
            error = _parse_message(cedarpy.PolicySet.from_str, statement.text)
            if error is None:
                continue
            offset = locate_error(statement.text, error, cedarpy.PolicySet.from_str)
            self.problem(path, statement.line + offset, f"syntax error: {error}")
            reported = True
        if not reported:
            line = locate_error(text, message, cedarpy.PolicySet.from_str) + 1
            self.problem(path, line, f"syntax error: {message}")

    def _check_ids(self, infos: list[PolicyInfo]) -> None:
        seen: dict[str, PolicyInfo] = {}
        for info in infos:
            if not info.id:
                continue
            first = seen.get(info.id)
            if first is None:
                seen[info.id] = info
            else:
                self.problem(
                    info.file, info.line, f"duplicate @id {info.id!r} (first used at {first.file}:{first.line})"
                )

    def _validate(
        self, combined: str, schema: cedarpy.Schema, by_cedar_id: Mapping[str, PolicyInfo], schema_file: Path
    ) -> None:
        result = cedarpy.validate_policies(combined, schema)
        if result.validation_passed:
            return
        for error in result.errors:
            info = by_cedar_id.get(error.policy_id)
            message = _CEDAR_POLICY_PREFIX.sub("", error.error)
            if info is None:
                self.problem(schema_file, 1, f"schema validation: {message}")
                continue
            line = info.line
            statement = self.statement_text.get((info.file, info.line))
            if statement:
                found = _find_token(statement.split("\n"), _named_tokens(message))
                line += found or 0
            self.problem(info.file, line, f"policy {info.id!r} does not match the schema: {message}")

    def _settings(self, path: Path) -> DeskSettings | None:
        if not path.exists():
            return DeskSettings(id=DEFAULT_DESK, attributes={}, senior_threshold={})
        text = self._read(path)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.problem(path, exc.lineno, f"invalid JSON: {exc.msg}")
            return None
        if not isinstance(data, dict):
            self.problem(path, 1, "settings must be a JSON object with desk, attributes, senior_threshold")
            return None
        ok = True
        for key in data:
            if key not in _SETTINGS_KEYS:
                allowed = ", ".join(sorted(_SETTINGS_KEYS))
                self.problem(path, _json_line(text, key), f"unknown key {key!r} (allowed: {allowed})")
                ok = False
        desk = data.get("desk", DEFAULT_DESK)
        if not isinstance(desk, str) or not desk:
            self.problem(path, _json_line(text, "desk"), "'desk' must be a non-empty name")
            ok = False
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict):
            self.problem(path, _json_line(text, "attributes"), "'attributes' must be an object")
            ok = False
        thresholds = data.get("senior_threshold", {})
        if not isinstance(thresholds, dict):
            line = _json_line(text, "senior_threshold")
            self.problem(path, line, "'senior_threshold' must map currency codes to amounts")
            ok = False
        else:
            for currency, amount in thresholds.items():
                line = _json_line(text, currency)
                if not re.fullmatch(r"[A-Z]{3}", currency):
                    self.problem(path, line, f"senior_threshold: {currency!r} is not an ISO 4217 currency code")
                    ok = False
                if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**63:
                    message = f"senior_threshold[{currency!r}] must be a whole amount in minor units (e.g. 500000)"
                    self.problem(path, line, message)
                    ok = False
        if not ok:
            return None
        return DeskSettings(id=str(desk), attributes=dict(attributes), senior_threshold=dict(thresholds))

    def _desk_entities(self, desk: DeskSettings, schema: cedarpy.Schema, path: Path) -> cedarpy.Entities | None:
        """The entities every request shares: the desk, plus the action hierarchy Cedar adds from the schema."""
        document = json.dumps([facts.desk_entity(desk.id, desk.attributes, desk.senior_threshold)])
        try:
            return cedarpy.Entities.from_json_str(document, schema)
        except ValueError as exc:
            detail = _desk_mismatch(schema, desk.attributes) or str(exc)
            if path.exists():
                self.problem(
                    path,
                    _json_line(path.read_text(encoding="utf-8"), "attributes"),
                    f"desk settings do not match entity Desk in the schema: {detail}",
                )
            else:
                self.problem(self.directory, 1, f"no {SETTINGS_FILE}, and the schema's Desk needs settings: {detail}")
            return None

    def _format_reasons(self, infos: list[PolicyInfo], desk: DeskSettings) -> list[PolicyInfo]:
        values = desk.placeholders()
        values_zh = desk.placeholders("zh")
        result = []
        for info in infos:
            unknown = [name for name in _PLACEHOLDER.findall(info.reason) if name not in values]
            if unknown:
                self.problem(
                    info.file,
                    info.line,
                    f"@reason of {info.id!r} uses {{{unknown[0]}}}, which is not a desk setting "
                    f"(known: {', '.join(sorted(values))})",
                )
                continue
            reason = _PLACEHOLDER.sub(lambda m: values[m.group(1)], info.reason)
            # The translation names the same settings as the reason, so that it says the same.
            if info.reason_zh and set(_PLACEHOLDER.findall(info.reason_zh)) != set(_PLACEHOLDER.findall(info.reason)):
                self.problem(
                    info.file,
                    info.line,
                    f"@reason_zh of {info.id!r} names other settings than its @reason "
                    f"({sorted(set(_PLACEHOLDER.findall(info.reason_zh)))} against "
                    f"{sorted(set(_PLACEHOLDER.findall(info.reason)))})",
                )
                continue
            reason_zh = _PLACEHOLDER.sub(lambda m: values_zh[m.group(1)], info.reason_zh)
            result.append(replace(info, reason=reason, reason_zh=reason_zh))
        return result


_DESK_DECLARATION = re.compile(r"^entity Desk(?: in \[[^\]]*\])? = \{(.*?)\n\}", re.MULTILINE | re.DOTALL)
_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {"Long": (int,), "String": (str,), "Bool": (bool,)}


def _desk_mismatch(schema: cedarpy.Schema, attributes: Mapping[str, Any]) -> str:
    """Which settings attributes are missing, unknown or of the wrong type, as far as the
    rendered schema shows (Cedar says only "does not conform"); empty if nothing is found."""
    found = _DESK_DECLARATION.search(str(schema))
    if found is None:
        return ""
    declared: dict[str, tuple[str, bool]] = {}
    for line in found.group(1).split("\n"):
        match = re.match(r'\s*"?([A-Za-z_][A-Za-z0-9_]*)"?(\??):\s*([^,]+),?\s*$', line)
        if match:
            declared[match.group(1)] = (match.group(3).strip(), match.group(2) == "?")
    notes = [
        f"missing attribute {name!r} ({kind})"
        for name, (kind, optional) in declared.items()
        if not optional and name not in attributes
    ]
    notes += [f"unknown attribute {name!r}" for name in attributes if name not in declared]
    for name, value in attributes.items():
        kind = declared.get(name, ("", False))[0]
        expected = _SIMPLE_TYPES.get(kind)
        if expected is not None and (not isinstance(value, expected) or (kind == "Long" and isinstance(value, bool))):
            notes.append(f"attribute {name!r} must be a {kind}")
    return "; ".join(notes)


def _json_line(text: str, key: str) -> int:
    needle = json.dumps(key) + ":"
    for index, line in enumerate(text.split("\n")):
        if needle in line.replace('" :', '":'):
            return index + 1
    return 1
