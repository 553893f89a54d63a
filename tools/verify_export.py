#!/usr/bin/env python3
"""Verify a dispute-engine audit export (JSON Lines) using only the standard library, rfc8785 and cryptography.

This program deliberately imports nothing of dispute-engine: it re-implements the
algorithm stated in docs/audit.md, so that a third party can check an export
without trusting the engine's code. Usage:

    python verify_export.py EXPORT.jsonl [--public-key HEX]... [--all-roots] [--quiet]

Exit status: 0 when everything verifies, 1 when any problem was found (each is
printed as "case <id> seq <n>: <kind>: <detail>", or "merchant <id> seq <n>: ..." for a
merchant's log), 2 when the file cannot be read. It reads format versions 1, 2 and 3
(version 2 adds the merchants' logs and checkpoints of type v2, which sign their heads; version 3
bodies hold markers ``pii:v1:<ref>:<sha256(salt || value)>`` for personal values, and a cleared
auditor's export adds ``disclosure`` lines: each must match a marker of its case, and none may
disclose a ref that a ``personal_data_erased`` event says was erased).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

try:
    import rfc8785
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError as missing:  # the two packages this program needs besides the standard library
    print(
        f"verify_export.py needs the packages rfc8785 and cryptography ({missing.name} is missing): "
        "pip install rfc8785 cryptography (in a dispute-engine checkout: run it with .venv/bin/python)",
        file=sys.stderr,
    )
    raise SystemExit(2) from None

FORMAT = "dispute-engine-export"
FORMAT_VERSIONS = (1, 2, 3)
MARKER = re.compile(r"pii:v1:([0-9a-f]{24}):([0-9a-f]{64})")
CHECKPOINT_V1 = "dispute-engine/checkpoint/v1"
CHECKPOINT_V2 = "dispute-engine/checkpoint/v2"  # v1 plus the merchant logs' tree
MERCHANT_FIELDS = (
    "merchant_count",
    "merchant_event_count",
    "merchant_root",
    "merchant_delta_count",
    "merchant_delta_hash",
)
GENESIS = "0" * 64
# Sections must come in this order; events of one log must be contiguous and in seq order.
ORDER = {
    "header": 0,
    "checkpoint": 1,
    "head": 2,
    "merchant_head": 3,
    "proof": 4,
    "merchant_event": 5,
    "event": 6,
    "disclosure": 7,
    "workflow": 8,
    "policy": 9,
    "end": 10,
}


# --- the algorithm (docs/audit.md) ------------------------------------------------------------


def event_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def leaf_bytes(case_id: str, seq: int, hash_: str) -> bytes:
    return rfc8785.dumps({"case_id": case_id, "hash": hash_, "seq": seq})


def merchant_leaf_bytes(merchant_id: str, seq: int, hash_: str) -> bytes:
    return rfc8785.dumps({"hash": hash_, "merchant_id": merchant_id, "seq": seq})


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: list[str], root: str) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    digest = leaf_hash(leaf)
    for item in path:
        sibling = bytes.fromhex(item)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and digest.hex() == root


def canonical(text: str) -> tuple[Any, bool]:
    """The parsed JSON of ``text`` and whether ``text`` is its RFC 8785 canonical form."""
    doc = json.loads(text)
    return doc, rfc8785.dumps(doc) == text.encode("utf-8")


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    where: str
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        at = f" seq {self.seq}" if self.seq is not None else ""
        return f"{self.where}{at}: {self.kind}: {self.detail}"


@dataclass
class CaseState:
    """One log being read: a case's, or (``owner`` "merchant") a merchant's."""

    case_id: str
    expected: int = 1
    prev: str = GENESIS
    damaged: bool = False
    hashes: dict[int, str] = field(default_factory=dict)
    owner: str = "case"
    merchant_id: str | None = None  # a case's merchant, from its filed event
    flagged: dict[int, bool] = field(default_factory=dict)  # a merchant's flag after each seq

    @property
    def where(self) -> str:
        return f"{self.owner} {self.case_id}"


@dataclass
class Checkpoint:
    number: int
    hash: str
    doc: dict[str, Any]


class Verifier:
    def __init__(self, trusted_keys: Iterable[str] = (), all_roots: bool = False) -> None:
        self.trusted = {k.lower() for k in trusted_keys}
        self.all_roots = all_roots
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.header: dict[str, Any] | None = None
        self.checkpoints: list[Checkpoint] = []
        self.keys: set[str] = set()
        self.heads: dict[int, list[tuple[str, int, str]]] = {}
        self.needed: dict[str, list[tuple[int, int, str]]] = {}
        self.merchant_heads: dict[int, list[tuple[str, int, str]]] = {}
        self.merchant_needed: dict[str, list[tuple[int, int, str]]] = {}
        self.proof: dict[str, Any] | None = None
        self.case: CaseState | None = None
        self.finished: set[str] = set()
        self.damaged_cases: set[str] = set()
        self.events = 0
        self.merchant: CaseState | None = None
        self.merchants: dict[str, CaseState] = {}  # every merchant log read, by merchant id
        self.merchant_events = 0
        self.workflow_refs: set[str] = set()
        self.policy_refs: set[str] = set()
        self.workflows: set[str] = set()
        self.policies: set[str] = set()
        self.counts: dict[str, int] = {}
        self.digest = hashlib.sha256()
        self.end: dict[str, Any] | None = None
        self.rank = -1
        self.line_no = 0
        # Markers seen in case bodies (ref -> case id, digest), kept when the header announces
        # disclosures; refs a personal_data_erased event names (ref -> case id), always.
        self.markers: dict[str, tuple[str, str]] = {}
        self.erased_refs: dict[str, str] = {}
        self.disclosed = 0

    def problem(self, where: str, seq: int | None, kind: str, detail: str) -> None:
        self.problems.append(Problem(where, seq, kind, detail))

    # -- reading

    def feed(self, raw: bytes) -> None:
        """One line of the file, with its newline: the end line's digest covers those bytes."""
        self.line_no += 1
        where = f"line {self.line_no}"
        if self.end is not None:
            self.problem(where, None, "format", "data after the end line")
            return
        try:
            line = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.digest.update(raw)
            self.problem(where, None, "format", "not a JSON line")
            return
        kind = line.get("kind") if isinstance(line, dict) else None
        if kind != "end":
            self.digest.update(raw)
        if kind not in ORDER:
            self.problem(where, None, "format", f"unknown line kind {kind!r}")
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if ORDER[kind] < self.rank:
            self.problem(where, None, "format", f"a {kind} line after the {kind} section")
        self.rank = max(self.rank, ORDER[kind])
        if kind == "header" and self.line_no != 1:
            self.problem(where, None, "format", "the header must be the first line")
        try:
            getattr(self, f"on_{kind}")(line)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.problem(where, None, "format", f"malformed {kind} line ({type(exc).__name__}: {exc})")

    def on_header(self, line: dict[str, Any]) -> None:
        if line["format"] != FORMAT or line["format_version"] not in FORMAT_VERSIONS:
            versions = " or ".join(f"v{v}" for v in FORMAT_VERSIONS)
            self.problem("header", None, "format", f"not a {FORMAT} {versions} file")
        self.header = line

    def on_checkpoint(self, line: dict[str, Any]) -> None:
        number = line["number"]
        where = f"checkpoint #{number}"
        document: str = line["document"]
        body = document.encode("utf-8")
        doc, is_canonical = canonical(document)
        if not is_canonical:
            self.problem(where, None, "document", "not in RFC 8785 canonical form")
        if doc.get("type") not in (CHECKPOINT_V1, CHECKPOINT_V2):
            self.problem(where, None, "document", f"type is neither {CHECKPOINT_V1} nor {CHECKPOINT_V2}")
        elif (doc.get("type") == CHECKPOINT_V2) != all(name in doc for name in MERCHANT_FIELDS):
            self.problem(where, None, "document", "the merchant fields do not match the document's type")
        if doc.get("number") != number or doc.get("public_key") != line["public_key"]:
            self.problem(where, None, "document", "the line's number or key differ from the signed document")
        if hashlib.sha256(body).hexdigest() != line["hash"]:
            self.problem(where, None, "hash", "the hash does not match the document")
        previous = self.checkpoints[-1] if self.checkpoints else None
        want = previous.number + 1 if previous else 1
        if number != want:
            self.problem(where, None, "numbering", f"expected checkpoint #{want}")
        if doc.get("previous_hash") != (previous.hash if previous else GENESIS):
            self.problem(where, None, "chain", "previous_hash does not name the checkpoint before it")
        key_hex = str(doc.get("public_key", ""))
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(bytes.fromhex(line["signature"]), body)
        except (ValueError, InvalidSignature):
            self.problem(where, None, "signature", "the Ed25519 signature does not verify")
        if self.trusted and key_hex.lower() not in self.trusted:
            self.problem(where, None, "key", f"signed by {key_hex[:16]}..., not by a key given with --public-key")
        self.keys.add(key_hex)
        self.checkpoints.append(Checkpoint(number, line["hash"], doc))

    def on_head(self, line: dict[str, Any]) -> None:
        number, case_id, seq, hash_ = int(line["checkpoint"]), str(line["case_id"]), int(line["seq"]), line["hash"]
        self.heads.setdefault(number, []).append((case_id, seq, hash_))
        self.needed.setdefault(case_id, []).append((number, seq, hash_))

    def on_merchant_head(self, line: dict[str, Any]) -> None:
        number, merchant_id = int(line["checkpoint"]), str(line["merchant_id"])
        seq, hash_ = int(line["seq"]), line["hash"]
        self.merchant_heads.setdefault(number, []).append((merchant_id, seq, hash_))
        self.merchant_needed.setdefault(merchant_id, []).append((number, seq, hash_))

    def on_proof(self, line: dict[str, Any]) -> None:
        self.proof = line

    def on_merchant_event(self, line: dict[str, Any]) -> None:
        merchant_id, seq = str(line["merchant_id"]), int(line["seq"])
        if self.merchant is None or self.merchant.case_id != merchant_id:
            if self.merchant is not None:
                self.finish_merchant(self.merchant)
            self.merchant = CaseState(merchant_id, owner="merchant")
            if merchant_id in self.merchants:
                self.problem(f"merchant {merchant_id}", seq, "reordered", "this merchant's events are not together")
                self.merchant.damaged = True
            self.merchants[merchant_id] = self.merchant
        state = self.merchant
        self.merchant_events += 1
        if not state.damaged:
            found = self.check_event(state, line, seq)
            if found is not None:
                kind, at, detail = found
                self.problem(state.where, at, kind, detail)
                state.damaged = True
        state.hashes[seq] = str(line.get("hash"))
        state.prev = str(line.get("hash"))
        state.expected = max(state.expected, seq + 1)

    def finish_merchant(self, state: CaseState) -> None:
        if not state.damaged:
            self.check_against_heads(state, self.merchant_needed.get(state.case_id, []))

    def standing_problem(self, state: CaseState, doc: dict[str, Any]) -> str | None:
        """A case event that names the merchant standing its decision relied on must agree
        with the merchant's log in the file (docs/audit.md, merchant logs)."""
        data = doc.get("data")
        if doc.get("seq") == 1 and isinstance(data, dict):
            state.merchant_id = data.get("merchant_id")
        standing = data.get("merchant_flag") if isinstance(data, dict) else None
        if not isinstance(standing, dict):
            return None
        seq, flagged = standing.get("seq"), standing.get("flagged")
        if not isinstance(seq, int) or not isinstance(flagged, bool):
            return "the recorded merchant standing is malformed"
        if seq == 0:
            return None if not flagged else "records a flagged merchant without a merchant log"
        log = self.merchants.get(str(state.merchant_id))
        if log is None:
            if self.header is not None and self.header.get("complete"):
                return f"relies on seq {seq} of merchant {state.merchant_id}'s log, which the export does not hold"
            return None
        if log.damaged:
            return None  # that log's own damage is reported already
        if seq not in log.flagged:
            return f"relies on seq {seq} of merchant {state.merchant_id}'s log, which ends at seq {log.expected - 1}"
        if log.flagged[seq] != flagged:
            said = "flagged" if log.flagged[seq] else "not flagged"
            return (
                f"records merchant {state.merchant_id} as {'' if flagged else 'not '}flagged at its seq {seq}; "
                f"the merchant's log says {said}"
            )
        return None

    def on_event(self, line: dict[str, Any]) -> None:
        case_id, seq = str(line["case_id"]), int(line["seq"])
        if self.merchant is not None:  # the merchants' section is over
            self.finish_merchant(self.merchant)
            self.merchant = None
        if self.case is None or self.case.case_id != case_id:
            if self.case is not None:
                self.finish_case(self.case)
            self.case = CaseState(case_id)
            if case_id in self.finished:
                self.problem(f"case {case_id}", seq, "reordered", "this case's events are not together in the file")
                self.damaged_cases.add(case_id)
                self.case.damaged = True
        state = self.case
        self.events += 1
        if state.damaged:
            state.hashes[seq] = str(line.get("hash"))
            state.expected = max(state.expected, seq + 1)
            return
        found = self.check_event(state, line, seq)
        if found is not None:
            kind, at, detail = found
            self.problem(f"case {case_id}", at, kind, detail)
            self.damaged_cases.add(case_id)
            state.damaged = True
        state.hashes[seq] = str(line.get("hash"))
        state.prev = str(line.get("hash"))
        state.expected = max(state.expected, seq + 1)

    def check_event(self, state: CaseState, line: dict[str, Any], seq: int) -> tuple[str, int, str] | None:
        if seq > state.expected:
            return "deleted", state.expected, f"the next event in the file is seq {seq}"
        if seq < state.expected:
            return "reordered", seq, f"seq {seq} comes after seq {state.expected - 1}"
        body: str = line["body"]
        try:
            doc, is_canonical = canonical(body)
        except ValueError:
            return "changed", seq, "the body is not JSON"
        if not is_canonical:
            return "changed", seq, "the body is not in RFC 8785 canonical form"
        key = "case_id" if state.owner == "case" else "merchant_id"
        if not isinstance(doc, dict) or doc.get(key) != state.case_id or doc.get("seq") != seq:
            return "changed", seq, f"the body names another {state.owner} or seq than its line"
        if line["prev_hash"] != state.prev:
            return "changed", seq, "prev_hash does not link to the previous event's hash"
        if event_hash(state.prev, body.encode("utf-8")) != line["hash"]:
            return "changed", seq, "the hash does not match sha256(prev_hash || body)"
        if state.owner == "merchant":
            kind = doc.get("type")
            if kind not in ("flag_raised", "flag_cleared"):
                return "changed", seq, f"a merchant's log holds flag_raised and flag_cleared only, not {kind!r}"
            state.flagged[seq] = kind == "flag_raised"
            return None
        standing = self.standing_problem(state, doc)
        if standing is not None:
            return "standing", seq, standing
        if doc.get("type") == "personal_data_erased":
            data = doc.get("data")
            for ref in data.get("refs", []) if isinstance(data, dict) else []:
                self.erased_refs[str(ref)] = state.case_id
        if self.header is not None and self.header.get("disclosures"):
            for found in MARKER.finditer(body):
                self.markers[found.group(1)] = (state.case_id, found.group(2))
        self.workflow_refs.add(str(doc.get("workflow_version")))
        self.policy_refs.add(str(doc.get("policy_version")))
        return None

    def finish_case(self, state: CaseState) -> None:
        self.finished.add(state.case_id)
        if state.damaged:
            return
        if self.check_against_heads(state, self.needed.get(state.case_id, [])):
            self.damaged_cases.add(state.case_id)
        if self.proof is not None and self.proof.get("case_id") == state.case_id:
            self.check_proof(state)

    def check_against_heads(self, state: CaseState, heads: list[tuple[int, int, str]]) -> bool:
        """Does the log still hold, at each checkpointed seq, the hash a checkpoint saw?
        Reports the earliest difference; True when there was one."""
        last = state.expected - 1
        worst: tuple[int, str, str] | None = None
        for number, seq, hash_ in heads:
            if seq > last:
                found = (last + 1, "truncated", f"the log ends at seq {last}; checkpoint #{number} saw seq {seq}")
            elif state.hashes.get(seq) != hash_:
                found = (seq, "changed", f"seq {seq} has another hash than checkpoint #{number} saw")
            else:
                continue
            if worst is None or found[0] < worst[0]:
                worst = found
        if worst is not None:
            self.problem(state.where, worst[0], worst[1], worst[2])
            state.damaged = True
        return worst is not None

    def check_proof(self, state: CaseState) -> None:
        proof = self.proof
        assert proof is not None
        where = f"case {state.case_id}"
        checkpoint = next((c for c in self.checkpoints if c.number == proof["checkpoint"]), None)
        if checkpoint is None:
            self.problem(where, None, "proof", f"the proof names checkpoint #{proof['checkpoint']}, not in the file")
            return
        seq = int(proof["seq"])
        leaf = leaf_bytes(state.case_id, seq, str(state.hashes.get(seq)))
        if leaf.decode("utf-8") != proof["leaf"]:
            self.problem(where, seq, "proof", "the proof's leaf is not this case's event at the checkpointed seq")
        elif proof["root"] != checkpoint.doc.get("merkle_root") or proof["tree_size"] != checkpoint.doc.get(
            "case_count"
        ):
            self.problem(where, seq, "proof", "the proof's root or size is not the checkpoint's")
        elif not verify_inclusion(
            leaf, int(proof["index"]), int(proof["tree_size"]), list(proof["path"]), proof["root"]
        ):
            self.problem(where, seq, "proof", f"the inclusion proof in checkpoint #{checkpoint.number} fails")
        else:
            self.notes.append(
                f"case {state.case_id}: head seq {seq} proven included in checkpoint #{checkpoint.number} "
                f"(leaf {proof['index']} of {proof['tree_size']})"
            )

    def on_disclosure(self, line: dict[str, Any]) -> None:
        case_id, ref = str(line["case_id"]), str(line["ref"])
        salt, value = bytes.fromhex(line["salt"]), line["value"]
        if not isinstance(value, str):
            raise TypeError("a disclosure's value is text")
        where = f"case {case_id}"
        self.disclosed += 1
        if ref in self.erased_refs:
            self.problem(where, None, "erased", f"ref {ref} is disclosed although the log records it erased")
            return
        marker = self.markers.get(ref)
        if marker is None or marker[0] != case_id:
            self.problem(where, None, "disclosure", f"no marker of this case commits to ref {ref}")
        elif hashlib.sha256(salt + value.encode("utf-8")).hexdigest() != marker[1]:
            self.problem(where, None, "disclosure", f"the value disclosed for ref {ref} does not match its marker")

    def on_workflow(self, line: dict[str, Any]) -> None:
        version = line["version"]
        if hashlib.sha256(rfc8785.dumps(line["document"])).hexdigest() != version:
            self.problem(f"workflow {version[:12]}", None, "changed", "the document does not hash to its version")
        self.workflows.add(version)

    def on_policy(self, line: dict[str, Any]) -> None:
        # files: JSON text of {file name: content}; the version is sha256 over, for each file
        # in name order, name NUL byte-length NUL content (docs/audit.md).
        version = line["version"]
        files = json.loads(line["files"]) if isinstance(line["files"], str) else line["files"]
        digest = hashlib.sha256()
        for name in sorted(files):
            content = files[name].encode("utf-8")
            digest.update(name.encode("utf-8") + b"\0" + str(len(content)).encode("ascii") + b"\0" + content)
        if digest.hexdigest() != version:
            self.problem(f"policy set {version[:12]}", None, "changed", "the files do not hash to their version")
        self.policies.add(version)

    def on_end(self, line: dict[str, Any]) -> None:
        self.end = line

    # -- conclusions

    def close(self) -> None:
        if self.merchant is not None:
            self.finish_merchant(self.merchant)
        if self.case is not None:
            self.finish_case(self.case)
        if self.header is None:
            self.problem("file", None, "format", "no header line")
        if self.end is None:
            self.problem("file", None, "format", "no end line: the file is cut off")
        else:
            if self.end.get("digest") != self.digest.hexdigest():
                self.problem("file", None, "digest", "the bytes before the end line do not match its digest")
            stated = {k: v for k, v in self.end.get("counts", {}).items() if k != "cases"}
            counted = {k: v for k, v in self.counts.items() if k != "end"}
            if stated != counted:
                self.problem("file", None, "format", f"the end line counts {stated}, the file holds {counted}")
        if self.proof is not None and self.proof.get("case_id") not in self.finished:
            self.problem(
                f"case {self.proof.get('case_id')}", None, "proof", "the proof's case has no events in the file"
            )
        for case_id, heads in sorted(self.needed.items()):
            if case_id not in self.finished:
                number = min(n for n, _seq, _hash in heads)
                self.problem(f"case {case_id}", 1, "deleted", f"checkpoint #{number} saw this case; no events remain")
        for merchant_id, heads in sorted(self.merchant_needed.items()):
            if merchant_id not in self.merchants:
                number = min(n for n, _seq, _hash in heads)
                self.problem(
                    f"merchant {merchant_id}",
                    1,
                    "deleted",
                    f"checkpoint #{number} saw this merchant's log; no events remain",
                )
        for version in sorted(self.workflow_refs - self.workflows):
            self.problem(f"workflow {version[:12]}", None, "missing", "events name this workflow version; no document")
        missing_policies = self.policy_refs - self.policies
        if missing_policies:
            self.notes.append(f"policy versions named by events but not exported: {len(missing_policies)}")
        if self.header is not None and self.header.get("complete"):
            self.check_trees()
        elif self.checkpoints:
            self.notes.append("a partial export: checkpoint roots cannot be recomputed from it")

    def check_trees(self) -> None:
        """Each checkpoint's stored heads must hash to its signed delta; the heads as of
        the latest checkpoint (every one with --all-roots) must give its signed root. The
        same for the merchant logs' tree of every v2 checkpoint."""
        numbers = {c.number for c in self.checkpoints}
        for number in self.heads.keys() - numbers:
            self.problem(f"checkpoint #{number}", None, "delta", "head lines name a checkpoint not in the file")
        for number in self.merchant_heads.keys() - numbers:
            self.problem(
                f"checkpoint #{number}", None, "delta", "merchant head lines name a checkpoint not in the file"
            )
        cases: dict[str, tuple[int, str]] = {}
        merchants: dict[str, tuple[int, str]] = {}
        for index, checkpoint in enumerate(self.checkpoints):
            doc, where = checkpoint.doc, f"checkpoint #{checkpoint.number}"
            root_due = self.all_roots or index == len(self.checkpoints) - 1
            self.check_tree(
                where,
                self.heads.get(checkpoint.number, []),
                cases,
                leaf_bytes,
                root_due,
                (doc.get("delta_count"), doc.get("delta_hash")),
                (doc.get("merkle_root"), doc.get("case_count"), doc.get("event_count")),
                "case",
            )
            if doc.get("type") == CHECKPOINT_V2:
                self.check_tree(
                    where,
                    self.merchant_heads.get(checkpoint.number, []),
                    merchants,
                    merchant_leaf_bytes,
                    root_due,
                    (doc.get("merchant_delta_count"), doc.get("merchant_delta_hash")),
                    (doc.get("merchant_root"), doc.get("merchant_count"), doc.get("merchant_event_count")),
                    "merchant",
                )
            elif self.merchant_heads.get(checkpoint.number):
                self.problem(where, None, "delta", "merchant head lines name a v1 checkpoint, which signed none")

    def check_tree(
        self,
        where: str,
        lines: list[tuple[str, int, str]],
        current: dict[str, tuple[int, str]],
        leaf: Any,
        root_due: bool,
        signed_delta: tuple[Any, Any],
        signed_root: tuple[Any, Any, Any],
        logs: str,
    ) -> None:
        """One tree of one checkpoint: its head lines against the signed delta, then (when
        ``root_due``) the heads as of it against the signed root and counts."""
        delta = sorted(lines)
        digest = hashlib.sha256(b"".join(leaf_hash(leaf(*h)) for h in delta)).hexdigest()
        if (len(delta), digest) != signed_delta:
            self.problem(where, None, "delta", f"the {logs} head lines do not hash to the signed delta")
        for owner, seq, hash_ in delta:
            current[owner] = (seq, hash_)
        if not root_due:
            return
        ordered = sorted(current.items())
        root = merkle_root([leaf_hash(leaf(c, s, h)) for c, (s, h) in ordered])
        events = sum(s for s, _h in current.values())
        if root.hex() != signed_root[0]:
            self.problem(where, None, "root", f"the {logs} heads do not give the signed Merkle root")
        elif (len(ordered), events) != signed_root[1:]:
            self.problem(where, None, "root", f"{logs} or event count differs from the signed document")
        else:
            self.notes.append(f"{where}: Merkle root over {count(len(ordered), logs + ' head')} recomputed and matches")


