"""Exports verify with tools/verify_export.py run where nothing of this project can be imported."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cases.checkpoints import generate_signing_key, public_key_hex, write_checkpoint
from cases.export import export_jsonl, iter_export
from cases.service import CaseService
from tests.audit.builders import build_cases, extend_cases
from tests.cases.helpers import T0
from workflow.errors import NotFoundError

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"
# What the verifier may import besides the standard library: rfc8785, cryptography and
# what cryptography itself loads.
ALLOWED = ("rfc8785", "cryptography", "cffi", "_cffi_backend", "pycparser")
PROJECT = ("cases", "workflow", "policies", "sla", "api", "tests", "sqlalchemy", "sqlmodel", "pydantic")
BOOTSTRAP = """
import importlib.util, runpy, sys
site, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, site)
present = [m for m in sys.argv[3].split(",") if importlib.util.find_spec(m) is not None]
if present:
    sys.exit(f"importable in the verifier's environment: {present}")
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


@dataclass
class Run:
    code: int
    out: str


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding the tool and links to exactly the packages it may use."""
    home = tmp_path_factory.mktemp("outsider")
    site = home / "site"
    site.mkdir()
    for name in ALLOWED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (site / source.name).symlink_to(source, target_is_directory=source.is_dir())
    shutil.copy(TOOL, home / "verify_export.py")
    yield home


def run_tool(home: Path, export: Path, *args: str) -> Run:
    """python -I -S: no environment variables, no site-packages (where this project is
    installed in editable mode), no script directory on the path; only ``site``."""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            BOOTSTRAP,
            str(home / "site"),
            str(home / "verify_export.py"),
            ",".join(PROJECT),
            str(export),
            *args,
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "importable in the verifier's environment" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    return Run(result.returncode, result.stdout)


@pytest.fixture
def history(service: CaseService, signing_key: Ed25519PrivateKey) -> list[str]:
    rng = random.Random(11)
    built = build_cases(service, count=30, events_per_case=lambda i: 1 + i % 9, rng=rng)
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=1))
    extend_cases(service, built.case_ids[::2], comments=2, now=T0 + timedelta(hours=2), rng=rng)
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=3))
    extend_cases(service, built.case_ids[::5], comments=1, now=T0 + timedelta(hours=4), rng=rng)
    return built.case_ids


def export_to(service: CaseService, path: Path, **scope: object) -> Path:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        export_jsonl(service.db, out, now=T0 + timedelta(days=1), **scope)  # type: ignore[arg-type]
    return path


def rewrite(path: Path, change: object) -> Path:
    """Apply ``change`` to the parsed lines, then fix the end line's counts and digest, as a
    careful forger would: only the chains and the signatures can then tell."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    lines = change(lines[:-1])  # type: ignore[operator]
    text_lines = [json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines]
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["kind"]] = counts.get(line["kind"], 0) + 1
    digest = hashlib.sha256("".join(text_lines).encode("utf-8")).hexdigest()
    end = json.dumps({"kind": "end", "counts": counts, "digest": digest}, separators=(",", ":")) + "\n"
    out = path.with_name(f"forged-{path.name}")
    out.write_text("".join(text_lines) + end, encoding="utf-8")
    return out


