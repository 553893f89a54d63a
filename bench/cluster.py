"""A deployment on this machine, as docs/deploy.md describes it: `disputes db upgrade`,
`disputes serve --workers N` (uvicorn's supervisor and N worker processes on one socket),
and separate ticker processes (`disputes worker`, or one-shot `disputes sla tick`).

Used by bench/load.py, bench/b12_outbox.py, tests/deploy/ and tests/outbox/. Every process is started with an explicit
environment (bench.server.child_env drops the caller's DISPUTES_* variables) and is
stopped by the context manager that started it; servers bind a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from alembic import command

from bench.common import REPO_ROOT, register_mediators
from bench.server import Client, child_env, engine_env, free_port, new_secret
from store.db import Database, make_engine
from store.schema import alembic_config

# Each process keeps few connections so that 4 workers and 2 tickers stay far below
# PostgreSQL's default max_connections (100) on a machine other tests share.
SMALL_POOL = {"DISPUTES_DB_POOL_SIZE": "4", "DISPUTES_DB_MAX_OVERFLOW": "4"}


def disputes_command(*args: str) -> list[str]:
    """The `disputes` CLI: the installed console script next to this interpreter if there is one."""
    script = Path(sys.executable).with_name("disputes")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from cli import app; app()", *args]


def deployment_env(database_url: str, *, secret: str | None = None, **extra: str) -> dict[str, str]:
    """Production settings for every process of one deployment (one secret, one signing key, one
    key file); API workers only serve, tickers are their own processes."""
    return {**engine_env(database_url, secret or new_secret()), **SMALL_POOL, **extra}


def prepare_database(env: Mapping[str, str]) -> None:
    """Migrate the deployment's database (`disputes db upgrade`) and register the mediators the
    lifecycles assign cases to (only registered mediators may be assigned)."""
    run_cli(env, "db", "upgrade")
    db = Database(env["DISPUTES_DATABASE_URL"])
    try:
        register_mediators(db)
    finally:
        db.dispose()


def stamp_head(database_url: str) -> None:
    """Mark a database made from the tables (``create_all``, as the harness and the tests make
    theirs) as at the migrations' head: a worker process refuses a database that is behind."""
    engine = make_engine(database_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.stamp(config, "head")
    finally:
        engine.dispose()


def start_dispatcher(database_url: str, log: Path, settings: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """`disputes worker --role dispatcher` on ``database_url`` in test mode, with ``settings``
    (DISPUTES_* variables) on top; its stderr goes to the end of ``log``. Stop it with
    :func:`stop_process` (or kill it: the outbox must survive that)."""
    env = child_env({"DISPUTES_DATABASE_URL": database_url, "DISPUTES_ENVIRONMENT": "test", **settings})
    with log.open("ab") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--role", "dispatcher"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one `disputes` command to completion; raise with its output if it fails."""
    done = subprocess.run(
        disputes_command(*args),
        cwd=REPO_ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"disputes {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}")
    return done


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Serve:
    """`disputes serve --workers N` running; ``worker_pids`` are its uvicorn workers."""

    port: int
    workers: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    killed: list[int] = field(default_factory=list)

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.process.pid]  # uvicorn serves in the process itself: no supervisor
        # uvicorn's supervisor starts its workers with multiprocessing's spawn method;
        # multiprocessing's resource tracker is a child too and is not a worker.
        return sorted(
            pid
            for pid in children(self.process.pid)
            if "multiprocessing" in (line := _cmdline(pid)) and "resource_tracker" not in line
        )

    def wait_workers(self, count: int | None = None, timeout: float = 120) -> list[int]:
        """Wait until ``count`` (default: all) workers run and the server answers /healthz."""
        count = self.workers if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"disputes serve exited {self.process.returncode}: {self.output()[-3000:]}")
            pids = self.worker_pids()
            # Each worker (the first ones and every replacement) says so once it serves.
            started = self.output().count("Application startup complete.")
            if len(pids) >= count and started >= count + len(self.killed) and self._healthy():
                return pids
            time.sleep(0.2)
        raise RuntimeError(f"{count} workers not serving within {timeout:.0f} s: {self.output()[-3000:]}")

    def _healthy(self) -> bool:
        try:
            with Client(self.port, timeout=5) as client:
                return client.get("/healthz")[0] == 200
        except OSError:
            return False

    def kill_worker(self, pid: int | None = None) -> int:
        """SIGKILL one worker (the first, or ``pid``): no cleanup, no rollback by the process
        itself; PostgreSQL aborts whatever transaction its connections had open."""
        victim = pid if pid is not None else self.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        self.killed.append(victim)
        return victim

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def serve(env: Mapping[str, str], workers: int, *, timeout: float = 180) -> Iterator[Serve]:
    """`disputes serve --workers N` on a free loopback port, stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            disputes_command(
                "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"
            ),
            cwd=REPO_ROOT,
            env=child_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Serve(port, workers, process, log)
        try:
            server.wait_workers(timeout=timeout)
            yield server
        finally:
            stop_process(process)


@dataclass
class Ticker:
    """A `disputes worker` process: the SLA ticker (and checkpoint writer) alone."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]
    final_output: str = ""  # everything it printed, once stopped

    def output(self) -> str:
        if self.log.closed:
            return self.final_output
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def ticker(env: Mapping[str, str]) -> Iterator[Ticker]:
    """`disputes worker` until the block ends (SIGTERM: it finishes its sweep and says how many)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            disputes_command("worker"), cwd=REPO_ROOT, env=child_env(env), stdout=log, stderr=subprocess.STDOUT
        )
        running = Ticker(process, log)
        try:
            yield running
        finally:
            stop_process(process)
            running.final_output = running.output()


def start_sla_tick(env: Mapping[str, str], now: datetime) -> subprocess.Popen[str]:
    """One sweep as of ``now`` in its own process (`disputes sla tick --now`); read its
    count with :func:`sla_tick_result`."""
    return subprocess.Popen(
        disputes_command("sla", "tick", "--now", now.isoformat()),
        cwd=REPO_ROOT,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sla_tick_result(process: subprocess.Popen[str], timeout: float = 300) -> int:
    """How many timer effects the sweep applied (its printed count)."""
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"disputes sla tick exited {process.returncode}: {err[-3000:]}")
    return int(out.split()[0])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
