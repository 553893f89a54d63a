"""Checkpoints: the RFC 6962 tree, inclusion proofs, signatures, chaining, keys, and one writer at a time."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, text, update
from sqlmodel import Session

from audit.checkpoints import (
    TRY_CHECKPOINT_LOCK,
    check_checkpoint,
    checkpoint_document,
    get_checkpoint,
    inclusion_proof,
    iter_checkpoints,
    list_checkpoints,
    write_checkpoint,
)
from audit.keys import load_public_key, load_signing_key, private_key_pem, public_key_hex
from audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    audit_path,
    delta_digest,
    leaf_bytes,
    leaf_hash,
    merchant_leaf_bytes,
    merkle_root,
    node_hash,
    verify_inclusion,
)
from cases.service import CaseService
from store.db import Database
from store.errors import AuditIntegrityError
from store.tables import CHECKPOINTS
from tests.support.actors import CONSUMER, T0
from tests.support.audit_builders import build_cases, extend_cases
from tests.support.builders import new_case
from workflow.chain import GENESIS_HASH, canonical_bytes, link
from workflow.errors import NotFoundError
from workflow.merchant import MerchantEvent

# Test vectors of certificate-transparency-go (testonly/constants.go): leaf inputs,
# the roots of the trees of their first 1..8 leaves, and some audit paths.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def reference_root(digests: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally."""
    if not digests:
        return hashlib.sha256(b"").digest()
    if len(digests) == 1:
        return digests[0]
    k = 1
    while k * 2 < len(digests):
        k *= 2
    return node_hash(reference_root(digests[:k]), reference_root(digests[k:]))


# --- the tree ---------------------------------------------------------------------------------


def test_roots_and_paths_match_the_certificate_transparency_vectors() -> None:
    digests = [leaf_hash(leaf) for leaf in CT_LEAVES]
    for n in range(1, 9):
        assert merkle_root(digests[:n]).hex() == CT_ROOTS[n - 1]
    for index, size, expected in CT_PATHS:
        path, root = audit_path(digests[:size], index, size)
        assert [p.hex() for p in path] == expected
        assert root.hex() == CT_ROOTS[size - 1]
        assert verify_inclusion(leaf=CT_LEAVES[index], index=index, tree_size=size, path=expected, root=root.hex())
    assert merkle_root([]).hex() == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


def test_streamed_root_equals_the_recursive_definition() -> None:
    rng = random.Random(5)
    digests = [rng.randbytes(32) for _ in range(300)]
    tree = MerkleAccumulator()
    for n in range(0, 300):
        assert tree.root() == reference_root(digests[:n]), n
        tree.add(digests[n])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33, 100])
def test_every_leaf_has_a_proof_and_wrong_proofs_fail(size: int) -> None:
    leaves = [leaf_bytes(f"DSP-{i:04d}", i + 1, f"{i:064x}") for i in range(size)]
    digests = [leaf_hash(leaf) for leaf in leaves]
    root = reference_root(digests).hex()
    for index in range(size):
        path, streamed_root = audit_path(iter(digests), index, size)
        assert streamed_root.hex() == root
        hexes = [p.hex() for p in path]
        assert verify_inclusion(leaf=leaves[index], index=index, tree_size=size, path=hexes, root=root)
        other = leaves[(index + 1) % size] if size > 1 else leaf_bytes("DSP-x", 1, "0" * 64)
        assert not verify_inclusion(leaf=other, index=index, tree_size=size, path=hexes, root=root)
        if size > 1:
            assert not verify_inclusion(
                leaf=leaves[index], index=(index + 1) % size, tree_size=size, path=hexes, root=root
            )
            assert not verify_inclusion(leaf=leaves[index], index=index, tree_size=size, path=hexes[:-1], root=root)
            flipped = [*hexes[:-1], ("0" if hexes[-1][0] != "0" else "1") + hexes[-1][1:]]
            assert not verify_inclusion(leaf=leaves[index], index=index, tree_size=size, path=flipped, root=root)
    assert not verify_inclusion(leaf=leaves[0], index=size, tree_size=size, path=[], root=root)


def test_leaf_bytes_are_the_rfc8785_form() -> None:
    for case_id in ["DSP-01JH3K8V9Q-7TZ4XW", 'odd "quoted" \\ id', "案件-1", "tab\there", ""]:
        for seq in (1, 42, 2**53 - 1):
            assert leaf_bytes(case_id, seq, "ab" * 32) == rfc8785.dumps(
                {"case_id": case_id, "hash": "ab" * 32, "seq": seq}
            )


# --- keys -------------------------------------------------------------------------------------


