"""Exports verify with tools/verify_export.py run where nothing of this project can be imported."""

from __future__ import annotations

import hashlib
import io
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, update
from sqlmodel import Session

from audit.checkpoints import Checkpoint, append_checkpoint, checkpoint_document, write_checkpoint
from audit.export import export_jsonl, iter_export
from audit.keys import generate_signing_key, public_key_hex
from audit.verify import verify_database
from cases.service import CaseService
from store.tables import CHECKPOINT_MERCHANT_HEADS, CHECKPOINTS
from tests.support.actors import CONSUMER, MEDIATOR, T0
from tests.support.audit_builders import build_cases, extend_cases
from tests.support.builders import new_case, set_merchant_flag
from tests.support.verifier import run_tool
from workflow.errors import NotFoundError
from workflow.model import to_iso


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


# --- merchants' logs ---------------------------------------------------------------------------


@pytest.fixture
def flagged(service: CaseService, signing_key: Ed25519PrivateKey) -> list[str]:
    """Cases of m-1 and m-2 moved through the command path while their merchants' flags were
    raised and cleared, around two checkpoints; m-1's last raise is after both."""
    ids = [
        service.file(actor=CONSUMER, new_case=new_case(merchant_id=f"m-{1 + i // 4}", order_ref=f"O{i}")).id
        for i in range(6)
    ]

    def comment(case_ids: list[str], text: str) -> None:
        for case_id in case_ids:
            service.execute(actor=MEDIATOR, case_id=case_id, name="comment", data={"body": text})

    set_merchant_flag(service, "m-1", True)
    comment(ids[:4], "flagged")
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=1))
    set_merchant_flag(service, "m-1", False)
    set_merchant_flag(service, "m-2", True)
    comment(ids, "later")
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=2))
    set_merchant_flag(service, "m-1", True)
    comment(ids[:1], "latest")
    return ids


