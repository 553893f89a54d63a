"""The README's tour works as written: its sh blocks, run literally in order in a fresh
directory, against a server started the way `make run` starts it.

What a reader substitutes, the test substitutes the same way: the tokens `make run`
printed (``CONSUMER=eyJ...   # the consumer token``), the case id of the filing's answer
(``CASE=DSP-...``), and, so that tests can run side by side, free ports for 8000 and 8001.
Every other character of every command is the README's. A curl command passes when its
answer is not a problem (``curl -s`` exits 0 on a 4xx); every other command when it exits 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import free_port

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
PROBLEM = "urn:dispute-engine:problem:"
ROLE_WORDS = re.compile(r"\b(consumer|merchant|mediator|senior_mediator|auditor|admin)\b")


def sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def make_run_recipe() -> list[str]:
    """The commands of the Makefile's `run` target, with its variables' defaults."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(\w+) \?= (.+)$", makefile, flags=re.MULTILINE))
    variables["BIN"] = ".venv/bin"  # $(VENV)/bin
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert recipe is not None, "the Makefile has no run target"
    return [
        re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], line.strip()) for line in recipe.group(1).splitlines()
    ]


def checkout_folders() -> list[str]:
    """The folders of the README's layout table (`workflow/`, `tools/`, ...)."""
    layout = README[README.index("## Layout") :]
    return sorted({name for name in re.findall(r"`(\w+)/`", layout) if (REPO / name).is_dir()})


def tokens_by_role(printed: str) -> dict[str, str]:
    """`disputes token --demo` prints `  <role> <sub> <token>` per demo identity."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+(\w+)\s+\S+\s+(eyJ[\w.-]+)\s*$", printed, re.MULTILINE)}


def wait_until_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
                ready: dict[str, Any] = json.loads(answer.read())
                return ready
        except OSError:
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.25)


@contextmanager
def background(command: str, home: Path, env: dict[str, str], base: str, name: str) -> Iterator[dict[str, Any]]:
    """Run a serving command in the background until ready; stop it afterwards (SIGTERM to
    the process group this test started for it, then wait)."""
    log = home / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=home, env=env, stdout=output, stderr=output, start_new_session=True
        )
    try:
        yield wait_until_ready(base, process, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def run(command: str, home: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command], cwd=home, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh directory laid out like a checkout: the project's folders and its .venv."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    assert (tmp_path / ".venv" / "bin" / "disputes").exists(), "the tests run from the project's virtualenv"
    for folder in checkout_folders():
        (tmp_path / folder).symlink_to(REPO / folder, target_is_directory=True)
    return tmp_path


@pytest.mark.slow  # about twenty `disputes` processes: a minute on an idle machine
def test_the_readme_tour_runs_as_written(home: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPUTES_")}
    env["COLUMNS"] = "200"
    port, other_port = free_port(), free_port()
    *setup, serve = make_run_recipe()
    assert [c.split()[1:3] for c in setup] == [["db", "upgrade"], ["demo", "--if-empty"], ["token", "--demo"]]
    printed = "".join(run(command, home, env) for command in setup)
    tokens = tokens_by_role(printed)
    assert serve.split()[1] == "serve"
    serve = serve.replace("--port 8000", f"--port {port}")

    answers: list[dict[str, Any]] = []
    blocks = [b for b in sh_blocks(README) if not b.startswith("make ")]  # the quick start: make run itself
    assert len(blocks) >= 8
    with background(serve, home, env, f"http://127.0.0.1:{port}", "make-run"):
        for block in blocks:
            block = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if all(re.match(r"[A-Z]+=", line) for line in block.splitlines()):
                env.update(_variables(block, tokens, answers))
            elif re.search(r"/disputes (--config \S+ )?serve\b", block):  # a server: runs until stopped
                command = block.strip().replace("--port 8001", f"--port {other_port}")
                with background(command, home, env, f"http://127.0.0.1:{other_port}", "other-desk") as ready:
                    assert ready["status"] == "ready"
            elif block.startswith("curl "):
                answer = json.loads(run(block, home, env))
                assert not str(answer.get("type", "")).startswith(PROBLEM), (block, answer)
                answers.append(answer)
            else:
                run(block, home, env)

    filed, responded, actions, mediating, history = answers
    # What the README says of each answer.
    assert (filed["state"], filed["mediator_id"], filed["priority"]) == ("assigned", "med-li", "high")
    assert filed["version"] == 5
    assert responded["version"] == 7 and responded["merchant_responded"] is True
    assert {a["name"] for a in actions["data"] if a["allowed"]} >= {"start_mediation"}
    assert (mediating["state"], mediating["version"]) == ("mediating", 9)
    assert [e["seq"] for e in history["data"]] == list(range(1, 10))
    assert (home / "log.jsonl").exists() and (home / "travel.db").exists() and (home / "mydesk" / "policies").is_dir()


def _variables(block: str, tokens: dict[str, str], answers: list[dict[str, Any]]) -> dict[str, str]:
    """NAME=value lines; ``eyJ...`` is the token of the role its comment names, ``DSP-...``
    the id of the last answer."""
    found: dict[str, str] = {}
    for line in block.splitlines():
        name, rest = line.split("=", 1)
        value, _, comment = rest.partition("#")
        value = value.strip()
        if value == "eyJ...":
            role = ROLE_WORDS.search(comment)
            assert role is not None, line
            value = tokens[role.group(1)]
        elif value == "DSP-...":
            value = answers[-1]["id"]
        found[name] = value
    return found