def test_a_complete_export_verifies_outside_the_project(
    service: CaseService, history: list[str], verifier: Path, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    export = export_to(service, tmp_path / "export.jsonl")
    lines = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "header" and kinds[-1] == "end" and "proof" not in kinds
    assert kinds.index("checkpoint") < kinds.index("head") < kinds.index("event") < kinds.index("workflow")
    assert lines[0]["complete"] is True and lines[-1]["counts"]["cases"] == 30
    run = run_tool(verifier, export, "--public-key", public_key_hex(signing_key), "--all-roots")
    assert run.code == 0, run.out
    assert "RESULT: INTACT" in run.out
    assert "checkpoint #2: Merkle root over 30 case heads recomputed and matches" in run.out
    assert "30 cases" in run.out

    stranger = run_tool(verifier, export, "--public-key", public_key_hex(generate_signing_key()))
    assert stranger.code == 1 and "checkpoint #1: key:" in stranger.out


def test_any_changed_byte_fails(service: CaseService, history: list[str], verifier: Path, tmp_path: Path) -> None:
    export = export_to(service, tmp_path / "export.jsonl")
    data = export.read_bytes()
    rng = random.Random(9)
    for trial in range(6):
        at = rng.randrange(len(data))
        changed = tmp_path / f"changed-{trial}.jsonl"
        # One byte, kept ASCII so that the file stays text; the end line's digest covers it all.
        replacement = rng.choice([b for b in b'0123456789abcdefxyz{}":, ' if b != data[at]])
        changed.write_bytes(data[:at] + bytes([replacement]) + data[at + 1 :])
        run = run_tool(verifier, changed)
        assert run.code == 1, f"byte {at} ({data[at : at + 1]!r} -> {bytes([replacement])!r}) went unnoticed"
        assert "RESULT: DAMAGED" in run.out


def test_forgeries_with_a_fixed_digest_are_named(
    service: CaseService, history: list[str], verifier: Path, tmp_path: Path
) -> None:
    export = export_to(service, tmp_path / "export.jsonl")
    events = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines() if '"kind":"event"' in line]
    victim = events[40]

    def edit_body(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        for line in lines:
            if line["kind"] == "event" and (line["case_id"], line["seq"]) == (victim["case_id"], victim["seq"]):
                line["body"] = str(line["body"]).replace('"seq":', '"seq": ', 1)
        return lines

    run = run_tool(verifier, rewrite(export, edit_body))
    assert run.code == 1
    assert f"PROBLEM case {victim['case_id']} seq {victim['seq']}: changed: " in run.out

    # Drop a middle event of a case, and the tail of another that a checkpoint saw.
    counts: dict[str, int] = {}
    for event in events:
        counts[event["case_id"]] = max(counts.get(event["case_id"], 0), event["seq"])
    long_cases = [c for c, n in counts.items() if n >= 5]
    middle, cut = long_cases[0], long_cases[1]

    def drop(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            line
            for line in lines
            if not (line["kind"] == "event" and line["case_id"] == middle and line["seq"] == 3)
            and not (line["kind"] == "event" and line["case_id"] == cut and int(line["seq"]) > 2)  # type: ignore[call-overload]
        ]

    run = run_tool(verifier, rewrite(export, drop))
    assert run.code == 1
    assert f"PROBLEM case {middle} seq 3: deleted: " in run.out
    assert f"PROBLEM case {cut} seq 3: truncated: " in run.out
    assert run.out.count("PROBLEM") == 2, run.out


def test_a_case_export_carries_its_inclusion_proof(
    service: CaseService, history: list[str], verifier: Path, tmp_path: Path
) -> None:
    case_id = history[4]
    export = export_to(service, tmp_path / "case.jsonl", case_id=case_id)
    kinds = [json.loads(line)["kind"] for line in export.read_text(encoding="utf-8").splitlines()]
    assert kinds.count("proof") == 1 and kinds.count("checkpoint") == 2
    run = run_tool(verifier, export)
    assert run.code == 0, run.out
    assert f"case {case_id}: head seq" in run.out and "proven included in checkpoint #2" in run.out

    def other_root(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        for line in lines:
            if line["kind"] == "proof":
                line["index"] = (int(line["index"]) + 1) % int(line["tree_size"])  # type: ignore[call-overload]
        return lines

    run = run_tool(verifier, rewrite(export, other_root))
    assert run.code == 1 and f"PROBLEM case {case_id} seq " in run.out and ": proof: " in run.out
    with pytest.raises(NotFoundError):
        next(iter_export(service.db, now=T0, case_id="DSP-NONE"))


def test_recent_cases_export_and_streaming(service: CaseService, history: list[str], verifier: Path) -> None:
    lines = iter_export(service.db, now=T0, since=T0 + timedelta(hours=3, minutes=30))
    header = json.loads(next(lines))  # a generator: nothing more is read until asked
    assert header["complete"] is False and header["scope"]["since"] == "2026-03-02T05:30:00.000000Z"
    rest = [json.loads(line) for line in lines]
    exported = {line["case_id"] for line in rest if line["kind"] == "event"}
    assert exported == set(history[::5])
    buffer = io.StringIO()
    summary = export_jsonl(service.db, buffer, now=T0, since=T0 + timedelta(hours=3, minutes=30))
    assert summary.counts["cases"] == len(exported)
    path = verifier / "recent.jsonl"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    run = run_tool(verifier, path)
    assert run.code == 0, run.out
    assert "a partial export: checkpoint roots cannot be recomputed from it" in run.out
