"""A uvicorn server in a subprocess (the real thing: its own interpreter and memory), a
blocking keep-alive HTTP client for sequential requests, and the load generator's launcher."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api.auth import mint_token
from bench.common import BENCH_KEYS, REPO_ROOT
from privacy.keys import write_key_file
from runtime.settings import Settings
from workflow.model import Actor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: ours, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra)
    return env


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM ... of the server process, in KiB."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if key.startswith("Vm") and parts and parts[-1] == "kB":
                values[key] = int(parts[0])
        return values


KEEP_ALIVE_SECONDS = 120  # longer than any benchmark run; the same for the engine and the bare app


@contextlib.contextmanager
def uvicorn_server(app: str, env: Mapping[str, str], *, ready_path: str = "/healthz") -> Iterator[Server]:
    """``uvicorn --factory app`` on a free loopback port; one process, no access log."""
    port = free_port()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                # The open-loop load generator may leave a connection idle for seconds between
                # Poisson arrivals; at uvicorn's default (5 s) the server closed some just as a
                # request went out on them, and those counted as failures of the server.
                "--timeout-keep-alive",
                str(KEEP_ALIVE_SECONDS),
            ],
            cwd=REPO_ROOT,
            env=child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        server = Server(port, process)
        try:
            _wait_ready(server, ready_path, errors)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(server: Server, path: str, errors: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"server exited: {errors.read().decode(errors='replace')[-2000:]}")
        try:
            with Client(server.port, timeout=2) as client:
                if client.get(path)[0] == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready within 60 s")


class Client:
    """Sequential requests on one keep-alive connection."""

    def __init__(self, port: int, timeout: float = 120) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None, if_match: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "application/json"}
        data = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, token=token)


# --- identities -------------------------------------------------------------------------------


def engine_env(database_url: str, secret: str) -> dict[str, str]:
    """Settings of the engine server: production mode (a secret, a checkpoint signing key, a key
    file for personal data written to a fresh private folder), no ticker, no rate limit in the way.
    The key file holds the harness's own keys (``BENCH_KEYS``), so a server opens the personal
    data of the databases the harness built in-process (the scale databases, the histories)."""
    key_file = Path(tempfile.mkdtemp(prefix="disputes-keys-")) / "keys.json"
    write_key_file(key_file, BENCH_KEYS)
    return {
        "DISPUTES_DATABASE_URL": database_url,
        "DISPUTES_RUN_TICKER": "false",
        "DISPUTES_ENVIRONMENT": "production",
        "DISPUTES_JWT_SECRET": secret,
        "DISPUTES_AUDIT_SIGNING_KEY": secrets.token_hex(32),  # an Ed25519 seed (checkpoints)
        "DISPUTES_KEY_FILE": str(key_file),
        "DISPUTES_RATE_LIMIT_PER_MINUTE": str(10**9),
    }


def new_secret() -> str:
    return secrets.token_urlsafe(36)


def token_for(secret: str, actor: Actor) -> str:
    settings = Settings(environment="test", jwt_secret=secret)  # only the secret matters for minting
    return mint_token(
        settings,
        sub=actor.id,
        role=actor.role,
        merchant_id=actor.merchant_id,
        now=datetime.now(UTC),
        ttl=timedelta(days=2),
    )


# --- the load generator (bench/loadgen.py) in its own process ----------------------------------


def run_loadgen(phases: list[dict[str, Any]], timeout: float = 900) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(phases).encode(),
        capture_output=True,
        cwd=REPO_ROOT,
        env=child_env({}),
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-2000:]}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@contextlib.contextmanager
def loadgen_in_background(phases: list[dict[str, Any]], timeout: float = 900) -> Iterator[list[dict[str, Any]]]:
    """The load generator running ``phases`` in its own process while the block runs (say,
    a flood beside a measurement); its results fill the yielded list when the block ends."""
    with tempfile.TemporaryFile() as given:
        given.write(json.dumps(phases).encode())
        given.seek(0)
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            stdin=given,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=child_env({}),
        )
    results: list[dict[str, Any]] = []
    try:
        yield results
    finally:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
    results.extend(json.loads(out))
