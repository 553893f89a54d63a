"""GET /v1/cases and GET /v1/queue show what the desk's view policies show: no more, no less.

The desk is the default one with some of the rules an operator might add (stricter: forbid
views; looser: permit more), on both databases, over generated cases and every kind of
caller. Each list is walked page by page through its cursors and compared with Cedar's
answer to ``view`` on every case in the database. Rules the list condition translates
exactly and rules it does not (claim amounts: lists then decide row by row) are both among
them. ``tests/policies/test_visibility.py`` checks the derivation itself on generated rules.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

import cases.queries
from cases.queries import decode_cursor, load_snapshot
from cases.service import CaseService
from policies.cedar import DEFAULT_POLICY_DIR, CedarAuthorizer, load_policy_dir
from store.db import Database
from store.tables import CASES, EVENTS, MESSAGES, TIMERS
from tests.support.api import Api
from tests.support.builders import new_case
from workflow.model import SYSTEM, Actor, CaseSnapshot

# Rules an operator might add to the default desk: (file, rule).
STRICTER = {
    "merchants-do-not-see-counterfeit-claims": (
        'forbid (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "merchant" && resource.category == "counterfeit" };'
    ),
    "mediators-do-not-see-closed-cases": (
        'forbid (principal, action in Action::"read", resource is Case)\n'
        'when { ["mediator", "senior_mediator"].contains(principal.role) && resource.state == "closed" };'
    ),
    "auditors-see-closed-cases-only": (
        'forbid (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "auditor" } unless { resource.state == "closed" };'
    ),
    "mediators-do-not-see-large-claims": (  # not translated: lists decide row by row
        'forbid (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "mediator" && resource.claim_amount > 50000 };'
    ),
}
LOOSER = {
    "mediators-read-every-case": (
        'permit (principal, action == Action::"view", resource is Case)\n'
        'when { ["mediator", "senior_mediator"].contains(principal.role) };'
    ),
    "consumers-see-closed-counterfeit-cases": (
        'permit (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "consumer" && resource.state == "closed" && resource.category == "counterfeit" };'
    ),
    "seniors-see-urgent-cases": (
        'permit (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "senior_mediator" &&\n'
        '       (resource.state == "escalated" || resource.priority == "high") };'
    ),
    "merchants-see-small-claims": (  # not translated: lists decide row by row
        'permit (principal, action == Action::"view", resource is Case)\n'
        'when { principal.role == "merchant" && resource.claim_amount < 10000 };'
    ),
}
RULES = {**STRICTER, **LOOSER}
ACTORS = [
    Actor("c-1", "consumer"),
    Actor("c-2", "consumer"),
    Actor("mu-1", "merchant", merchant_id="m-1"),
    Actor("mu-2", "merchant", merchant_id="m-2"),
    Actor("med-1", "mediator"),
    Actor("med-2", "mediator"),
    Actor("sen-1", "senior_mediator"),
    Actor("aud-1", "auditor"),
    Actor("adm-1", "admin"),
]
PATHS = ["filed", "assigned:med-1", "assigned:med-2", "escalated", "assigned-escalated:med-1", "closed"]
_desks: dict[frozenset[str], CedarAuthorizer] = {}
_workdir = Path(tempfile.mkdtemp(prefix="list-visibility-"))


def desk(rules: frozenset[str]) -> CedarAuthorizer:
    """The default policies plus ``rules`` (loaded once per combination)."""
    if rules not in _desks:
        directory = _workdir / "-".join(sorted(rules) or ["default"])
        if not directory.exists():
            shutil.copytree(DEFAULT_POLICY_DIR, directory)
            text = "".join(f'@id("{name}")\n@reason("{name}")\n{RULES[name]}\n\n' for name in sorted(rules))
            (directory / "operator.cedar").write_text(text, encoding="utf-8")
        _desks[rules] = load_policy_dir(directory)
    return _desks[rules]


def build(service: CaseService, spec: tuple[int, int, str, int, str, str]) -> None:
    """File a case and move it along ``path`` under the default policies."""
    consumer, merchant, category, amount, priority, path = spec
    filer = Actor(f"c-{consumer}", "consumer")
    filed = service.file(
        actor=filer,
        new_case=new_case(
            consumer_id=filer.id, merchant_id=f"m-{merchant}", category=category, claim_amount=amount, priority=priority
        ),
    )
    kind, _, mediator = path.partition(":")
    if kind.startswith("assigned"):
        service.execute(actor=Actor(mediator, "mediator"), case_id=filed.id, name="assign")
    if kind.endswith("escalated"):
        service.execute(actor=SYSTEM, case_id=filed.id, name="escalate", reason="generated")
    if kind == "closed":
        service.execute(actor=filer, case_id=filed.id, name="withdraw", reason="generated")


def clear(db: Database) -> None:
    """Remove every case (the tables filing, assigning, escalating and withdrawing write)."""
    with db.write() as session:
        for table in (EVENTS, MESSAGES, TIMERS, CASES):
            session.execute(delete(table))


def everything(service: CaseService) -> list[tuple[int, CaseSnapshot]]:
    """Every case with its pk, newest first, read straight from the database and revealed."""
    with service.db.read() as session:
        ids = session.execute(select(CASES.c.pk, CASES.c.id).order_by(CASES.c.pk.desc())).all()
        # As a reader sees them: the consumer by their user id (the log holds pseudonyms).
        return service.reveal([(pk, load_snapshot(session, case_id)) for pk, case_id in ids], session=session)


def walk(api: Api, path: str, headers: dict[str, str], limit: int) -> Iterator[dict[str, Any]]:
    """Every page of a list, following ``next_cursor``; a page announcing a next one is full."""
    params: dict[str, Any] = {"limit": limit}
    for _ in range(200):
        response = api.client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        if page["next_cursor"] is None:
            return
        assert len(page["data"]) == limit, ("a short page before the end", path, page)
        params = {"limit": limit, "cursor": page["next_cursor"]}
    pytest.fail(f"{path}: no end after 200 pages")


def queue_key(case: CaseSnapshot) -> tuple[str, str] | None:
    running = [t.due_at for t in case.timers if t.status == "running"]
    return (min(running), case.id) if running and case.closed_at is None else None


specs = st.tuples(
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["product_quality", "counterfeit"]),
    st.sampled_from([5000, 80000]),
    st.sampled_from(["normal", "high"]),
    st.sampled_from(PATHS),
)


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory({"rate_limit_per_minute": 10**6})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rules=st.frozensets(st.sampled_from(sorted(RULES)), max_size=3),
    built=st.lists(specs, min_size=1, max_size=7),
    limit=st.sampled_from([1, 2, 50]),
)
def test_lists_show_exactly_what_the_view_policies_show(
    api: Api, rules: frozenset[str], built: list[tuple[int, int, str, int, str, str]], limit: int
) -> None:
    service = api.service
    default = service.authorizer
    clear(service.db)
    for spec in built:
        build(service, spec)
    service.authorizer = desk(rules)  # the operator's rules take over (as a reload would)
    try:
        stored = everything(service)
        now = service.clock.now()
        for actor in ACTORS:
            viewable = [
                c for _, c in stored if service.authorizer.decide(actor=actor, action="view", case=c, now=now).allowed
            ]
            headers = api.token(actor.id, actor.role, actor.merchant_id)
            listed = [c["id"] for page in walk(api, "/v1/cases", headers, limit) for c in page["data"]]
            assert listed == [c.id for c in viewable], (actor, sorted(rules))
            queued = [i["case"]["id"] for page in walk(api, "/v1/queue", headers, limit) for i in page["data"]]
            can_act = [
                c
                for c in viewable
                if queue_key(c) is not None
                and (
                    actor.role not in ("mediator", "senior_mediator")
                    or c.mediator_id in (None, actor.id)
                    # a senior mediator's queue also holds the escalations awaiting a ruling
                    or (actor.role == "senior_mediator" and c.state == "escalated")
                )
            ]
            assert queued == [c.id for c in sorted(can_act, key=queue_key)], (actor, sorted(rules))  # type: ignore[arg-type]
    finally:
        service.authorizer = default


def test_a_page_examines_a_bounded_number_of_rows(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule the list condition does not translate hides most rows from a merchant of another
    firm: each page reads and decides at most MAX_EXAMINED rows, and answers short pages with
    a cursor until the table is walked; together they hold exactly the visible cases."""
    service = api.service
    for number in range(12):
        build(service, (1, 1, "product_quality", 5000 if number in (3, 8) else 80000, "normal", "filed"))
    service.authorizer = desk(frozenset({"merchants-see-small-claims"}))
    other = Actor("mu-3", "merchant", merchant_id="m-3")  # owns no case; sees the two small claims
    assert not service.authorizer.visibility(actor=other).decided
    batches: list[int] = []
    decide_each = service.authorizer.decide_each

    def counted(**kwargs: Any) -> Any:
        batches.append(len(kwargs["cases"]))
        return decide_each(**kwargs)

    monkeypatch.setattr(service.authorizer, "decide_each", counted)
    monkeypatch.setattr(cases.queries, "MAX_EXAMINED", 4)
    pages, before = [], None
    while True:
        batches.clear()
        page = service.list_cases(actor=other, limit=5, before=before)
        assert sum(batches) <= 4, batches
        pages.append([c.id for c in page.data])
        if page.next_cursor is None:
            break
        before = decode_cursor(page.next_cursor)
    small = [c.id for _, c in everything(service) if c.claim_amount == 5000]
    assert [i for p in pages for i in p] == small, pages
    # 12 rows, 4 a page: three pages of rows (the small claims are the 4th and 9th newest), then
    # an empty one that finds the end; a page of hidden rows only is empty and goes on.
    assert [len(p) for p in pages] == [1, 0, 1, 0], pages
