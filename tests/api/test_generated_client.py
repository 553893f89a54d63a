"""A client generated from the app's document with openapi-python-client, used against a
real server: it files a case, moves it, and reads a refusal as the one shared Problem."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_token
from runtime.settings import Settings
from sla.clock import SystemClock
from tests.support.live import free_port

BIN = Path(sys.executable).parent
PACKAGE = "dispute_engine_client"
# The export streams JSON Lines, a media type the generator does not read: say how to treat it.
GENERATOR_CONFIG = {"content_type_overrides": {"application/x-ndjson": "application/octet-stream"}}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported (generated once: the document does not depend on the database)."""
    root = tmp_path_factory.mktemp("client")
    url = f"sqlite:///{root / 'unused.db'}"
    document = TestClient(create_app(Settings(environment="test", database_url=url))).get("/openapi.json").json()
    (root / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    (root / "config.json").write_text(json.dumps(GENERATOR_CONFIG), encoding="utf-8")
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--config",
            str(root / "config.json"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},  # its ruff post-hooks
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """The API in its own uvicorn process, as deployed (api.main), on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "DISPUTES_DATABASE_URL": db_url,
        "DISPUTES_ENVIRONMENT": "test",
        "DISPUTES_RUN_TICKER": "false",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client(package: ModuleType, base: str, sub: str, role: str, merchant_id: str | None = None) -> Any:
    token = mint_token(
        Settings(environment="test"),
        sub=sub,
        role=role,
        merchant_id=merchant_id,
        now=SystemClock().now(),
        ttl=timedelta(hours=1),
    )
    # Any status the document does not declare raises: the document must be complete.
    return package.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)


def test_a_generated_client_files_and_moves_a_case(generated: ModuleType, server: str) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    cases = f"{PACKAGE}.api.cases"
    cases_file, cases_get, cases_transition = (
        importlib.import_module(f"{cases}.{name}") for name in ("cases_file", "cases_get", "cases_transition")
    )
    with ExitStack() as clients:
        consumer = clients.enter_context(_client(generated, server, "c-1", "consumer"))
        mediator = clients.enter_context(_client(generated, server, "med-1", "mediator"))

        complaint = models.CaseCreate(
            merchant_id="m-1",
            subject="耳机是假货",
            description="序列号查不到。",
            order_ref="TB-42",
            claim=models.Money(amount=89900, currency="CNY"),
            category="counterfeit",  # a category is the desk's: the schema types it as an id (text)
        )
        filed = cases_file.sync_detailed(client=consumer, body=complaint, idempotency_key="file-TB-42")
        assert filed.status_code == 201 and isinstance(filed.parsed, models.CasePublic)
        case = filed.parsed
        assert case.state == "filed" and filed.headers["ETag"] == f'"{case.version}"'
        assert filed.headers["Location"] == f"/v1/cases/{case.id}"
        again = cases_file.sync_detailed(client=consumer, body=complaint, idempotency_key="file-TB-42")
        assert again.parsed.id == case.id and again.headers["Idempotent-Replayed"] == "true"

        # Only registered mediators may be assigned; registered after the filing, so that the
        # router leaves the case in the pool for the manual assignment below.
        admin = clients.enter_context(_client(generated, server, "admin-1", "admin"))
        mediators_add = importlib.import_module(f"{PACKAGE}.api.configuration.mediators_add")
        registered = mediators_add.sync_detailed(
            client=admin,
            body=models.MediatorCreate(
                id="med-1",
                display_name="Li",
                capacity=5,
                categories=["*"],
                languages=[models.MediatorCreateLanguagesItem("*")],
            ),
        )
        assert registered.status_code == 201, registered.content

        assign = models.TransitionRequest(trigger="assign")
        stale = cases_transition.sync_detailed(case.id, client=mediator, body=assign, if_match=f'"{case.version - 1}"')
        assert stale.status_code == 412
        problem = stale.parsed
        assert type(problem) is models.Problem  # the one shared class, not one per operation and status
        assert problem.type_.endswith(":stale-version") and problem.status == 412
        assert problem.current_version == case.version and stale.headers["ETag"] == f'"{case.version}"'

        moved = cases_transition.sync_detailed(case.id, client=mediator, body=assign, if_match=filed.headers["ETag"])
        assert moved.status_code == 200, moved.content
        assert moved.parsed.state == "assigned" and moved.parsed.mediator_id == "med-1"
        read = cases_get.sync(case.id, client=consumer)
        assert isinstance(read, models.CasePublic) and read.version == moved.parsed.version

        unknown = cases_get.sync_detailed("DSP-NOPE", client=consumer)
        assert unknown.status_code == 404 and type(unknown.parsed) is models.Problem
    # No per-operation error models at all (such as TransitionV1CasesCaseIdTransitionsPostResponse412).
    assert [name for name in dir(models) if "Response4" in name or "Response5" in name] == []
