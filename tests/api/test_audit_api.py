"""Audit over HTTP: replay at a point, verify, checkpoints, proofs, export; auditors only, logged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from audit.checkpoints import write_checkpoint
from audit.reads import recent_reads
from tests.support.api import Api, Party, file_case
from tests.support.verifier import run_tool


def test_replay_verify_checkpoint_proof_and_export(api: Api, tmp_path: Path, verifier: Path) -> None:
    consumer = Party(api, "c-1", "consumer")
    mediator = Party(api, "med-1", "mediator")
    auditor = Party(api, "aud-1", "auditor")
    case_id = file_case(api, consumer)
    mediator.move(case_id, "assign")
    mediator.post(case_id, "/messages", {"body": "internal only", "internal": True}, expect=201)

    then = consumer.get(f"/v1/cases/{case_id}/replay?seq=1")
    assert then["case"]["state"] == "filed" and [e["seq"] for e in then["events"]] == [1]
    now = consumer.get(f"/v1/cases/{case_id}/replay")
    assert now["case"]["state"] == "assigned"
    assert all(not e["data"].get("internal") for e in now["events"])  # parties never see internal notes
    assert any(e["data"].get("internal") for e in auditor.get(f"/v1/cases/{case_id}/replay")["events"])

    refused = api.client.get("/v1/audit/verify", headers=consumer.headers)
    assert refused.status_code == 403 and refused.json()["reasons"]
    assert auditor.get("/v1/audit/verify")["intact"] is True

    key = api.engine.signing_key
    written = write_checkpoint(api.service.db, key, api.clock.now() + timedelta(minutes=5))
    assert written is not None
    listed = auditor.get("/v1/audit/checkpoints")
    assert [c["number"] for c in listed["data"]] == [written.number] and listed["public_key"]
    proof = auditor.get(f"/v1/audit/proofs/{case_id}")
    assert proof["signed_checkpoint"]["merkle_root"] == proof["root"]

    exported = api.client.get("/v1/audit/export", headers=auditor.headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    export_file = tmp_path / "export.jsonl"
    export_file.write_bytes(exported.content)
    assert run_tool(verifier, export_file).code == 0
    damaged = tmp_path / "damaged.jsonl"
    data = bytearray(exported.content)
    data[data.index(b'"seq":2') + 6] ^= 1
    damaged.write_bytes(bytes(data))
    assert run_tool(verifier, damaged).code == 1
    assert api.client.get("/v1/audit/export?case_id=DSP-NOPE", headers=auditor.headers).status_code == 404

    # Tampering shows in the HTTP verification too, naming case, seq and kind.
    with api.service.db.write() as session:
        session.execute(
            # The note's text is a marker (privacy/markers.py): flip the flag beside it.
            text("UPDATE events SET body = replace(body, :plain, :changed) WHERE case_id = :c"),
            {"c": case_id, "plain": '"internal":true', "changed": '"internal":false'},
        )
    report = auditor.get("/v1/audit/verify")
    assert report["intact"] is False
    assert {(d["case_id"], d["kind"]) for d in report["damages"]} == {(case_id, "changed")}

    reads = {r["what"] for r in recent_reads(api.service.db)}
    assert {"verify", "checkpoints", "proof", "export", "replay"} <= reads