def count(number: int, noun: str) -> str:
    """ "1 case", "2 cases"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def feed_all(verifier: Verifier, stream: BinaryIO) -> None:
    for raw in stream:
        verifier.feed(raw)


def report(verifier: Verifier, name: str, quiet: bool) -> None:
    out = sys.stdout
    header = verifier.header or {}
    if not quiet:
        scope = "complete" if header.get("complete") else f"partial {header.get('scope')}"
        print(f"export {name}", file=out)
        print(
            f"  format {header.get('format')} v{header.get('format_version')}, created {header.get('created_at')} "
            f"by {header.get('engine')}, {scope}",
            file=out,
        )
        chains = "every chain verifies" if not verifier.damaged_cases else f"{len(verifier.damaged_cases)} damaged"
        print(f"  {count(len(verifier.finished), 'case')}, {count(verifier.events, 'event')}: {chains}", file=out)
        if verifier.merchants:
            damaged = sum(1 for m in verifier.merchants.values() if m.damaged)
            logs = "every chain verifies" if not damaged else f"{damaged} damaged"
            print(
                f"  {count(len(verifier.merchants), 'merchant log')}, {count(verifier.merchant_events, 'event')}: "
                f"{logs}",
                file=out,
            )
        if verifier.checkpoints:
            keys = ", ".join(sorted(k[:16] + "..." for k in verifier.keys))
            pinned = "pinned" if verifier.trusted else "not pinned: pass --public-key to require it"
            print(f"  {count(len(verifier.checkpoints), 'checkpoint')}, signed by {keys} ({pinned})", file=out)
        else:
            print("  no checkpoints", file=out)
        if header.get("disclosures") or verifier.erased_refs:
            print(
                f"  {count(verifier.disclosed, 'disclosed value')} checked against their markers; "
                f"{count(len(verifier.erased_refs), 'erased value')} recorded, none disclosed"
                if not any(p.kind == "erased" for p in verifier.problems)
                else f"  {count(verifier.disclosed, 'disclosed value')}: an erased value is disclosed",
                file=out,
            )
        for note in verifier.notes:
            print(f"  {note}", file=out)
    for problem in verifier.problems:
        print(f"PROBLEM {problem}", file=out)
    if verifier.problems:
        print(f"RESULT: DAMAGED ({count(len(verifier.problems), 'problem')})", file=out)
    else:
        print("RESULT: INTACT", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("export", help="the export file (JSON Lines), or - for standard input")
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="HEX",
        help="a trusted Ed25519 public key (64 hex digits); checkpoints must be signed by one. Repeatable.",
    )
    parser.add_argument("--all-roots", action="store_true", help="recompute every checkpoint's root, not only the last")
    parser.add_argument("--quiet", action="store_true", help="print only problems and the result")
    args = parser.parse_args(argv)
    verifier = Verifier(args.public_key, all_roots=args.all_roots)
    try:
        if args.export == "-":
            feed_all(verifier, sys.stdin.buffer)
        else:
            with open(args.export, "rb") as stream:
                feed_all(verifier, stream)
    except OSError as exc:
        print(f"cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    verifier.close()
    report(verifier, args.export, args.quiet)
    return 1 if verifier.problems else 0


if __name__ == "__main__":
    sys.exit(main())
