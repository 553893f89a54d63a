"""Loading a policy directory: problems with file and line, the version hash, and PolicyStore reloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies.cedar import CedarAuthorizer, load_policy_dir
from policies.loader import PolicyLoadError, directory_version, locate_error, split_statements, try_load
from policies.store import PolicyStore
from tests.support.actors import MEDIATOR, OTHER_MEDIATOR
from tests.support.policy_factories import (
    EXTRA_RULE_HEAD,
    NOW,
    add_extra_rule,
    assigned,
    copy_policy_dir,
    with_accepted_offer,
)
from workflow.errors import ConfigError, Problem


def problems_with(tmp_path: Path, text: str, name: str = "zz_extra.cedar") -> tuple[Path, list[Problem]]:
    directory = copy_policy_dir(tmp_path)
    (directory / name).write_text(text, encoding="utf-8")
    loaded, problems = try_load(directory)
    assert loaded is None
    return directory / name, problems


def test_default_directory_loads_with_unique_annotated_policies(authorizer: CedarAuthorizer) -> None:
    ids = authorizer.policy_ids
    assert len(ids) == len(set(ids)) == 51
    assert all(p.reason and p.id for p in authorizer.policies)
    assert len(authorizer.version) == 64


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        pytest.param(
            'permit (principal, action == Action::"comment", resource)\nwhen {\n  principal.role == "x" &&\n};\n',
            7,
            "unexpected token `}`",
            id="dangling-operator",
        ),
        pytest.param(
            'permit (principal, action == Action::"comment", resource)\nwhen { principal.role == "x" }\n\n'
            '@id("extra-two")\n@reason("two")\npermit (principal, action == Action::"comment", resource);\n',
            7,
            "unexpected token `@`",
            id="missing-semicolon",
        ),
        pytest.param(
            'allow (principal, action == Action::"comment", resource);\n', 4, "invalid policy effect", id="bad-effect"
        ),
        pytest.param(
            'permit (principal, action == Action::"comment", resource)\nwhen {\n  foo(1)\n};\n',
            6,
            "`foo` is not a valid function",
            id="unknown-function",
        ),
        pytest.param(
            'permit (principal, action == Action::"comment", resource)\nwhen {\n  principal.role == "x\n};\n',
            6,
            "invalid token",
            id="unterminated-string",
        ),
    ],
)
def test_syntax_errors_name_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path, problems = problems_with(tmp_path, EXTRA_RULE_HEAD + body)
    assert len(problems) == 1, problems
    assert problems[0].file == str(path)
    assert problems[0].line == line
    assert message in problems[0].message and problems[0].message.startswith("syntax error")


def test_every_broken_policy_of_a_file_is_reported(tmp_path: Path) -> None:
    text = (
        '// a ; in a comment\n@id("s;1")\n@reason("a ; in a string")\n'
        'permit (principal, action == Action::"comment", resource is Case)\nwhen { principal.role == "a;b" };\n'
        '@id("s2")\n@reason("x")\npermit (principal, action, resource) when { 1 + };\n'
        '@id("s3")\n@reason("x")\npermit (principal, action, resource)\n  when { 2 * };\n'
    )
    path, problems = problems_with(tmp_path, text)
    assert [(p.file, p.line) for p in problems] == [(str(path), 8), (str(path), 12)]


def test_schema_validation_errors_name_the_policy_and_line(tmp_path: Path) -> None:
    body = 'permit (principal, action == Action::"comment", resource is Case)\nwhen {\n  resource.stat == "x"\n};\n'
    path, problems = problems_with(tmp_path, EXTRA_RULE_HEAD + body)
    assert [(p.file, p.line) for p in problems] == [(str(path), 6)]
    assert "policy 'extra-one' does not match the schema" in problems[0].message
    assert "attribute `stat` on entity type `Case` not found" in problems[0].message


def test_an_action_missing_from_the_schema_is_refused(tmp_path: Path) -> None:
    path, problems = problems_with(
        tmp_path, EXTRA_RULE_HEAD + 'permit (principal, action == Action::"teleport", resource);\n'
    )
    assert problems and all(p.file == str(path) for p in problems)
    assert any('unrecognized action `Action::"teleport"`' in p.message and p.line == 4 for p in problems)


def test_missing_and_duplicate_annotations(tmp_path: Path) -> None:
    text = (
        '@reason("no id")\npermit (principal, action == Action::"comment", resource is Case);\n\n'
        '@id("no-reason")\npermit (principal, action == Action::"comment", resource is Case);\n\n'
        '@id("senior-rules")\n@reason("again")\npermit (principal, action == Action::"comment", resource is Case);\n'
        '@id("")\n@reason("empty id")\npermit (principal, action == Action::"comment", resource is Case);\n'
    )
    path, problems = problems_with(tmp_path, text)
    found = {(p.line, p.message.split(" (")[0]) for p in problems}
    assert found == {
        (1, 'policy at line 1 has no @id("...") annotation'),
        (4, "policy 'no-reason' has no @reason(\"...\") annotation"),
        (7, "duplicate @id 'senior-rules'"),
        (10, 'policy at line 10 has no @id("...") annotation'),
    }
    duplicate = next(p for p in problems if "duplicate" in p.message)
    assert "triggers.cedar:" in duplicate.message  # where the first one is


def test_templates_are_refused_at_their_line(tmp_path: Path) -> None:
    text = '@id("t")\n@reason("t")\npermit (principal == ?principal, action == Action::"comment", resource is Case);\n'
    _, problems = problems_with(tmp_path, text)
    assert [(p.line, "templates" in p.message) for p in problems] == [(1, True)]


def test_unknown_reason_placeholder(tmp_path: Path) -> None:
    text = '@id("p")\n@reason("above {nope}")\npermit (principal, action == Action::"comment", resource is Case);\n'
    _, problems = problems_with(tmp_path, text)
    assert len(problems) == 1 and "uses {nope}, which is not a desk setting" in problems[0].message


def test_schema_syntax_error_has_a_line(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    schema = directory / "schema.cedarschema"
    lines = schema.read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("entity Desk"))
    lines[index] = "entity Desk = {{"
    schema.write_text("\n".join(lines))
    _, problems = try_load(directory)
    schema_problems = [p for p in problems if p.file == str(schema)]
    assert schema_problems and schema_problems[0].line == index + 1
    assert schema_problems[0].message.startswith("schema error")


def test_settings_problems(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    settings = directory / "settings.json"
    settings.write_text(
        '{\n  "desk": "default",\n  "attributes": {"reopen_window_days": 15},\n  "senior_threshold": {\n'
        '    "CNY": 5000.5,\n    "yen": 1\n  }\n}\n'
    )
    _, problems = try_load(directory)
    assert {(p.file, p.line) for p in problems} == {(str(settings), 5), (str(settings), 6)}

    settings.write_text('{\n  "desk": "default",\n  "attributes": {}\n,}\n')
    _, problems = try_load(directory)
    assert [(p.line, p.message.startswith("invalid JSON")) for p in problems] == [(4, True)]

    settings.write_text('{\n  "desk": "default",\n  "attributes": {}\n}\n')
    _, problems = try_load(directory)
    mismatch = next(p for p in problems if "do not match entity Desk" in p.message)
    assert mismatch.line == 3 and "reopen_window_days" in mismatch.message
    # The reason that shows the setting cannot be filled in either.
    assert any("uses {reopen_window_days}" in p.message for p in problems)


def test_load_policy_dir_raises_with_problems(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    (directory / "zz.cedar").write_text("permit (principal, action, resource) when { 1 + };\n")
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_dir(directory)
    assert isinstance(caught.value, ConfigError)  # every kind of configuration file is reported alike
    assert caught.value.problems[0].line == 1
    assert str(directory / "zz.cedar") + ":1: syntax error" in str(caught.value)


def test_a_directory_needs_one_schema_and_some_policies(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _, problems = try_load(tmp_path / "empty")
    assert len(problems) == 2
    _, problems = try_load(tmp_path / "missing")
    assert "does not exist" in problems[0].message


def test_the_threshold_is_configured_in_settings(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    settings = json.loads((directory / "settings.json").read_text())
    settings["senior_threshold"] = {"CNY": 100_000, "JPY": 70_000}
    (directory / "settings.json").write_text(json.dumps(settings))
    authorizer = load_policy_dir(directory)
    snapshot = with_accepted_offer(assigned("mediating", claim_amount=200_000))
    decision = authorizer.decide(actor=MEDIATOR, action="settle", case=snapshot, now=NOW)
    assert decision.reasons == (
        "claims above 1,000.00 CNY or 70,000 JPY must be settled or ruled on by a senior mediator",
    )
    cheap = with_accepted_offer(assigned("mediating", claim_amount=50_000, currency="JPY"))
    assert authorizer.decide(actor=MEDIATOR, action="settle", case=cheap, now=NOW).allowed
    # The Chinese reason is filled in from the same settings.
    assert authorizer.reason_in(decision.reasons[0], "zh-CN") == (
        "金额超过 1,000.00 CNY 或 70,000 JPY 的投诉必须由高级调解员和解或裁决"
    )


def test_every_default_policy_gives_its_reason_in_chinese_too(authorizer: CedarAuthorizer) -> None:
    assert all(p.reason_zh and p.reason_zh != p.reason for p in authorizer.policies)
    assert authorizer.reason_in("a case can be reopened only once", "zh-CN") == "案件只能重新打开一次"
    assert authorizer.reason_in("a case can be reopened only once", "en") == "a case can be reopened only once"
    assert authorizer.reason_in("not a policy's reason", "zh-CN") == "not a policy's reason"


def test_a_chinese_reason_must_say_something_with_the_same_settings(tmp_path: Path) -> None:
    text = (
        '@id("p1")\n@reason("above {senior_threshold}")\n@reason_zh("超过 {reopen_window_days}")\n'
        'permit (principal, action == Action::"comment", resource is Case);\n'
        '@id("p2")\n@reason("two")\n@reason_zh(" ")\n'
        'permit (principal, action == Action::"comment", resource is Case);\n'
    )
    _, problems = problems_with(tmp_path, text)
    assert sorted((p.line, p.message.split(" (")[0]) for p in problems) == [
        (1, "@reason_zh of 'p1' names other settings than its @reason"),
        (5, "policy 'p2' has an empty @reason_zh annotation"),
    ]


# --- version --------------------------------------------------------------------


def test_version_changes_with_content_and_not_otherwise(tmp_path: Path) -> None:
    first = copy_policy_dir(tmp_path, "a")
    second = copy_policy_dir(tmp_path, "b")
    version = directory_version(first)
    assert directory_version(second) == version == load_policy_dir(first).version
    (first / "README.md").write_text("notes that do not change any decision")
    (first / "guards.cedar").touch()
    assert directory_version(first) == version
    guards = first / "guards.cedar"
    guards.write_text(guards.read_text() + "\n// a comment is a change\n")
    assert directory_version(first) != version
    (second / "guards.cedar").rename(second / "guards2.cedar")
    assert directory_version(second) != version


def test_version_is_the_documented_hash(tmp_path: Path) -> None:
    import hashlib

    directory = tmp_path / "tiny"
    directory.mkdir()
    (directory / "b.cedar").write_bytes(b"x")
    (directory / "a.cedarschema").write_bytes(b"yz")
    (directory / "notes.txt").write_bytes(b"ignored")
    expected = hashlib.sha256(b"a.cedarschema\x002\x00yz" + b"b.cedar\x001\x00x").hexdigest()
    assert directory_version(directory) == expected


# --- store ----------------------------------------------------------------------


def test_store_keeps_serving_the_old_set_when_a_reload_fails(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    store = PolicyStore.open(directory)
    before = store.current
    (directory / "zz.cedar").write_text('@id("x")\n@reason("x")\npermit (principal, action, resource)\nwhen { ) };\n')
    with pytest.raises(PolicyLoadError) as caught:
        store.reload()
    assert caught.value.problems[0] == Problem(str(directory / "zz.cedar"), 4, "syntax error: unexpected token `)`")
    assert store.current is before
    assert store.try_reload() == caught.value.problems
    decision = store.current.decide(actor=MEDIATOR, action="view", case=assigned(), now=NOW)
    assert decision.allowed

    (directory / "zz.cedar").write_text(
        '@id("x")\n@reason("mediators may read every case here")\n'
        'permit (principal, action == Action::"view", resource is Case)\nwhen { principal.role == "mediator" };\n'
    )
    assert store.try_reload() == []
    assert store.current is not before and store.version != before.version
    decision = store.current.decide(actor=MEDIATOR, action="view", case=assigned("mediating", OTHER_MEDIATOR), now=NOW)
    assert decision.allowed and decision.policy_ids == ("x",)


def test_store_reload_from_another_directory(tmp_path: Path) -> None:
    store = PolicyStore.open(copy_policy_dir(tmp_path, "a"))
    other = copy_policy_dir(tmp_path, "b")
    (other / "zz.cedar").write_text("// nothing but a comment\n")
    authorizer = store.reload(other)
    assert store.current is authorizer and authorizer.directory == other


# --- the helpers that find lines ------------------------------------------------------


def test_split_statements_ignores_semicolons_in_strings_and_comments() -> None:
    text = (
        '// ; here\n\n@id("a;b")\npermit (principal, action, resource)\n  when { "\\";" == "x" };\n'
        "  forbid(principal, action, resource);\n"
    )
    statements = split_statements(text)
    assert [s.line for s in statements] == [3, 6]
    assert statements[1].text == "forbid(principal, action, resource);"


def test_locate_error_falls_back_to_the_named_token() -> None:
    def parse(text: str) -> None:
        if "bogus" in text and text.rstrip().endswith(";"):
            raise ValueError("`bogus` is not known")
        if not text.rstrip().endswith(";"):
            raise ValueError("unexpected end of input")

    assert locate_error("a\nb bogus\nc;", "`bogus` is not known", parse) == 1


def test_a_namespaced_schema_is_refused(tmp_path: Path) -> None:
    directory = copy_policy_dir(tmp_path)
    schema = directory / "schema.cedarschema"
    schema.write_text("// desk\nnamespace Desk1 {\n" + schema.read_text() + "\n}\n")
    _, problems = try_load(directory)
    assert any(p.file == str(schema) and p.line == 2 and "namespaces are not supported" in p.message for p in problems)


def test_entities_carry_only_the_attributes_policies_read(tmp_path: Path) -> None:
    """Unread facts are left out of the entities Cedar parses; a rule that reads one
    (here ``resource.category`` and a ``has`` test) brings it back."""
    default = load_policy_dir()
    assert default._attributes is not None
    assert {"state", "claim_amount", "timers"} <= default._attributes
    assert "category" not in default._attributes
    directory = copy_policy_dir(tmp_path)
    add_extra_rule(
        directory,
        'forbid (principal, action == Action::"comment", resource)\n'
        'when { resource.category == "counterfeit" && resource has priority };\n',
    )
    custom = load_policy_dir(directory)
    assert custom._attributes is not None and {"category", "priority"} <= custom._attributes
    counterfeit, quality = assigned(category="counterfeit"), assigned(category="product_quality")
    assert not custom.decide(actor=MEDIATOR, action="comment", case=counterfeit, now=NOW).allowed
    assert custom.decide(actor=MEDIATOR, action="comment", case=quality, now=NOW).allowed
    assert default.decide(actor=MEDIATOR, action="comment", case=counterfeit, now=NOW).allowed
