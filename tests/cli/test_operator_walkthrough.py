"""The walk-through of docs/operators.md, for real and with the CLI: a sales festival lengthens
the merchant's response window from 48 to 72 hours. The operator changes the desk directory,
sees the scenarios that pinned 48 hours fail, updates them and adds one for the festival,
checks the desk, reloads the running server (SIGHUP), sees new cases get 72 hours, and asks
what-if which recorded cases would have gone differently."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.auth import mint_token
from bench.cluster import stop_process
from cases.sweep import fire_due_timers
from cli import app
from cli import common as cli_common
from runtime.bootstrap import build_engine
from runtime.settings import Settings, get_settings
from sla.clock import ManualClock, SystemClock
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import new_case
from workflow.model import from_iso

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# What the operator edits in the desk directory (docs/operators.md shows the same changes).
WORKFLOW_CHANGE = ("    goal: 48h\n", "    goal: 72h\n")
SCENARIO_UPDATES = {
    "01_filing_and_assignment.yaml": [
        (
            "merchant_response: {status: running, due: 2026-03-04T10:30:00+08:00}",
            "merchant_response: {status: running, due: 2026-03-05T10:30:00+08:00}",
        ),
    ],
    "02_merchant_response.yaml": [
        ("warned at 36 hours, decided for the consumer at 48", "warned at 54 hours, decided for the consumer at 72"),
        ("after: 2159m", "after: 3239m"),
        ("at: 2026-03-04T10:00:00+08:00", "at: 2026-03-05T10:00:00+08:00"),
        (
            "fulfilment: {status: running, due: 2026-03-11T10:00:00+08:00}",
            "fulfilment: {status: running, due: 2026-03-12T10:00:00+08:00}",
        ),
        (
            "merchant_response: {status: running, due: 2026-03-05T10:00:00+08:00}",
            "merchant_response: {status: running, due: 2026-03-06T10:00:00+08:00}",
        ),
    ],
}
FESTIVAL_SCENARIO = """\
scenario: During the sales festival the merchant has 72 hours to respond
start: {at: 2026-11-11T00:30:00+08:00, claim: {amount: 59900, currency: CNY}}
steps:
  - as: mediator
    do: assign
    expect: {timers: {merchant_response: {status: running, due: 2026-11-14T00:30:00+08:00}}}
  - after: 48h
    expect: {state: assigned}
  - as: merchant
    do: respond
    data: {statement: Shipped late because of the festival volume; replacement on its way.}
    expect: {merchant_responded: true, timers: {merchant_response: met}}
"""


def invoke(*args: str, env: dict[str, str]) -> tuple[int, str]:
    # Settings are cached per process; each command here reads its own environment.
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, list(args), env={**env, "COLUMNS": "250"})
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(
    port: int, method: str, path: str, token: str, body: dict[str, Any] | None = None, if_match: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if if_match:
        headers["If-Match"] = if_match
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def response_window(port: int) -> timedelta:
    """File a case over HTTP, assign it, and return its merchant_response clock's length."""
    settings, now = Settings(), SystemClock().now()
    consumer = mint_token(settings, sub="c-walk", role="consumer", merchant_id=None, now=now, ttl=timedelta(hours=1))
    mediator = mint_token(settings, sub="med-walk", role="mediator", merchant_id=None, now=now, ttl=timedelta(hours=1))
    case = call(
        port,
        "POST",
        "/v1/cases",
        consumer,
        {
            "merchant_id": "m-1",
            "order_ref": "1111-0001",
            "category": "not_received",
            "subject": "双十一订单未发货",
            "description": "Paid on 11.11, nothing shipped.",
            "claim": {"amount": 59900, "currency": "CNY"},
        },
    )
    if case["state"] == "filed":
        # Outside the mediators' duty hours the router leaves it waiting: a mediator takes it.
        call(
            port,
            "POST",
            f"/v1/cases/{case['id']}/transitions",
            mediator,
            {"trigger": "assign"},
            if_match=f'"{case["version"]}"',
        )
    timers = call(port, "GET", f"/v1/cases/{case['id']}/timers", consumer)["data"]
    clock = next(t for t in timers if t["name"] == "merchant_response")
    return from_iso(clock["due_at"]) - from_iso(clock["started_at"])


