"""A served process takes its start-up heap out of the cyclic collector's walk
(api.app._freeze_startup_heap); apps built in tests do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import gc
from fastapi.testclient import TestClient
from {module} import create_app
with TestClient(create_app()) as client:
    assert client.get("/healthz").status_code == 200
    print(gc.get_freeze_count())
"""


def frozen_objects(module: str, tmp_path: Path) -> int:
    env = {**os.environ, "DISPUTES_DATABASE_URL": f"sqlite:///{tmp_path / 'heap.db'}", "DISPUTES_RUN_TICKER": "false"}
    subprocess.run(
        [sys.executable, "-m", "cli", "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout)


def test_the_served_app_freezes_its_start_up_heap(tmp_path: Path) -> None:
    frozen = frozen_objects("api.main", tmp_path)
    # The app, the policies, the desk, SQLAlchemy and the modules: far more than any
    # request leaves behind.
    assert frozen > 50_000


def test_an_app_built_in_process_leaves_the_heap_alone(tmp_path: Path) -> None:
    frozen = frozen_objects("api.app", tmp_path)
    assert frozen == 0
