"""Export case histories and merchant logs as JSON Lines that outsiders verify with tools/verify_export.py alone.

One transaction, one snapshot, streamed line by line (constant memory apart from
the sets of referenced workflow and policy versions). The line formats are in
docs/audit.md; every event line carries the exact stored body that was hashed.
Format version 2 added the merchants' logs (``merchant_event``) and the heads
checkpoints recorded for them (``merchant_head``). Format version 3 (event bodies hold markers
for personal values, docs/privacy.md) adds, for cleared auditors only, ``disclosure`` lines
``{case_id, ref, salt, value}`` that the verifier checks against the markers; the verifier reads
every version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any, TextIO

from sqlalchemy import select
from sqlmodel import Session

from audit.chains import snapshot_read
from audit.checkpoints import inclusion_proof, iter_checkpoints
from cases.personal import PersonalData
from store.db import Database
from store.errors import AuditIntegrityError
from store.tables import (
    CASES,
    CHECKPOINT_HEADS,
    CHECKPOINT_MERCHANT_HEADS,
    CHECKPOINTS,
    EVENTS,
    MERCHANT_EVENTS,
    POLICY_VERSIONS,
    WORKFLOW_VERSIONS,
)
from workflow.errors import NotFoundError
from workflow.model import to_iso

EXPORT_FORMAT = "dispute-engine-export"
EXPORT_VERSION = 3
_MARKER = re.compile(r"pii:v1:([0-9a-f]{24}):[0-9a-f]{64}")
DISCLOSE_BATCH = 500
_STREAM = {"yield_per": 1000}


def engine_version() -> str:
    try:
        return f"dispute-engine {metadata.version('dispute-engine')}"
    except metadata.PackageNotFoundError:
        return "dispute-engine (not installed)"


@dataclass
class ExportSummary:
    """Line counts of one export, as its end line states them."""

    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""


def export_jsonl(
    db: Database,
    out: TextIO,
    *,
    now: datetime,
    case_id: str | None = None,
    since: datetime | None = None,
    disclose: PersonalData | None = None,
) -> ExportSummary:
    """Write the export to ``out`` (open it with encoding="utf-8", newline="\\n")."""
    summary = ExportSummary()
    for line in iter_export(db, now=now, case_id=case_id, since=since, summary=summary, disclose=disclose):
        out.write(line)
    return summary


def iter_export(
    db: Database,
    *,
    now: datetime,
    case_id: str | None = None,
    since: datetime | None = None,
    summary: ExportSummary | None = None,
    disclose: PersonalData | None = None,
) -> Iterator[str]:
    """The export's lines, each ending in "\\n" (for a streamed HTTP response).

    Scope: every case (a complete export, whose checkpoint roots a verifier can
    recompute), one case (with an inclusion proof of its head in the latest
    checkpoint that saw it), or the cases changed since an instant, whole chains.
    ``disclose``: add the personal values the events' markers stand for (a cleared auditor's
    export; the caller has checked the clearance), each with its salt, so the verifier can check
    it against the chain. Erased values have no row any more and are never disclosed.
    """
    summary = summary if summary is not None else ExportSummary()
    counts = summary.counts
    digest = hashlib.sha256()

    def emit(kind: str, values: dict[str, Any]) -> str:
        line = json.dumps({"kind": kind, **values}, ensure_ascii=False, separators=(",", ":")) + "\n"
        digest.update(line.encode("utf-8"))
        counts[kind] = counts.get(kind, 0) + 1
        return line

    complete = case_id is None and since is None
    with snapshot_read(db) as session:
        if case_id is not None and not _case_exists(session, case_id):
            raise NotFoundError("case", case_id)
        yield emit(
            "header",
            {
                "format": EXPORT_FORMAT,
                "format_version": EXPORT_VERSION,
                "created_at": to_iso(now),
                "engine": engine_version(),
                "complete": complete,
                "disclosures": disclose is not None,
                "scope": {"case_id": case_id, "since": to_iso(since) if since is not None else None},
            },
        )
        for checkpoint in iter_checkpoints(session):
            yield emit(
                "checkpoint",
                {
                    "number": checkpoint.number,
                    "hash": checkpoint.hash,
                    "public_key": checkpoint.public_key,
                    "signature": checkpoint.signature,
                    "document": checkpoint.document,
                },
            )
        for head in _heads(session, case_id=case_id, since=since):
            yield emit("head", head)
        merchants = _merchants(case_id=case_id, since=since)
        for head in _merchant_heads(session, merchants):
            yield emit("merchant_head", head)
        if case_id is not None:
            proof = _proof(session, case_id)
            if proof is not None:
                yield emit("proof", proof)
        # Before the cases' events: a verifier then knows each merchant's log when it meets
        # a decision that names the standing it relied on.
        for row in session.execute(_merchant_events(merchants).execution_options(**_STREAM)):
            yield emit(
                "merchant_event",
                {
                    "merchant_id": row.merchant_id,
                    "seq": row.seq,
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                    "body": row.body,
                },
            )
        workflow_versions: set[str] = set()
        policy_versions: set[str] = set()
        cases = 0
        last_case: str | None = None
        markers: dict[str, str] = {}  # ref -> marker, of the exported events, when disclosing
        for row in session.execute(_events(case_id=case_id, since=since).execution_options(**_STREAM)):
            if row.case_id != last_case:  # events come grouped by case
                cases += 1
                last_case = row.case_id
            try:
                doc = json.loads(row.body)
                workflow_versions.add(str(doc["workflow_version"]))
                policy_versions.add(str(doc["policy_version"]))
            except (ValueError, KeyError, TypeError):
                pass  # a damaged body is exported as it is; the verifier will name it
            if disclose is not None:
                for found in _MARKER.finditer(row.body):
                    markers[found.group(1)] = found.group(0)
            yield emit(
                "event",
                {
                    "case_id": row.case_id,
                    "seq": row.seq,
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                    "body": row.body,
                },
            )
        if disclose is not None:
            refs = sorted(markers)
            for start in range(0, len(refs), DISCLOSE_BATCH):
                batch = {ref: markers[ref] for ref in refs[start : start + DISCLOSE_BATCH]}
                for value in sorted(disclose.open_values(session, batch), key=lambda d: (d.case_id, d.ref)):
                    yield emit(
                        "disclosure",
                        {"case_id": value.case_id, "ref": value.ref, "salt": value.salt.hex(), "value": value.value},
                    )
        for workflow in session.execute(
            select(WORKFLOW_VERSIONS)
            .where(WORKFLOW_VERSIONS.c.version.in_(sorted(workflow_versions)))
            .order_by(WORKFLOW_VERSIONS.c.version)
        ):
            yield emit(
                "workflow",
                {
                    "version": workflow.version,
                    "name": workflow.name,
                    "created_at": to_iso(workflow.created_at),
                    "document": json.loads(workflow.document),
                },
            )
        for policy in session.execute(
            select(POLICY_VERSIONS)
            .where(POLICY_VERSIONS.c.version.in_(sorted(policy_versions)))
            .order_by(POLICY_VERSIONS.c.version)
        ):
            yield emit(
                "policy", {"version": policy.version, "created_at": to_iso(policy.created_at), "files": policy.files}
            )
    counts["cases"] = cases
    summary.digest = digest.hexdigest()
    # The end line makes a cut-off file detectable and, through the digest over every
    # byte before it, any accidental change; authenticity comes from the chains and
    # the signed checkpoints, not from this digest.
    yield (
        json.dumps(
            {"kind": "end", "counts": dict(sorted(counts.items())), "digest": summary.digest},
            separators=(",", ":"),
        )
        + "\n"
    )


def _case_exists(session: Session, case_id: str) -> bool:
    return (
        session.execute(select(CASES.c.id).where(CASES.c.id == case_id)).first() is not None
        or session.execute(select(EVENTS.c.id).where(EVENTS.c.case_id == case_id).limit(1)).first() is not None
    )


def _selected_cases(since: datetime) -> Any:
    return select(CASES.c.id).where(CASES.c.updated_at >= since)


def _events(*, case_id: str | None, since: datetime | None) -> Any:
    stmt = select(EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.prev_hash, EVENTS.c.hash, EVENTS.c.body)
    if case_id is not None:
        stmt = stmt.where(EVENTS.c.case_id == case_id)
    elif since is not None:
        stmt = stmt.where(EVENTS.c.case_id.in_(_selected_cases(since)))
    return stmt.order_by(EVENTS.c.case_id, EVENTS.c.seq)


def _heads(session: Session, *, case_id: str | None, since: datetime | None) -> Iterator[dict[str, Any]]:
    """Every stored head row (a complete export: each checkpoint's signed delta), or the
    rows of the exported cases. Only rows of checkpoints this snapshot holds."""
    stmt = select(
        CHECKPOINT_HEADS.c.checkpoint, CHECKPOINT_HEADS.c.case_id, CHECKPOINT_HEADS.c.seq, CHECKPOINT_HEADS.c.hash
    ).where(CHECKPOINT_HEADS.c.checkpoint.in_(select(CHECKPOINTS.c.number)))
    if case_id is not None:
        stmt = stmt.where(CHECKPOINT_HEADS.c.case_id == case_id)
    elif since is not None:
        stmt = stmt.where(CHECKPOINT_HEADS.c.case_id.in_(_selected_cases(since)))
    dialect = session.get_bind().dialect.name
    order = CHECKPOINT_HEADS.c.case_id.collate("C") if dialect == "postgresql" else CHECKPOINT_HEADS.c.case_id
    for row in session.execute(stmt.order_by(CHECKPOINT_HEADS.c.checkpoint, order).execution_options(**_STREAM)):
        yield {"checkpoint": row.checkpoint, "case_id": row.case_id, "seq": row.seq, "hash": row.hash}


def _merchants(*, case_id: str | None, since: datetime | None) -> Any:
    """Which merchants' logs go with the exported cases: every log for a complete export,
    else those of the exported cases' merchants. None: every merchant."""
    if case_id is not None:
        return select(CASES.c.merchant_id).where(CASES.c.id == case_id)
    if since is not None:
        return select(CASES.c.merchant_id).where(CASES.c.updated_at >= since)
    return None


def _merchant_heads(session: Session, merchants: Any) -> Iterator[dict[str, Any]]:
    """The stored merchant head rows of the exported merchants, by checkpoint, then leaf order."""
    stmt = select(
        CHECKPOINT_MERCHANT_HEADS.c.checkpoint,
        CHECKPOINT_MERCHANT_HEADS.c.merchant_id,
        CHECKPOINT_MERCHANT_HEADS.c.seq,
        CHECKPOINT_MERCHANT_HEADS.c.hash,
    ).where(CHECKPOINT_MERCHANT_HEADS.c.checkpoint.in_(select(CHECKPOINTS.c.number)))
    if merchants is not None:
        stmt = stmt.where(CHECKPOINT_MERCHANT_HEADS.c.merchant_id.in_(merchants))
    dialect = session.get_bind().dialect.name
    key = CHECKPOINT_MERCHANT_HEADS.c.merchant_id
    order = key.collate("C") if dialect == "postgresql" else key
    for row in session.execute(
        stmt.order_by(CHECKPOINT_MERCHANT_HEADS.c.checkpoint, order).execution_options(**_STREAM)
    ):
        yield {"checkpoint": row.checkpoint, "merchant_id": row.merchant_id, "seq": row.seq, "hash": row.hash}


def _merchant_events(merchants: Any) -> Any:
    stmt = select(
        MERCHANT_EVENTS.c.merchant_id,
        MERCHANT_EVENTS.c.seq,
        MERCHANT_EVENTS.c.prev_hash,
        MERCHANT_EVENTS.c.hash,
        MERCHANT_EVENTS.c.body,
    )
    if merchants is not None:
        stmt = stmt.where(MERCHANT_EVENTS.c.merchant_id.in_(merchants))
    return stmt.order_by(MERCHANT_EVENTS.c.merchant_id, MERCHANT_EVENTS.c.seq)


def _proof(session: Session, case_id: str) -> dict[str, Any] | None:
    """The case's inclusion proof in the latest checkpoint, if a checkpoint saw the case.
    None too when the stored heads no longer give the signed root: the export goes
    out regardless, and the verifier reports the case as unanchored."""
    try:
        return inclusion_proof(session, case_id=case_id).to_dict()
    except (NotFoundError, AuditIntegrityError):
        return None
