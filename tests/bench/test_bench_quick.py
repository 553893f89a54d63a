"""Smoke test of the benchmark harness: the quick run works end to end on SQLite and writes a
table with a measured number in every row. Timing targets are not asserted here: they depend
on the machine and belong to `python -m bench.run`, not to the test suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import run

ROW = re.compile(r"^\| (B\d[^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \| (pass|FAIL|info) \|$")
NUMBER = re.compile(r"\d")


@pytest.mark.slow
def test_quick_harness_writes_a_table_of_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPUTES_TEST_DATABASE_URL", raising=False)
    output = tmp_path / "results.md"

    assert run.main(["--quick", "--no-postgres", "--output", str(output)]) == 0

    text = output.read_text(encoding="utf-8")
    assert "## SQLite" in text and "## PostgreSQL" not in text
    rows = [m for m in (ROW.match(line) for line in text.splitlines()) if m]
    names = {m.group(1).split()[0] for m in rows}
    assert names == {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "B13"}, text
    for row in rows:
        name, baseline, engine, ratio = (row.group(i).strip() for i in range(1, 5))
        assert "(error)" not in name, row.group(0)
        assert NUMBER.search(engine), row.group(0)
        if ratio:
            float(ratio)
            assert NUMBER.search(baseline), row.group(0)
