"""The list condition derived from a desk's view policies, against Cedar itself.

For generated view policies (permits and forbids over the caller, the case's columns and
facts the derivation does not translate, joined with ``&&``, ``||``, ``!`` and ``unless``),
generated cases and every kind of caller:

- every case Cedar lets the caller view meets the condition (lists miss nothing);
- where the derivation says ``decided``, the condition is Cedar's answer, case by case
  (lists then skip the per-row decision);
- ``decide_each`` answers as ``decide`` does, case by case;
- a list's equality filters folded into the condition (``restrict``) change nothing on
  the rows they select.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from policies.cedar import DEFAULT_POLICY_DIR, CedarAuthorizer, load_policy_dir
from policies.loader import PolicyLoadError
from policies.visibility import FALSE, TRUE, AllOf, AnyOf, Equals, Not, Present, holds, restrict
from tests.support.policy_factories import ALL_ACTORS, NOW, case
from workflow.model import Actor, CaseSnapshot, to_iso

STATES = ("filed", "assigned", "mediating", "settled", "escalated", "closed")
CATEGORIES = ("product_quality", "counterfeit", "not_received")
ACTORS = (*ALL_ACTORS, Actor("mu-9", "merchant"))  # a merchant user without a merchant id

# Parts of a view rule, each valid against the schema as it stands (optional attributes
# guarded, as Cedar's validator demands). Translated ones first, then facts the derivation
# does not translate (they make the condition wider and lists decide row by row).
TRANSLATED = [
    'principal.role == "{role}"',
    'principal.role != "{role}"',
    '["mediator", "senior_mediator"].contains(principal.role)',
    "principal has merchant",
    'principal == User::"{user}"',
    'principal in [User::"{user}", User::"c-2"]',
    'resource.state == "{state}"',
    'resource.state != "{state}"',
    '["{state}", "escalated"].contains(resource.state)',
    'resource.category == "{category}"',
    'resource.priority == "high"',
    'resource.currency == "CNY"',
    'resource.workflow == "consumer_dispute"',
    'resource.merchant == "m-2"',
    "resource has mediator",
    "resource.consumer == principal",
    "(resource has mediator && resource.mediator == principal)",
    '(resource has mediator && resource.mediator == User::"med-2")',
    "(principal has merchant && principal.merchant == resource.merchant)",
    'action == Action::"view"',
    'action in Action::"read"',
    'action in [Action::"export"]',
    "true",
]
UNTRANSLATED = [
    "resource.claim_amount > 50000",
    "context.now > resource.created_at + 86400",
    'resource.flags.contains("vip")',
    'resource.merchant like "m-1*"',
    "resource.merchant_responded",
    'if principal.role == "auditor" then resource.state == "closed" else true',
    'resource in Desk::"default"',
    'principal.role like "*mediator"',
]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        atom = draw(st.sampled_from(TRANSLATED) | st.sampled_from(UNTRANSLATED))
        return atom.format(
            role=draw(st.sampled_from(["consumer", "merchant", "mediator", "senior_mediator", "auditor", "admin"])),
            user=draw(st.sampled_from(["c-1", "med-1", "mu-1"])),
            state=draw(st.sampled_from(STATES)),
            category=draw(st.sampled_from(CATEGORIES)),
        )
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"!({draw(expressions(depth + 1))})"
    joiner = " && " if kind == "and" else " || "
    return f"({draw(expressions(depth + 1))}{joiner}{draw(expressions(depth + 1))})"


@st.composite
def view_policies(draw: st.DrawFn) -> str:
    effect = draw(st.sampled_from(["permit", "forbid"]))
    scope = draw(
        st.sampled_from(
            [
                'principal, action == Action::"view", resource',
                'principal, action in [Action::"view", Action::"export"], resource is Case',
                'principal, action in Action::"read", resource is Case',
                "principal, action, resource is Case",
                'principal == User::"med-1", action == Action::"view", resource',
                'principal is User, action == Action::"view", resource is Case',
            ]
        )
    )
    text = f'@id("generated-{draw(st.uuids()).hex[:12]}")\n@reason("generated")\n{effect} ({scope})\n'
    text += f"when {{ {draw(expressions())} }}"
    if draw(st.booleans()):
        text += f"\nunless {{ {draw(expressions())} }}"
    return text + ";\n"


@st.composite
def snapshots(draw: st.DrawFn, number: int) -> CaseSnapshot:
    state = draw(st.sampled_from(STATES))
    return case(
        id=f"DSP-{number}",
        state=state,
        category=draw(st.sampled_from(CATEGORIES)),
        priority=draw(st.sampled_from(["normal", "high"])),
        currency=draw(st.sampled_from(["CNY", "USD"])),
        consumer_id=draw(st.sampled_from(["c-1", "c-2"])),
        merchant_id=draw(st.sampled_from(["m-1", "m-2"])),
        mediator_id=None if state == "filed" else draw(st.none() | st.sampled_from(["med-1", "med-2", "sen-1"])),
        claim_amount=draw(st.integers(0, 100_000)),
        merchant_responded=draw(st.booleans()),
        flags=tuple(draw(st.lists(st.sampled_from(["vip"]), max_size=1))),
        closed_at=to_iso(NOW) if state == "closed" else None,
    )


def row(snapshot: CaseSnapshot) -> dict[str, str | None]:
    """The case's columns as the projection writes them."""
    return {
        "id": snapshot.id,
        "state": snapshot.state,
        "category": snapshot.category,
        "workflow_name": snapshot.workflow_name,
        "priority": snapshot.priority,
        "currency": snapshot.currency,
        "consumer_id": snapshot.consumer_id,
        "merchant_id": snapshot.merchant_id,
        "mediator_id": snapshot.mediator_id,
    }


