"""Erasing a consumer: their words leave the database files, every proof still verifies.

A consumer files cases whose texts hold a Chinese name, a mobile number and an address; another
consumer files cases of their own. Once the first consumer is erased, the raw database (SQLite:
the file and its WAL, read as bytes; PostgreSQL: every row of every table, and ``pg_dump``'s
output) holds none of those strings, every event hash and the checkpoint are unchanged,
``verify_database`` and the standalone verifier pass, replay shows ``[erased]``, and the other
consumer's cases read in full.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from audit.checkpoints import write_checkpoint
from audit.export import export_jsonl
from audit.keys import generate_signing_key, public_key_hex
from audit.privacy import verify_erasures
from audit.replay import replay
from audit.verify import verify_database
from cases.service import CaseService
from outbox.inbox import set_contact
from privacy.markers import ERASED
from store.tables import CASE_KEYS, CONTACTS, EVENTS, ORDER_REFS, PERSONAL_VALUES, SUBJECTS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, OTHER_CONSUMER, T0
from tests.support.builders import make_service, new_case
from tests.support.verifier import run_tool
from workflow.errors import NotFoundError

NAME = "张伟"
MOBILE = "13812345678"
ADDRESS = "上海市浦东新区世纪大道100号"
ORDER = "TB-20261111-7788"
OTHER_NAME = "李娜"
OTHER_MOBILE = "13987654321"
SECRETS = (NAME, MOBILE, ADDRESS, ORDER)


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url)
    yield svc
    svc.db.dispose()


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return generate_signing_key()


def _file_closed_case(service: CaseService, actor_id: str, name: str, mobile: str, order: str) -> str:
    actor = CONSUMER if actor_id == CONSUMER.id else OTHER_CONSUMER
    case = service.file(
        actor=actor,
        new_case=new_case(
            consumer_id=actor_id,
            subject=f"{name}的电水壶坏了",
            description=f"收件人{name}，电话{mobile}，地址{ADDRESS}",
            order_ref=order,
        ),
    )
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=actor, case_id=case.id, name="comment", data={"body": f"请打{mobile}找{name}"})
    service.execute(actor=actor, case_id=case.id, name="withdraw", reason=f"{name}已和商家和解")
    return case.id


def _raw_bytes(url: str) -> bytes:
    """Every byte the database keeps: SQLite's file and WAL; PostgreSQL's rows and pg_dump."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    schema = parsed.query["options"].split("=")[-1]  # type: ignore[union-attr]
    from sqlalchemy import create_engine

    engine = create_engine(url)
    chunks = []
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
        ).scalars()
        for table in list(tables):
            for row in conn.execute(text(f'SELECT t::text FROM "{schema}"."{table}" t')).scalars():
                chunks.append(row.encode("utf-8"))
    engine.dispose()
    dump = shutil.which("pg_dump")
    if dump is not None:
        server = parsed.set(query={}).render_as_string(hide_password=False).replace("+psycopg", "")
        out = subprocess.run([dump, "--data-only", "-n", schema, server], capture_output=True, check=True)
        chunks.append(out.stdout)
    return b"\n".join(chunks)


def _stored(value: bytes, url: str) -> bytes:
    """``value`` as the raw bytes hold it: itself in SQLite's file, hex text in PostgreSQL's rows."""
    return value if url.startswith("sqlite") else value.hex().encode("ascii")