def test_signing_keys_load_from_pem_seed_and_files(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = private_key_pem(key)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    expected = public_key_hex(key)
    (tmp_path / "key.pem").write_text(pem)
    (tmp_path / "seed.bin").write_bytes(seed)
    for source in (
        pem,
        pem.replace("\n", "\\n"),  # as an environment variable often carries it
        seed.hex(),
        base64.b64encode(seed).decode(),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
        str(tmp_path / "key.pem"),
        tmp_path / "key.pem",
        tmp_path / "seed.bin",
        seed,
    ):
        assert public_key_hex(load_signing_key(source)) == expected, source
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public_key(public_pem) == load_public_key(expected.upper()) == expected


def test_bad_keys_are_refused_without_echoing_them(tmp_path: Path) -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ValueError, match="not Ed25519"):
        load_signing_key(rsa_pem)
    secret = "s3cr3t-but-not-a-key"
    with pytest.raises(ValueError) as excinfo:
        load_signing_key(secret)
    assert secret not in str(excinfo.value)
    with pytest.raises(ValueError):
        load_signing_key("ab" * 31)
    with pytest.raises(ValueError):
        load_public_key("zz" * 32)


# --- stored checkpoints -----------------------------------------------------------------------


def test_checkpoints_are_signed_chained_and_cover_every_head(
    service: CaseService, signing_key: Ed25519PrivateKey
) -> None:
    db = service.db
    rng = random.Random(3)
    empty = write_checkpoint(db, signing_key, T0)
    assert empty is not None and (empty.number, empty.case_count, empty.merkle_root) == (1, 0, EMPTY_ROOT)
    built = build_cases(service, count=9, events_per_case=lambda i: i + 1, rng=rng)
    second = write_checkpoint(db, signing_key, T0 + timedelta(hours=1))
    extend_cases(service, built.case_ids[:3], comments=2, now=T0 + timedelta(hours=2), rng=rng)
    third = write_checkpoint(db, signing_key, T0 + timedelta(hours=3))
    assert second is not None and third is not None
    assert (second.case_count, second.event_count, second.delta_count) == (9, sum(range(1, 10)), 9)
    assert (third.case_count, third.event_count, third.delta_count) == (9, sum(range(1, 10)) + 6, 3)
    assert [empty.previous_hash, second.previous_hash, third.previous_hash] == [GENESIS_HASH, empty.hash, second.hash]

    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(third.public_key))
    public.verify(bytes.fromhex(third.signature), third.document.encode())  # raises if wrong
    doc = json.loads(third.document)
    assert rfc8785.dumps(doc) == third.document.encode()
    assert doc == {
        "type": "dispute-engine/checkpoint/v2",
        "number": 3,
        "created_at": "2026-03-02T05:00:00.000000Z",
        "case_count": 9,
        "event_count": 51,
        "merkle_root": third.merkle_root,
        "delta_count": 3,
        "delta_hash": third.delta_hash,
        "previous_hash": second.hash,
        "public_key": public_key_hex(signing_key),
        # No merchant has a log: the merchant logs' tree is empty.
        "merchant_count": 0,
        "merchant_event_count": 0,
        "merchant_root": EMPTY_ROOT,
        "merchant_delta_count": 0,
        "merchant_delta_hash": hashlib.sha256(b"").hexdigest(),
    }
    assert third.hash == hashlib.sha256(third.document.encode()).hexdigest()

    with db.read() as session:
        stored = list(iter_checkpoints(session))
        assert [c.number for c in stored] == [1, 2, 3] and stored[2] == third
        assert [c.number for c in list_checkpoints(session, after=1, limit=1)] == [2]
        assert get_checkpoint(session) == third and get_checkpoint(session, 2) == second
        previous = None
        for checkpoint in stored:
            assert check_checkpoint(checkpoint, previous, trusted_keys=[public_key_hex(signing_key)]) == []
            previous = checkpoint
        # The root is over (case_id, seq, hash) of every case, sorted by case id.
        heads = sorted(
            (r.id, r.version, r.head_hash) for r in session.execute(text("SELECT id, version, head_hash FROM cases"))
        )
        assert merkle_root(leaf_hash(leaf_bytes(*h)) for h in heads).hex() == third.merkle_root

        for case_id in built.case_ids:
            for number in (2, 3):
                proof = inclusion_proof(session, case_id=case_id, checkpoint=number)
                assert proof.verify() and proof.root == (second if number == 2 else third).merkle_root
                assert proof.tree_size == 9 and json.loads(proof.leaf)["case_id"] == case_id
            latest = inclusion_proof(session, case_id=case_id)
            assert latest.checkpoint == 3
            wrong = leaf_bytes(case_id, latest.seq + 1, latest.hash)
            assert not verify_inclusion(
                leaf=wrong, index=latest.index, tree_size=latest.tree_size, path=latest.path, root=latest.root
            )
        extended = inclusion_proof(session, case_id=built.case_ids[0], checkpoint=3)
        assert extended.seq == inclusion_proof(session, case_id=built.case_ids[0], checkpoint=2).seq + 2
        with pytest.raises(NotFoundError):
            inclusion_proof(session, case_id=built.case_ids[0], checkpoint=1)  # not filed yet then
        with pytest.raises(NotFoundError):
            inclusion_proof(session, case_id="DSP-NOPE", checkpoint=3)
        with pytest.raises(NotFoundError):
            get_checkpoint(session, 99)