_WORKDIR = Path(tempfile.mkdtemp(prefix="visibility-"))
_counter = itertools.count()


def desk(extra: list[str], keep_reads: bool) -> CedarAuthorizer | None:
    """The default policies with ``extra`` added (and, unless ``keep_reads``, without the
    default view permits); None if Cedar's validator refuses the generated rules."""
    directory = _WORKDIR / f"desk-{next(_counter)}"
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    if not keep_reads:
        reads = (directory / "reads.cedar").read_text(encoding="utf-8")
        # keep only filing, which every desk needs
        (directory / "reads.cedar").write_text(reads[reads.index('@id("consumer-files-own-case")') :], encoding="utf-8")
    (directory / "generated.cedar").write_text("\n".join(extra), encoding="utf-8")
    try:
        return load_policy_dir(directory)
    except PolicyLoadError:
        return None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    extra=st.lists(view_policies(), min_size=1, max_size=3),
    keep_reads=st.booleans(),
    cases=st.lists(st.integers(0, 10**6), min_size=1, max_size=12, unique=True).flatmap(
        lambda numbers: st.tuples(*(snapshots(n) for n in numbers))
    ),
)
def test_the_condition_holds_for_every_viewable_case_and_is_the_answer_when_decided(
    extra: list[str], keep_reads: bool, cases: tuple[CaseSnapshot, ...]
) -> None:
    authorizer = desk(extra, keep_reads)
    assume(authorizer is not None)
    assert authorizer is not None
    for actor in ACTORS:
        visibility = authorizer.visibility(actor=actor)
        batch = authorizer.decide_each(actor=actor, action="view", cases=list(cases), now=NOW)
        for snapshot, batched in zip(cases, batch, strict=True):
            allowed = authorizer.decide(actor=actor, action="view", case=snapshot, now=NOW).allowed
            assert batched.allowed == allowed, (actor, snapshot.id)
            selected = holds(visibility.condition, row(snapshot))
            context = (actor, snapshot, visibility, extra)
            assert selected or not allowed, ("a viewable case fails the condition", context)
            if visibility.decided:
                assert selected == allowed, ("decided, yet the condition differs from Cedar", context)
            event(f"decided={visibility.decided} trivial={visibility.condition in (TRUE, FALSE)} allowed={allowed}")
            for column in ("state", "category", "merchant_id", "consumer_id", "mediator_id"):
                value = row(snapshot)[column]
                if value is not None:
                    restricted = restrict(visibility.condition, {column: value})
                    assert holds(restricted, row(snapshot)) == selected, (column, context)


@pytest.mark.parametrize(
    "directory",
    [DEFAULT_POLICY_DIR, Path("examples/travel/policies"), Path("examples/chargeback/policies")],
    ids=["default", "travel", "chargeback"],
)
def test_the_shipped_desks_lists_need_no_per_row_decision(directory: Path) -> None:
    """Every shipped desk's view rules translate faithfully: lists cost no Cedar per row."""
    authorizer = load_policy_dir(Path(__file__).resolve().parents[2] / directory)
    for actor in ACTORS:
        assert authorizer.visibility(actor=actor).decided, actor


def test_the_default_desk_conditions_read_as_its_rules() -> None:
    authorizer = load_policy_dir()
    by_role = {actor.role: authorizer.visibility(actor=actor).condition for actor in ALL_ACTORS}
    assert by_role["consumer"] == Equals("consumer_id", frozenset({"c-2"}))  # OTHER_CONSUMER comes last
    assert by_role["auditor"] == TRUE and by_role["admin"] == FALSE and by_role["system"] == FALSE
    own = AllOf((Present("mediator_id"), Equals("mediator_id", frozenset({"med-2"}))))
    pool = AllOf((Equals("state", frozenset({"filed"})), Not(Present("mediator_id"))))
    assert by_role["mediator"] == AnyOf((own, pool))
    assert restrict(by_role["mediator"], {"state": "assigned"}) == own


def test_a_forbid_that_fails_for_a_caller_hides_everything_from_it(tmp_path: Path) -> None:
    """Cedar skips a forbid it cannot evaluate; the engine then refuses (fails closed), and
    the condition must not promise the case: it is not decided for that caller."""
    directory = tmp_path / "pol"
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    (directory / "generated.cedar").write_text(
        '@id("odd")\n@reason("odd")\nforbid (principal, action == Action::"view", resource)\n'
        'when { principal has merchant && principal.merchant == "m-9" };\n',
        encoding="utf-8",
    )
    authorizer = load_policy_dir(directory)
    merchant = Actor("mu-1", "merchant", merchant_id="m-1")
    visibility = authorizer.visibility(actor=merchant)
    assert visibility.decided and visibility.condition == Equals("merchant_id", frozenset({"m-1"}))
    flagged = authorizer.visibility(actor=Actor("mu-9", "merchant", merchant_id="m-9"))
    assert flagged.decided and flagged.condition == FALSE