def test_erasing_a_consumer_leaves_no_trace_and_every_proof(
    service: CaseService, db_url: str, signing_key: Ed25519PrivateKey, verifier: Path, tmp_path: Path
) -> None:
    mine = [_file_closed_case(service, "c-1", NAME, MOBILE, ORDER) for _ in range(2)]
    theirs = _file_closed_case(service, "c-2", OTHER_NAME, OTHER_MOBILE, "TB-OTHER-1")
    raw = _raw_bytes(db_url)
    for secret in SECRETS:
        # Protected from the start: the log and its projections hold markers, never the text.
        assert secret.encode("utf-8") not in raw, secret
    assert service.get(actor=CONSUMER, case_id=mine[0]).description.endswith(ADDRESS)
    checkpoint = write_checkpoint(service.db, signing_key, T0 + timedelta(hours=1))
    assert checkpoint is not None
    with service.db.read() as session:
        hashes_before = session.execute(select(EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.hash)).all()
        sealed = session.execute(select(PERSONAL_VALUES.c.sealed).where(PERSONAL_VALUES.c.case_id.in_(mine))).scalars()
        wrapped = session.execute(select(CASE_KEYS.c.wrapped).where(CASE_KEYS.c.case_id.in_(mine))).scalars()
        # What erasure must destroy: the sealed values and the wrapped keys that open them.
        shredded = [bytes(b) for b in (*sealed, *wrapped)]
    assert len(shredded) > 2 and all(_stored(b, db_url) in raw for b in shredded)

    outcome = service.erase_subject(user_id="c-1", basis="PIPL Art. 47 request", approved_by="adm-1")

    assert sorted(outcome.erased) == sorted(mine) and outcome.complete
    raw = _raw_bytes(db_url)
    assert mine[0].encode("ascii") in raw and theirs.encode("ascii") in raw  # the right bytes were read
    for secret in SECRETS:
        assert secret.encode("utf-8") not in raw, secret
    # Not even the ciphertext or the wrapped key lingers (SQLite: secure_delete and the WAL truncated).
    assert [b for b in shredded if _stored(b, db_url) in raw] == []
    with service.db.read() as session:
        assert session.execute(select(PERSONAL_VALUES).where(PERSONAL_VALUES.c.case_id.in_(mine))).all() == []
        keys = session.execute(select(CASE_KEYS).where(CASE_KEYS.c.case_id.in_(mine))).all()
        assert [k.wrapped for k in keys] == [None, None] and all(k.erased_at is not None for k in keys)
        assert session.execute(select(SUBJECTS.c.user_id).where(SUBJECTS.c.user_id == "c-1")).all() == []
        # The log only grew: each erased case got one personal_data_erased event.
        hashes_after = session.execute(select(EVENTS.c.case_id, EVENTS.c.seq, EVENTS.c.hash)).all()
        erased_events = session.execute(select(EVENTS.c.case_id).where(EVENTS.c.type == "personal_data_erased")).all()
    assert set(hashes_before) <= set(hashes_after)
    assert len(hashes_after) - len(hashes_before) == len(mine) == len(erased_events)
    report = verify_database(service.db, service.registry, trusted_keys=[public_key_hex(signing_key)], all_roots=True)
    assert report.intact, report.to_dict()
    assert verify_erasures(service.db) == []
    write_checkpoint(service.db, signing_key, T0 + timedelta(hours=2))
    export = tmp_path / "export.jsonl"
    with export.open("w", encoding="utf-8", newline="\n") as out:
        export_jsonl(service.db, out, now=T0 + timedelta(days=1))
    run = run_tool(verifier, export, "--public-key", public_key_hex(signing_key), "--all-roots")
    assert run.code == 0, run.out

    # Replay shows [erased]; the erased consumer no longer exists for the service.
    with service.db.read() as session:
        replayed = service.reveal(replay(session, service.registry, mine[0]).snapshot, session=session)
    assert (replayed.subject, replayed.description, replayed.order_ref, replayed.consumer_id) == (ERASED,) * 4
    events = service.events(actor=AUDITOR, case_id=mine[0]).data
    assert [e.data["body"] for e in events if e.type == "message"] == [ERASED]
    with pytest.raises(NotFoundError):
        service.get(actor=CONSUMER, case_id=mine[0])
    with pytest.raises(NotFoundError):
        service.erase_subject(user_id="c-1", basis="again", approved_by="adm-1")
    # The other consumer's cases read in full.
    other = service.get(actor=OTHER_CONSUMER, case_id=theirs)
    assert other.consumer_id == "c-2" and OTHER_NAME in other.subject and OTHER_MOBILE in other.description
    messages = service.messages(actor=OTHER_CONSUMER, case_id=theirs).data
    assert [m.body for m in messages] == [f"请打{OTHER_MOBILE}找{OTHER_NAME}"]