def test_tampered_checkpoints_are_named(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    db = service.db
    service.file(actor=CONSUMER, new_case=new_case())
    for hour in range(4):
        assert write_checkpoint(db, signing_key, T0 + timedelta(hours=hour)) is not None
    other_key = public_key_hex(Ed25519PrivateKey.generate())

    def problems(**changes: object) -> list[tuple[int, str]]:
        with Session(db.engine) as session, session.begin() as transaction:
            if changes.pop("drop", None):
                session.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.number == 2))
            elif changes:
                session.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.number == 3).values(**changes))
            found: list[tuple[int, str]] = []
            previous = None
            for checkpoint in iter_checkpoints(session):
                found += [(checkpoint.number, kind) for kind, _ in check_checkpoint(checkpoint, previous)]
                previous = checkpoint
            transaction.rollback()
        return found

    assert problems() == []
    assert problems(case_count=2) == [(3, "document")]
    assert problems(signature="00" * 64) == [(3, "signature")]
    assert problems(hash="ab" * 32) == [(3, "hash"), (4, "chain")]
    assert problems(drop=True) == [(3, "numbering"), (3, "chain")]
    assert problems(document=json.dumps(json.loads(get_document(db, 3)), indent=1)) == [
        (3, "document"),
        (3, "hash"),
        (3, "signature"),
    ]
    with db.read() as session:
        latest = get_checkpoint(session)
        previous = get_checkpoint(session, latest.number - 1)
    assert [k for k, _ in check_checkpoint(latest, previous, trusted_keys=[other_key])] == ["key"]


def get_document(db: Database, number: int) -> str:
    with db.read() as session:
        return get_checkpoint(session, number).document