def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def record_history(database_url: str, desk: Path) -> str:
    """Two cases decided under the 48-hour desk; returns the one the silent merchant lost at 48h."""
    service = build_engine(
        Settings(environment="test", database_url=database_url, config_dir=desk), clock=ManualClock(T0)
    ).cases
    clock = service.clock
    assert isinstance(clock, ManualClock)
    # The desk's mediators are on duty: the router assigns each complaint as it is filed.
    silent = service.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-silent"))
    answered = service.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-answered"))
    assert (silent.state, answered.state) == ("assigned", "assigned")
    clock.advance(timedelta(hours=30))
    service.execute(actor=MERCHANT, case_id=answered.id, name="respond", data={"statement": "Refund sent."})
    clock.advance(timedelta(hours=18))
    fire_due_timers(service, clock.now())
    assert service.get(actor=CONSUMER, case_id=silent.id).outcome == "for_consumer"
    service.db.dispose()
    return silent.id


def test_a_sales_festival_lengthens_the_response_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Wide consoles, whatever the environment the test runs in (tables are read back below).
    for console in (cli_common.out, cli_common.err):
        monkeypatch.setattr(console, "_width", 250)
    desk = tmp_path / "desk"
    database_url = f"sqlite:///{tmp_path / 'disputes.db'}"
    env = {"DISPUTES_DATABASE_URL": database_url}
    # The desk the operator runs: the packaged one written out, served from a directory.
    assert invoke("config", "init", str(desk), env=env)[0] == 0
    assert invoke("db", "upgrade", env=env)[0] == 0
    for mediator_id in (MEDIATOR.id, "med-walk"):  # only registered mediators may be assigned
        assert invoke("--config", str(desk), "mediators", "add", mediator_id, env=env)[0] == 0
    silent_case = record_history(database_url, desk)
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "--config", str(desk), "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, **env, "DISPUTES_RUN_TICKER": "false", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_until_serving(port, server)
        assert response_window(port) == timedelta(hours=48)

        # 1. Change the window in the desk's workflow.
        workflow = desk / "workflows" / "consumer_dispute.yaml"
        workflow.write_text(workflow.read_text(encoding="utf-8").replace(*WORKFLOW_CHANGE), encoding="utf-8")

        # 2. The scenarios that pinned 48 hours now fail, each with its first difference.
        code, output = invoke("scenario", "run", "--desk", str(desk), env=env)
        assert code == 1
        flat = re.sub(r"\s+", " ", output)
        assert "46 of 49 scenarios passed" in flat
        assert "expected timer merchant_response due 2026-03-04T10:30:00+08:00, got 2026-03-05T10:30:00+08:00" in flat

        # 3. Update them to the new window, add the festival's own scenario: all pass.
        for name, changes in SCENARIO_UPDATES.items():
            path = desk / "scenarios" / name
            text = path.read_text(encoding="utf-8")
            for old, new in changes:
                assert old in text, old
                text = text.replace(old, new)
            path.write_text(text, encoding="utf-8")
        (desk / "scenarios" / "festival.yaml").write_text(FESTIVAL_SCENARIO, encoding="utf-8")
        code, output = invoke("scenario", "run", "--desk", str(desk), env=env)
        assert code == 0, output
        assert "50 of 50 scenarios passed" in re.sub(r"\s+", " ", output)

        # 4. Check the whole desk, then reload the running server. A broken desk is refused
        #    before any signal is sent; the valid one is taken.
        assert invoke("config", "check", str(desk), env=env)[0] == 0
        calendars = desk / "calendars.yaml"
        good = calendars.read_text(encoding="utf-8")
        calendars.write_text(good.replace("Asia/Shanghai", "Asia/Atlantis"), encoding="utf-8")
        code, output = invoke("--config", str(desk), "config", "reload", "--pid", str(server.pid), env=env)
        assert code == 1 and "not reloaded" in re.sub(r"\s+", " ", output)
        calendars.write_text(good, encoding="utf-8")
        code, output = invoke("--config", str(desk), "config", "reload", "--pid", str(server.pid), env=env)
        assert code == 0 and f"sent SIGHUP to {server.pid}" in re.sub(r"\s+", " ", output)
        deadline = time.monotonic() + 30
        while response_window(port) != timedelta(hours=72):
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text(encoding="utf-8")
            time.sleep(0.2)

        # 5. What-if: the case the silent merchant lost at 48 hours would still have been open.
        served = {**env, "DISPUTES_CONFIG_DIR": str(desk)}
        code, output = invoke("audit", "what-if", "--desk", str(desk), env=served)
        assert code == 0, output
        assert re.search(r"\b1 of \d+ cases would go differently", re.sub(r"\s+", " ", output))
        code, output = invoke("audit", "what-if", "--desk", str(desk), "--case", silent_case, env=served)
        flat = re.sub(r"\s+", " ", output)
        assert "1 of 1 case would go differently" in flat
        assert "would not breach yet: due 2026-03-05T02:00:00.000000Z under the new rules" in flat
        assert "would not happen: its clock would not have run out" in flat
    finally:
        stop_process(server, timeout=20)
        log.close()