def test_an_open_case_is_deferred_until_it_closes(service: CaseService) -> None:
    closed = _file_closed_case(service, "c-1", NAME, MOBILE, ORDER)
    open_case = service.file(actor=CONSUMER, new_case=new_case(description=f"电话{MOBILE}")).id
    outcome = service.erase_subject(user_id="c-1", basis="GDPR Art. 17", approved_by="adm-1")
    assert outcome.erased == (closed,) and outcome.deferred == {open_case: "the case is open"}
    # Still the consumer's to follow while it is open.
    assert MOBILE in service.get(actor=CONSUMER, case_id=open_case).description
    assert [e.type for e in service.events(actor=AUDITOR, case_id=open_case).data][-1] == "erasure_deferred"
    assert service.sweep_personal_data(keep_for=timedelta(days=3 * 365)) == []
    service.execute(actor=CONSUMER, case_id=open_case, name="withdraw")
    assert service.sweep_personal_data(keep_for=timedelta(days=3 * 365)) == [open_case]
    assert service.get(actor=AUDITOR, case_id=open_case).description == ERASED
    with service.db.read() as session:
        assert session.execute(select(SUBJECTS.c.user_id).where(SUBJECTS.c.user_id == "c-1")).all() == []
    assert verify_erasures(service.db) == []


def test_erasure_deletes_the_consumers_notification_contact(service: CaseService) -> None:
    """The e-mail address a consumer gave for notices is personal data beside the log: it is
    keyed by their pseudonym and goes with the rest when they are erased."""
    set_contact(service, CONSUMER, email="wang@example.cn", language="zh-CN", email_kinds=["*"], digest=False, now=T0)
    set_contact(
        service, OTHER_CONSUMER, email="li@example.cn", language="zh-CN", email_kinds=["*"], digest=False, now=T0
    )
    _file_closed_case(service, "c-1", NAME, MOBILE, ORDER)
    with service.db.read() as session:
        keys = set(session.execute(select(CONTACTS.c.recipient)).scalars())
    assert all(k.startswith("consumer:sub_") for k in keys) and len(keys) == 2  # no user id in the table
    service.erase_subject(user_id="c-1", basis="PIPL Art. 47", approved_by="adm-1")
    with service.db.read() as session:
        left = set(session.execute(select(CONTACTS.c.email)).scalars())
    assert left == {"li@example.cn"}


def test_marker_text_from_a_person_is_refused(service: CaseService) -> None:
    from workflow.errors import InvalidCommandError

    with pytest.raises(InvalidCommandError, match="reserved prefix"):
        service.file(actor=CONSUMER, new_case=new_case(subject="pii:v1:000000000000000000000000:" + "0" * 64))


def test_an_order_reference_is_indexed_blind_and_erased_with_its_case(service: CaseService) -> None:
    """Related-case counts match orders by a keyed hash in ``order_refs`` (the log holds a
    marker); the row holds neither the reference nor an unkeyed hash of it, and goes with the case."""
    import hashlib

    closed = _file_closed_case(service, "c-1", NAME, MOBILE, ORDER)
    again = service.file(actor=OTHER_CONSUMER, new_case=new_case(consumer_id=OTHER_CONSUMER.id, order_ref=ORDER))
    with service.db.read() as session:
        rows = {r.case_id: r.token for r in session.execute(select(ORDER_REFS)).all()}
    assert rows[closed] == rows[again.id]  # the same order, the same token
    assert ORDER not in rows[closed] and rows[closed] != hashlib.sha256(ORDER.encode()).hexdigest()
    service.erase_subject(user_id="c-1", basis="PIPL Art. 47", approved_by="adm-1")
    with service.db.read() as session:
        assert set(session.execute(select(ORDER_REFS.c.case_id)).scalars()) == {again.id}
