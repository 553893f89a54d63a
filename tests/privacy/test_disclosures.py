"""Exports for cleared auditors disclose values; the standalone verifier checks each one against
its marker and refuses any disclosure of a value the log records as erased."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.export import export_jsonl
from cases.service import CaseService
from tests.support.actors import CONSUMER, MEDIATOR, OTHER_CONSUMER, T0
from tests.support.builders import make_service, new_case
from tests.support.verifier import run_tool

Lines = list[dict[str, Any]]


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url)
    yield svc
    svc.db.dispose()


def _closed_case(service: CaseService, consumer_id: str, words: str) -> str:
    actor = CONSUMER if consumer_id == CONSUMER.id else OTHER_CONSUMER
    case = service.file(
        actor=actor, new_case=new_case(consumer_id=consumer_id, subject=words, description=f"联系{words}")
    )
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=actor, case_id=case.id, name="withdraw", reason=f"{words}撤回")
    return case.id


def _export(service: CaseService, path: Path, *, disclose: bool) -> Lines:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        export_jsonl(service.db, out, now=T0 + timedelta(days=1), disclose=service.privacy if disclose else None)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, lines: Lines) -> Path:
    """The lines written back with a correct end line, as a careful forger would."""
    body = [
        json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines if line["kind"] != "end"
    ]
    counts: dict[str, int] = {}
    for line in lines:
        if line["kind"] != "end":
            counts[line["kind"]] = counts.get(line["kind"], 0) + 1
    end = {"kind": "end", "counts": counts, "digest": hashlib.sha256("".join(body).encode("utf-8")).hexdigest()}
    path.write_text("".join(body) + json.dumps(end, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def _forge(lines: Lines, change: Callable[[Lines], Lines]) -> Lines:
    return change([dict(line) for line in lines])


def test_disclosures_verify_and_erased_values_are_never_disclosed(
    service: CaseService, verifier: Path, tmp_path: Path
) -> None:
    mine = _closed_case(service, "c-1", "张伟13812345678")
    _closed_case(service, "c-2", "李娜13987654321")

    plain = _export(service, tmp_path / "plain.jsonl", disclose=False)
    assert plain[0]["format_version"] == 3 and plain[0]["disclosures"] is False
    assert not any(line["kind"] == "disclosure" for line in plain)
    assert "张伟" not in (tmp_path / "plain.jsonl").read_text(encoding="utf-8")

    cleared = _export(service, tmp_path / "cleared.jsonl", disclose=True)
    disclosed = [line for line in cleared if line["kind"] == "disclosure"]
    # subject, description, order reference and the withdrawal's reason, per case
    assert len(disclosed) == 8 and "张伟13812345678" in {d["value"] for d in disclosed}
    run = run_tool(verifier, tmp_path / "cleared.jsonl")
    assert run.code == 0 and "8 disclosed values checked against their markers" in run.out, run.out

    def swap_value(lines: Lines) -> Lines:
        first = next(line for line in lines if line["kind"] == "disclosure")
        first["value"] = "王芳"
        return lines

    run = run_tool(verifier, _write(tmp_path / "swapped.jsonl", _forge(cleared, swap_value)))
    assert run.code == 1 and "does not match its marker" in run.out, run.out

    mine_disclosed = [d for d in disclosed if d["case_id"] == mine]
    service.erase_subject(user_id="c-1", basis="PIPL Art. 47", approved_by="adm-1")
    after = _export(service, tmp_path / "after.jsonl", disclose=True)
    assert {d["case_id"] for d in after if d["kind"] == "disclosure"} == {d["case_id"] for d in disclosed} - {mine}
    run = run_tool(verifier, tmp_path / "after.jsonl")
    assert run.code == 0 and "4 erased values recorded, none disclosed" in run.out, run.out

    def bring_back(lines: Lines) -> Lines:
        at = max(i for i, line in enumerate(lines) if line["kind"] == "disclosure")
        return [*lines[: at + 1], mine_disclosed[0], *lines[at + 1 :]]

    run = run_tool(verifier, _write(tmp_path / "resurrected.jsonl", _forge(after, bring_back)))
    assert run.code == 1 and "disclosed although the log records it erased" in run.out, run.out