def test_a_proof_from_tampered_heads_is_refused(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    built = build_cases(service, count=4, events_per_case=lambda i: 2, rng=random.Random(1))
    write_checkpoint(service.db, signing_key, T0)
    with service.db.write() as session:
        session.execute(text("UPDATE checkpoint_heads SET seq = 1 WHERE case_id = :c"), {"c": built.case_ids[1]})
    with service.db.read() as session, pytest.raises(AuditIntegrityError):
        inclusion_proof(session, case_id=built.case_ids[0])


# --- one writer at a time ---------------------------------------------------------------------


def test_concurrent_writers_make_one_checkpoint(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    """Many workers on the same schedule: one checkpoint. On PostgreSQL the others fail the
    advisory lock or find the fresh checkpoint; on SQLite they queue and find it."""
    build_cases(service, count=20, events_per_case=lambda i: 3, rng=random.Random(2))
    start = threading.Barrier(6)
    results: list[object] = []

    def worker() -> None:
        start.wait()
        results.append(write_checkpoint(service.db, signing_key, T0, min_interval=timedelta(hours=1)))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1, results
    with service.db.read() as session:
        assert [c.number for c in iter_checkpoints(session)] == [1]


def test_the_advisory_lock_holder_is_the_only_writer(service: CaseService, signing_key: Ed25519PrivateKey) -> None:
    if service.db.dialect != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises write transactions")
    build_cases(service, count=3, events_per_case=lambda i: 2, rng=random.Random(4))
    with Session(service.db.engine) as holder, holder.begin():
        assert holder.execute(TRY_CHECKPOINT_LOCK).scalar()
        assert write_checkpoint(service.db, signing_key, T0) is None  # someone else is mid-checkpoint
    written = write_checkpoint(service.db, signing_key, T0)  # the holder has committed
    assert written is not None and written.number == 1


def test_the_worked_examples_in_docs_audit_md() -> None:
    """docs/audit.md promises these bytes to third-party verifiers; keep them true."""
    body: dict[str, Any] = {
        "case_id": "DSP-EXAMPLE-000001",
        "seq": 1,
        "type": "message",
        "at": "2026-03-02T02:00:00.000000Z",
        "actor": {"id": "c-1", "role": "consumer"},
        "data": {"body": "电水壶坏了", "internal": False, "message_id": "msg1", "party": "consumer"},
        "workflow_version": "a" * 64,
        "policy_version": "b" * 64,
    }
    first = rfc8785.dumps(body)
    assert len(first) == 391
    h1 = hashlib.sha256(bytes(32) + first).hexdigest()
    assert h1 == "f2bb6faf9f99e48679d821963dda3f339ec48c7b3ede2a4e05d3538876c7ab0c"
    second: dict[str, Any] = dict(
        body, seq=2, data={"body": "Any news?", "internal": False, "message_id": "msg2", "party": "consumer"}
    )
    h2 = hashlib.sha256(bytes.fromhex(h1) + rfc8785.dumps(second)).hexdigest()
    assert h2 == "22f0f8589d0eef22482a3a4484bc4059fb854b0544ab0045b61eacd0b0577393"

    heads = [("DSP-A", 3, "11" * 32), ("DSP-B", 1, "22" * 32), ("DSP-C", 7, "33" * 32)]
    digests = [leaf_hash(leaf_bytes(*h)) for h in heads]
    root = merkle_root(digests).hex()
    assert root == "2a18735bb76caf645781de919b98d35fcf5dbec7e6af408e635a3d0c5b0fd710"
    key = load_signing_key("01" * 32)
    document = rfc8785.dumps(
        {
            "type": "dispute-engine/checkpoint/v1",
            "number": 1,
            "created_at": "2026-03-02T03:00:00.000000Z",
            "case_count": 3,
            "event_count": 11,
            "merkle_root": root,
            "delta_count": 3,
            "delta_hash": hashlib.sha256(b"".join(digests)).hexdigest(),
            "previous_hash": "0" * 64,
            "public_key": public_key_hex(key),
        }
    )
    assert hashlib.sha256(document).hexdigest() == "72cfa380c7145c1139440b4840e88e2fe63d934bacb176ef83bef46a245644bc"
    assert key.sign(document).hex().startswith("b5d99ada1b53c413e3689e3cd5c335b10a96ae6851696fa33cb6940d8d87cf1a")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    for value in (h1, h2, root, "72cfa380c7145c1139440b4840e88e2fe63d934bacb176ef83bef46a245644bc"):
        assert value in docs


def test_the_merchant_log_and_v2_checkpoint_examples_in_docs_audit_md() -> None:
    """The merchant event, its leaf, and the v2 document docs/audit.md shows, made by the engine's code."""
    event = MerchantEvent(
        "m-1001",
        1,
        "flag_raised",
        "2026-03-02T03:00:00.000000Z",
        "system",
        "system",
        {
            "flag": "merchant_flagged",
            "flag_id": 1,
            "reasons": ["complaints filed against the merchant: 31 (threshold 30)"],
            "rules_version": "c" * 64,
            "period": {"since": "2026-01-31T03:00:00.000000Z", "until": "2026-03-02T03:00:00.000000Z"},
        },
    )
    body = canonical_bytes(event.body())
    assert len(body) == 416
    h1 = link(GENESIS_HASH, body)
    assert h1 == "a18c3892479b319e0cb2a3d153c29098c9c4eb87e81dfca5380b291fb9e36590"
    merchant_leaf = leaf_hash(merchant_leaf_bytes("m-1001", 1, h1))
    assert merchant_leaf.hex() == "dd3a663df3c8f481226c7e886ae2898ee0b00bc18b41609ba901e14e3501b6b1"

    heads = [("DSP-A", 3, "11" * 32), ("DSP-B", 1, "22" * 32), ("DSP-C", 7, "33" * 32)]
    digests = [leaf_hash(leaf_bytes(*h)) for h in heads]
    key = load_signing_key("01" * 32)
    document = rfc8785.dumps(
        checkpoint_document(
            number=1,
            created_at="2026-03-02T03:00:00.000000Z",
            case_count=3,
            event_count=11,
            merkle_root=merkle_root(digests).hex(),
            delta_count=3,
            delta_hash=hashlib.sha256(b"".join(digests)).hexdigest(),
            previous_hash=GENESIS_HASH,
            public_key=public_key_hex(key),
            merchant_count=1,
            merchant_event_count=1,
            merchant_root=merkle_root([merchant_leaf]).hex(),
            merchant_delta_count=1,
            merchant_delta_hash=delta_digest([("m-1001", 1, h1)], merchant_leaf_bytes)[1],
        )
    )
    digest = hashlib.sha256(document).hexdigest()
    assert digest == "1c61b477927337ce6d7ae88499e6aeb05308a5481bcfe74098e2b4abd886488e"
    signature = key.sign(document).hex()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    for value in (h1, merchant_leaf.hex(), document.decode(), digest, signature):
        assert value in docs
