"""`disputes config check` as the desk tests run it, and where a text stands in a desk file."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def check(directory: Path) -> tuple[int, str]:
    """The exit code and the output (white space folded) of `disputes config check DIRECTORY`."""
    result = runner.invoke(app, ["config", "check", str(directory)], terminal_width=240)
    return result.exit_code, re.sub(r"\s+", " ", result.output)


def line_of(path: Path, text: str) -> int:
    """The number of the first line of ``path`` that holds ``text``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")
