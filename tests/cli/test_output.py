"""The command line shows stored text and never obeys it: no terminal control sequence, bidi
control or rich markup from a case, a mediator or a finding reaches the operator's terminal.

The text is written straight into the log and the tables (as data stored before the input
checks, or by someone with database access, would be), bypassing every check of
workflow/text.py; then `replay`, `mediators list`, `report satisfaction` and `audit verify`
print it. Run to a non-tty (CliRunner), rich adds no styling of its own, so the output may hold
no control character at all but newlines and tabs.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, update
from typer.testing import CliRunner

from cases.commands import UnitOfWork
from cases.service import CaseService
from cli import app
from cli import common as cli_common
from cli.terminal import escape_controls, plain, shown
from runtime.bootstrap import build_engine
from runtime.settings import Settings, get_settings
from sla.clock import ManualClock
from store.tables import CASES, MEDIATORS
from tests.support.actors import T0
from workflow.events import Event
from workflow.model import Actor

runner = CliRunner()
JOINERS = {"\u200c", "\u200d"}

# Anything a database can hold (SQLite and PostgreSQL store no unpaired surrogates, and
# PostgreSQL no NUL), with the dangerous characters and markup made likely.
HOSTILE = st.sampled_from(
    [
        "\x1b[2J",
        "\x1b]8;;http://evil\x07",
        "\x1b]0;title\x07",
        "\r",
        "\x08",
        "\x07",
        "\x9b31m",
        "\x85",
        "\u202e",
        "\u2066",
        "\u200b",
        "\u200f",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\t",
        "\n",
        "[red]",
        "[/red]",
        "[link=http://evil]",
        "[bold blink]",
        ":warning:",
        "\\",
        "[",
        "]",
    ]
)
STORABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TEXT = st.lists(st.one_of(STORABLE, HOSTILE), min_size=1, max_size=25).map("".join)


def assert_inert(output: str) -> None:
    """No character that could drive a terminal or reorder what it shows."""
    for ch in output:
        category = unicodedata.category(ch)
        assert category != "Cc" or ch in "\n\t", f"raw control {ch!r} in the output"
        assert category != "Cf" or ch in JOINERS, f"raw format character {ch!r} in the output"
        assert category not in ("Zl", "Zp", "Cs"), f"raw {ch!r} in the output"


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that a value is never wrapped (the consoles fix their width at import)."""
    for console in (cli_common.out, cli_common.err):
        monkeypatch.setattr(console, "_width", 250)


@dataclass
class Desk:
    service: CaseService
    clock: ManualClock
    numbers: Iterator[int]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    path = tmp_path_factory.mktemp("cli-output") / "disputes.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISPUTES_DATABASE_URL", url)
        get_settings.cache_clear()
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        clock = ManualClock(T0)
        service = build_engine(Settings(environment="test", database_url=url, run_ticker=False), clock=clock).cases
        yield Desk(service, clock, itertools.count())
        service.db.dispose()
    get_settings.cache_clear()


def store_hostile_case(desk: Desk, texts: list[str]) -> str:
    """A case whose people, words, messages and ratings are ``texts``, written as a forger
    would: events sealed and folded, but never decided (no check of any kind)."""
    service, n = desk.service, next(desk.numbers)
    person, words, message, rating = (texts * 4)[:4]
    definition = service.registry.active()
    case_id = f"DSP-HOSTILE-{n}"
    consumer = Actor(f"c-{n}{person}", "consumer")
    filed = Event(
        "filed",
        {
            "workflow_name": definition.name,
            "state": definition.initial,
            "consumer_id": consumer.id,
            "merchant_id": f"m-{n}{words}",
            "category": "other",
            "subject": words,
            "description": message,
            "order_ref": person,
            "claim_amount": 100,
            "currency": "CNY",
            "desired_outcome": "refund",
            "priority": "normal",
        },
    )
    now = desk.clock.now()
    with service.db.write() as session:
        work = UnitOfWork(service, definition, None, case_id, now)
        work.add([filed], consumer)
        work.add(
            [Event("message", {"message_id": f"msg{n}", "body": message, "internal": False, "party": "consumer"})],
            consumer,
        )
        work.add([Event("rated", {"party": "consumer", "score": 4, "comment": f"{rating} ok"})], consumer)
        work.write(session)
        session.execute(
            insert(MEDIATORS).values(
                id=f"med-{n}{person}",
                display_name=rating or "-",
                categories="*",
                languages="*",
                capacity=1,
                calendar="default",
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
    return case_id


def tamper(desk: Desk, case_id: str, merchant_id: str) -> None:
    """Change the case row's merchant column behind the log's back (audit verify reports it)."""
    with desk.service.db.write() as session:
        session.execute(update(CASES).where(CASES.c.id == case_id).values(merchant_id=merchant_id))


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_stored_text_reaches_the_terminal_inert(desk: Desk, texts: list[str]) -> None:
    case_id = store_hostile_case(desk, texts)
    since = (T0 - timedelta(days=1)).isoformat()
    until = (T0 + timedelta(days=1)).isoformat()
    outputs = [
        run("replay", case_id),
        run("mediators", "list"),
        run("report", "satisfaction", "--since", since, "--until", until),
    ]
    tamper(desk, case_id, f"\x1b[31m{texts[-1]}")  # never the stored "m-..."
    verify = run("audit", "verify", "--case", case_id)
    assert "DAMAGED" in verify and "merchant_id" in verify
    for output in (*outputs, verify):
        assert_inert(output)
    assert case_id in outputs[0]


def test_markup_and_escapes_print_as_written(desk: Desk) -> None:
    case_id = store_hostile_case(
        desk, ["[red]ALERT[/red]", "\x1b[2Jwiped", "[link=http://evil]click[/link]", "\u202eevil"]
    )
    replay = run("replay", case_id)
    assert "[red]ALERT[/red]" in replay  # shown as text, not turned red and swallowed
    assert "\\x1b[2Jwiped" in replay  # the escape is visible, the sequence inert
    assert "[link=http://evil]click[/link]" in replay
    listed = run("mediators", "list")
    assert "\\u202eevil" in listed
    assert_inert(replay + listed)


@given(st.lists(st.one_of(st.characters(), HOSTILE)).map("".join))
def test_the_escapes_leave_nothing_a_terminal_obeys(text: str) -> None:
    for inline in (escape_controls(text), shown(text)):
        assert_inert(inline)
        assert "\n" not in inline and "\t" not in inline  # one line: no forged line of output
    assert_inert(plain(text).plain)  # a table cell keeps its newlines and tabs
    if text.isprintable():
        assert escape_controls(text) == text  # printable text is left exactly as it was


def test_command_line_identifiers_follow_the_one_rule(desk: Desk) -> None:
    refused = runner.invoke(app, ["replay", "DSP-1\x1b[2J"])
    assert refused.exit_code == 2 and "identifier" in refused.output
    assert_inert(refused.output)
    added = runner.invoke(app, ["mediators", "add", "ｍｅｄ－ｗｉｄｅ"], env={"COLUMNS": "250"})
    assert added.exit_code == 0, added.output
    assert re.search(r"^med-wide: ", added.output, re.MULTILINE)
    assert runner.invoke(app, ["mediators", "add", "med\u200bhidden"]).exit_code == 2
    missing = runner.invoke(app, ["replay", "DSP-NOT-THERE"])
    assert missing.exit_code == 2 and "not found" in missing.output  # one line, the code of every refusal
