"""Kill -9 under load: a real server process dies right after committing a command, again and
again, while clients file cases with Idempotency-Keys; they retry every key that got no
answer on the next server. Afterwards every key filed exactly one case and every answer
for a key is the first one. Both databases."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from api.auth import mint_token
from cases.personal import PersonalData
from runtime.settings import Settings, key_provider
from store.db import Database
from store.tables import EVENTS
from tests.api.crash_server import KILL_AFTER
from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[2]
IDEMPOTENCY_KEYS = 24
CRASHES = 3
CLIENTS = 4


@contextmanager
def server(database_url: str, log: Path, kill_after: int = 0) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_DATABASE_URL=database_url,
        DISPUTES_RUN_TICKER="false",
        DISPUTES_ENVIRONMENT="test",
        DISPUTES_RATE_LIMIT_PER_MINUTE="1000000",
        # A retry of a key whose first request died must not wait on it.
        DISPUTES_IDEMPOTENCY_WAIT_SECONDS="1",
        PYTHONPATH=str(ROOT),
    )
    if kill_after:
        env[KILL_AFTER] = str(kill_after)
    with log.open("ab") as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.api.crash_server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        _wait_ready(port, process, log)
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def file(port: int, token: str, key: str) -> tuple[int, bytes, bool] | None:
    """POST the filing of ``key``; its (status, body, replayed), or None if the server died under it."""
    body = {
        "merchant_id": "m-1",
        "order_ref": key,
        "category": "not_received",
        "subject": "没收到货",
        "description": "物流一直没有更新。",
        "claim": {"amount": 9900, "currency": "CNY"},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/cases",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("idempotent-replayed") == "true"
    except urllib.error.HTTPError as error:
        return error.code, error.read(), False
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def send_all(port: int, token: str, keys: list[str], answers: dict[str, list[tuple[int, bytes, bool]]]) -> None:
    """Each client sends its share of ``keys`` in turn until the server dies under one of them."""
    lock = threading.Lock()

    def client(share: list[str]) -> None:
        for key in share:
            answer = file(port, token, key)
            if answer is None:
                return  # the server is gone; this key and the rest wait for the next one
            with lock:
                answers.setdefault(key, []).append(answer)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(client, [keys[i::CLIENTS] for i in range(CLIENTS)]))


def test_kill_9_after_commits_never_files_a_key_twice(db_url: str, tmp_path: Path) -> None:
    token = mint_token(Settings(), sub="c-kill", role="consumer", now=datetime.now(UTC), ttl=timedelta(hours=1))
    keys = [f"kill-{i:02d}" for i in range(IDEMPOTENCY_KEYS)]
    answers: dict[str, list[tuple[int, bytes, bool]]] = {}
    log = tmp_path / "server.log"
    rng = random.Random(16)
    for _ in range(CRASHES):
        waiting = [k for k in keys if k not in answers]
        with server(db_url, log, kill_after=rng.randint(1, 4)) as (port, process):
            send_all(port, token, waiting, answers)
            assert process.wait(timeout=30) == -signal.SIGKILL, "the server was to die after a commit"
    # Every key again, twice, on a server that stays up: the ones that got no answer are
    # answered now (once), the others are replayed.
    with server(db_url, log) as (port, _):
        for _ in range(2):
            send_all(port, token, keys, answers)

    for key in keys:
        statuses = {status for status, _, _ in answers[key]}
        assert statuses == {201}, (key, answers[key])
        assert len({body for _, body, _ in answers[key]}) == 1, f"{key} was answered differently: {answers[key]}"
    # Each server died right after committing a filing it never answered: that key's first
    # answer is the stored one, replayed by the next server.
    assert sum(answers[key][0][2] for key in keys) >= CRASHES
    database = Database(db_url)
    # The log holds a marker for each order reference: resolved with the server's keys.
    personal = PersonalData(key_provider(Settings(database_url=db_url, environment="test")))
    try:
        with database.read() as session:
            bodies = session.execute(select(EVENTS.c.body).where(EVENTS.c.type == "filed")).scalars().all()
            markers = [json.loads(body)["data"]["order_ref"] for body in bodies]
            refs = personal.resolve(session, markers)
        filed = len(bodies)
        per_key = {key: sum(refs[m] == key for m in markers) for key in keys}
    finally:
        database.dispose()
    assert per_key == dict.fromkeys(keys, 1) and filed == IDEMPOTENCY_KEYS, per_key
    ids = {json.loads(answers[key][0][1])["id"] for key in keys}
    assert len(ids) == IDEMPOTENCY_KEYS