def test_merchant_logs_are_exported_and_verified_outside_the_project(
    service: CaseService, flagged: list[str], verifier: Path, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    export = export_to(service, tmp_path / "export.jsonl")
    lines = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    kinds = [line["kind"] for line in lines]
    assert lines[0]["format_version"] == 3
    assert kinds.index("head") < kinds.index("merchant_head") < kinds.index("merchant_event") < kinds.index("event")
    assert [(m["merchant_id"], m["seq"]) for m in lines if m["kind"] == "merchant_event"] == [
        ("m-1", 1),
        ("m-1", 2),
        ("m-1", 3),
        ("m-2", 1),
    ]
    run = run_tool(verifier, export, "--public-key", public_key_hex(signing_key), "--all-roots")
    assert run.code == 0, run.out
    assert "2 merchant logs, 4 events: every chain verifies" in run.out
    assert "checkpoint #1: Merkle root over 1 merchant head recomputed and matches" in run.out
    assert "checkpoint #2: Merkle root over 2 merchant heads recomputed and matches" in run.out

    def change_event(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        for line in lines:
            if line["kind"] == "merchant_event" and (line["merchant_id"], line["seq"]) == ("m-1", 2):
                line["body"] = str(line["body"]).replace('"flag_id":null', '"flag_id":7')
        return lines

    run = run_tool(verifier, rewrite(export, change_event))
    assert run.code == 1 and "PROBLEM merchant m-1 seq 2: changed: the hash does not match" in run.out

    def cut_tail(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            line
            for line in lines
            if not (line["kind"] == "merchant_event" and line["merchant_id"] == "m-1" and line["seq"] != 1)
        ]

    run = run_tool(verifier, rewrite(export, cut_tail))
    assert run.code == 1
    assert "PROBLEM merchant m-1 seq 2: truncated: the log ends at seq 1; checkpoint #2 saw seq 2" in run.out
    # Named once, where it happened: the decisions that relied on the lost events are not
    # reported again against a log already known to be damaged.
    assert run.out.count("PROBLEM") == 1, run.out


def test_a_decision_must_agree_with_the_merchant_log_it_names(
    service: CaseService, flagged: list[str], verifier: Path, tmp_path: Path
) -> None:
    """A forger rewrites m-2's log (raised becomes cleared) with every hash recomputed and
    hands over the export without its checkpoints: each chain holds, but the decisions
    taken while m-2 was flagged name a standing the log no longer has."""
    export = export_to(service, tmp_path / "export.jsonl")

    def rewrite_m2(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        kept = [line for line in lines if line["kind"] not in ("checkpoint", "head", "merchant_head")]
        for line in kept:
            if line["kind"] == "merchant_event" and line["merchant_id"] == "m-2":
                body = str(line["body"]).replace('"type":"flag_raised"', '"type":"flag_cleared"')
                line["body"], line["hash"] = (
                    body,
                    hashlib.sha256(bytes.fromhex(str(line["prev_hash"])) + body.encode()).hexdigest(),
                )
        return kept

    run = run_tool(verifier, rewrite(export, rewrite_m2))
    assert run.code == 1, run.out
    assert "2 merchant logs, 4 events: every chain verifies" in run.out
    standing = [line for line in run.out.splitlines() if ": standing: " in line]
    assert sorted(line.split()[2] for line in standing) == sorted(flagged[4:])  # m-2's two cases
    assert "records merchant m-2 as flagged at its seq 1; the merchant's log says not flagged" in standing[0]


def test_checkpoints_and_exports_of_earlier_versions_still_verify(
    service: CaseService, verifier: Path, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A checkpoint of type v1 (signed before merchant logs existed) verifies and the next
    one chains to it; an export of format 1 verifies with today's tool."""
    case = service.file(actor=CONSUMER, new_case=new_case())
    with service.db.write() as session:
        written = append_checkpoint(session, signing_key, T0 + timedelta(hours=1))
        assert written is not None
        as_v1(session, written, signing_key)
    old = rewrite(export_to(service, tmp_path / "old.jsonl"), format_1)
    set_merchant_flag(service, "m-1", True)
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    second = write_checkpoint(service.db, signing_key, T0 + timedelta(hours=2))
    assert second is not None and json.loads(second.document)["type"] == "dispute-engine/checkpoint/v2"
    report = verify_database(service.db, service.registry, trusted_keys=[public_key_hex(signing_key)], all_roots=True)
    assert report.intact and report.roots_verified == [1, 2], report.to_dict()

    run = run_tool(verifier, old, "--public-key", public_key_hex(signing_key))
    assert run.code == 0, run.out
    assert "format dispute-engine-export v1" in run.out and "checkpoint #1: Merkle root over 1 case head" in run.out
    run = run_tool(verifier, export_to(service, tmp_path / "new.jsonl"), "--all-roots")
    assert run.code == 0, run.out
    assert "checkpoint #2: Merkle root over 1 merchant head recomputed and matches" in run.out


def as_v1(session: Session, checkpoint: Checkpoint, key: Ed25519PrivateKey) -> None:
    """Turn a just-written checkpoint into what the version before merchant logs wrote: a v1
    document (no merchant fields) signed alike, no merchant columns, no merchant heads."""
    fields = {
        name: getattr(checkpoint, name)
        for name in (
            "number",
            "case_count",
            "event_count",
            "merkle_root",
            "delta_count",
            "delta_hash",
            "previous_hash",
            "public_key",
        )
    }
    document = rfc8785.dumps(checkpoint_document(created_at=to_iso(checkpoint.created_at), **fields))
    assert json.loads(document)["type"] == "dispute-engine/checkpoint/v1"
    session.execute(
        update(CHECKPOINTS)
        .where(CHECKPOINTS.c.number == checkpoint.number)
        .values(
            document=document.decode(),
            hash=hashlib.sha256(document).hexdigest(),
            signature=key.sign(document).hex(),
            merchant_count=None,
            merchant_event_count=None,
            merchant_root=None,
            merchant_delta_count=None,
            merchant_delta_hash=None,
        )
    )
    session.execute(
        delete(CHECKPOINT_MERCHANT_HEADS).where(CHECKPOINT_MERCHANT_HEADS.c.checkpoint == checkpoint.number)
    )


def format_1(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    """What the exporter of format 1 wrote for the same database (it had no merchant lines)."""
    lines[0]["format_version"] = 1
    return [line for line in lines if line["kind"] not in ("merchant_head", "merchant_event")]
