"""A served engine that kills its own process with SIGKILL right after its N-th committed
command: the window between a command's commit and its answer, where nothing of the
process survives (no exception handler, no clean-up, the client sees the connection drop).

    DISPUTES_TEST_KILL_AFTER_COMMANDS=3 uvicorn --factory tests.api.crash_server:create_app

A command is a write transaction that appended events or registered a mediator (reads,
and the start-up's own writes, do not count). Without the variable it serves normally.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.app import create_app as build_app
from runtime.bootstrap import build_engine
from runtime.settings import Settings

KILL_AFTER = "DISPUTES_TEST_KILL_AFTER_COMMANDS"
_COMMAND_TABLES = ("INSERT INTO events", "INSERT INTO mediators")


def create_app() -> FastAPI:
    settings = Settings()
    engine = build_engine(settings)
    kill_after = int(os.environ.get(KILL_AFTER, "0"))
    if kill_after > 0:
        _die_after(engine.db.engine, kill_after)
    return build_app(engine=engine)


def _die_after(engine: Any, commands: int) -> None:
    lock = threading.Lock()
    committed = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _mark(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith(_COMMAND_TABLES):
            conn.info["command"] = True

    @event.listens_for(engine, "commit")
    def _count(conn: Any) -> None:
        if conn.info.pop("command", False):
            session_state.dying = _next(lock, committed) >= commands

    @event.listens_for(engine, "rollback")
    def _forget(conn: Any) -> None:
        conn.info.pop("command", None)

    @event.listens_for(Session, "after_commit")
    def _die(session: Session) -> None:
        if getattr(session_state, "dying", False) and not session.in_nested_transaction():
            os.kill(os.getpid(), signal.SIGKILL)


def _next(lock: threading.Lock, committed: list[int]) -> int:
    with lock:
        committed[0] += 1
        return committed[0]


session_state = threading.local()
