"""Backups and restores (audit/backups.py, store/backup.py) on both databases: a backup taken
while cases are filed is consistent and verifies; a damaged backup, a wrong manifest, a
tampered checkpoint or a backup of another database is refused with nothing left behind; a
verified copy swapped in replaces the live database and keeps the old one."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text, update

from audit.backups import (
    Manifest,
    RestoreRequest,
    RestoreResult,
    erasure_replay,
    manifest_path,
    restore_backup,
    take_backup,
)
from audit.checkpoints import write_checkpoint
from audit.keys import load_signing_key, public_key_hex
from audit.privacy import verify_erasures
from audit.verify import verify_database
from cases.personal import PersonalData
from cases.service import CaseService
from privacy.markers import ERASED
from runtime.settings import memory_keys
from store.backup import current_schema, drop_database, opened, swap_postgres
from store.db import Database
from store.errors import BackupError, RestoreRefusedError
from store.tables import CASE_KEYS, CASES, CHECKPOINTS, EVENTS, PERSONAL_VALUES, SUBJECTS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, OTHER_CONSUMER, T0
from tests.support.builders import make_service, new_case
from workflow.model import Actor

KEY = load_signing_key("42" * 32)
# Between two filings of a test's writer thread: one that takes SQLite's lock back the instant it
# lets go can starve another connection's write (the backup's first checkpoint) past its timeout.
PAUSE = 0.005
TRUSTED = [public_key_hex(KEY)]


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    found = make_service(db_url)
    yield found
    found.db.dispose()


@pytest.fixture
def copies(db_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Names of the copies a test restores into (files, or PostgreSQL databases dropped afterwards)."""
    made: list[str] = []
    yield made
    if db_url.startswith("postgresql"):
        for name in made:
            drop_database(db_url, name)


def file_cases(service: CaseService, count: int) -> None:
    for n in range(count):
        snapshot = service.file(actor=CONSUMER, new_case=new_case(order_ref=f"ORD-{n}"))
        service.execute(actor=MEDIATOR, case_id=snapshot.id, name="assign", expected_version=snapshot.version)


def backup_of(
    service: CaseService, tmp_path: Path, name: str = "backup", *, checkpoint: bool = False
) -> tuple[Path, Manifest]:
    target = tmp_path / name
    manifest = take_backup(service.db, target, signing_key=KEY, clock=service.clock.now, checkpoint=checkpoint)
    return target, manifest


def restore(
    service: CaseService,
    backup: Path,
    copies: list[str],
    tmp_path: Path,
    *,
    swap: bool = False,
    manifest: Path | None = None,
    live_url: str | None = None,
    without_live: bool = False,
    erasures: bool = True,
) -> RestoreResult:
    name = f"h_{uuid.uuid4().hex[:12]}"
    into = str(tmp_path / name) if service.db.is_sqlite else name
    copies.append(name)
    request = RestoreRequest(
        backup=backup,
        live_url=live_url or service.db.url,
        manifest=manifest,
        into=into,
        swap=swap,
        without_live=without_live,
    )
    assert service.privacy is not None
    replay = erasure_replay(registry=service.registry, privacy=service.privacy, clock=service.clock)
    return restore_backup(
        request,
        registry=service.registry,
        trusted_keys=TRUSTED,
        now=service.clock.now() + timedelta(hours=1),
        reapply_erasures=replay if erasures else None,
    )


def copy_is_gone(service: CaseService, copies: list[str], tmp_path: Path) -> bool:
    if service.db.is_sqlite:
        return not any((tmp_path / name).exists() for name in copies)
    admin = create_engine(make_url(service.db.url).set(database="postgres", query={}))
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_database WHERE datname = ANY(:names)"), {"names": copies}
            ).scalar_one()
    finally:
        admin.dispose()
    return bool(found == 0)


def rewrite_manifest(backup: Path, **fields: object) -> None:
    path = manifest_path(backup)
    values = json.loads(path.read_text(encoding="utf-8"))
    values.update(fields)
    path.write_text(json.dumps(values), encoding="utf-8")


def reseal(backup: Path) -> None:
    """Make the manifest match the file again, as someone covering a change would."""
    data = backup.read_bytes()
    rewrite_manifest(backup, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def change_sqlite_backup(backup: Path, statement: str) -> None:
    with sqlite3.connect(backup) as connection:
        connection.execute(statement)
    connection.close()
    reseal(backup)


def count_cases(url: str) -> int:
    with opened(url) as db, db.read() as session:
        return int(session.execute(select(func.count()).select_from(CASES)).scalar_one())


def test_a_backup_taken_while_cases_are_filed_is_consistent_and_verifies(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    file_cases(service, 5)
    stop = threading.Event()
    filed: list[int] = []
    failures: list[BaseException] = []
    writer = make_service(service.db.url, mediators=())

    def keep_filing() -> None:
        try:
            while not stop.wait(PAUSE):
                writer.file(actor=CONSUMER, new_case=new_case())
                filed.append(1)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=keep_filing)
    thread.start()
    try:
        while len(filed) < 3:  # the writer is under way before the copy starts
            stop.wait(0.01)
        backup, manifest = backup_of(service, tmp_path)
        during = len(filed)
        while len(filed) < during + 3:  # and goes on after it
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
        writer.db.dispose()
    assert not failures
    # The manifest describes the file: digest, size, the chains and the checkpoint it holds.
    assert manifest.sha256 == hashlib.sha256(backup.read_bytes()).hexdigest()
    assert manifest.size == backup.stat().st_size
    assert 5 + 3 <= manifest.contents.cases < 5 + len(filed)
    assert manifest.contents.checkpoint is not None and manifest.contents.checkpoints == 1
    on_disk = json.loads(manifest_path(backup).read_text(encoding="utf-8"))
    assert on_disk["sha256"] == manifest.sha256 and on_disk["chains"]["cases"] == manifest.contents.cases
    assert on_disk["database"] == ("sqlite" if service.db.is_sqlite else "postgresql")

    result = restore(service, backup, copies, tmp_path)
    # Every chain of the copy verifies, at the one instant the copy was taken.
    assert result.cases == manifest.contents.cases and result.events == manifest.contents.events
    assert result.live_checked and not result.swapped
    assert count_cases(result.copy_url) == manifest.contents.cases < count_cases(service.db.url)


def test_a_backup_with_changed_bytes_is_refused_and_no_copy_is_left(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    file_cases(service, 3)
    backup, _ = backup_of(service, tmp_path)
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01
    backup.write_bytes(bytes(data))
    with pytest.raises(RestoreRefusedError, match="sha256"):
        restore(service, backup, copies, tmp_path)
    assert copy_is_gone(service, copies, tmp_path)


def test_a_truncated_backup_is_refused_by_its_size(service: CaseService, tmp_path: Path, copies: list[str]) -> None:
    file_cases(service, 2)
    backup, _ = backup_of(service, tmp_path)
    backup.write_bytes(backup.read_bytes()[:-100])
    with pytest.raises(RestoreRefusedError, match="bytes, its manifest says"):
        restore(service, backup, copies, tmp_path)
    assert copy_is_gone(service, copies, tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sha256": "0" * 64}, "sha256"),
        ({"chains": {"cases": 99, "events": 1, "merchants": 0, "merchant_events": 0}}, "the manifest says"),
        ({"format": "something/else"}, "not a backup manifest"),
        ({"checkpoint": {"number": 1}}, "not a backup manifest"),
    ],
)
def test_a_manifest_that_does_not_describe_the_backup_is_refused(
    service: CaseService, tmp_path: Path, copies: list[str], fields: dict[str, object], message: str
) -> None:
    file_cases(service, 2)
    backup, _ = backup_of(service, tmp_path)
    rewrite_manifest(backup, **fields)
    with pytest.raises(RestoreRefusedError, match=message):
        restore(service, backup, copies, tmp_path)
    assert copy_is_gone(service, copies, tmp_path)


def test_a_manifest_of_another_backup_is_refused(service: CaseService, tmp_path: Path, copies: list[str]) -> None:
    file_cases(service, 2)
    first, _ = backup_of(service, tmp_path, "first")
    file_cases(service, 1)
    second, _ = backup_of(service, tmp_path, "second")
    with pytest.raises(RestoreRefusedError):
        restore(service, second, copies, tmp_path, manifest=manifest_path(first))
    assert copy_is_gone(service, copies, tmp_path)


def test_a_missing_backup_or_manifest_is_a_clear_error(service: CaseService, tmp_path: Path, copies: list[str]) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        restore(service, tmp_path / "nothing", copies, tmp_path)
    file_cases(service, 1)
    backup, _ = backup_of(service, tmp_path)
    manifest_path(backup).unlink()
    with pytest.raises(BackupError, match="manifest .* does not exist"):
        restore(service, backup, copies, tmp_path)
    manifest_path(backup).write_text("{not json", encoding="utf-8")
    with pytest.raises(RestoreRefusedError, match="not a backup manifest"):
        restore(service, backup, copies, tmp_path)


def test_a_backup_writes_a_checkpoint_only_where_there_is_none_or_when_asked(
    service: CaseService, tmp_path: Path
) -> None:
    file_cases(service, 2)
    _, first = backup_of(service, tmp_path, "first")
    assert first.contents.checkpoint is not None and first.contents.checkpoint.case_count == 2
    file_cases(service, 1)
    _, second = backup_of(service, tmp_path, "second")
    assert second.contents.checkpoint == first.contents.checkpoint and second.contents.cases == 3
    _, third = backup_of(service, tmp_path, "third", checkpoint=True)
    assert third.contents.checkpoint is not None and third.contents.checkpoint.number == 2
    assert third.contents.checkpoint.case_count == 3 and third.contents.checkpoints == 2


def test_a_backup_never_overwrites_a_file(service: CaseService, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(BackupError, match="exists already"):
        take_backup(service.db, target, signing_key=KEY, clock=service.clock.now)
    assert target.read_text(encoding="utf-8") == "keep me"


# --- changes covered by a resealed manifest: the chains and checkpoints catch them (SQLite: the
# backup is a database file we can change in place; a pg_dump archive is compressed).


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[CaseService]:
    from tests.support.database import with_schema

    for url in with_schema(f"sqlite:///{tmp_path / 'live.db'}"):
        found = make_service(url)
        yield found
        found.db.dispose()


def test_a_changed_event_covered_by_a_resealed_manifest_fails_verification(
    sqlite_service: CaseService, tmp_path: Path
) -> None:
    file_cases(sqlite_service, 3)
    backup, _ = backup_of(sqlite_service, tmp_path)
    change_sqlite_backup(backup, "UPDATE events SET body = replace(body, '29900', '99900') WHERE seq = 1")
    with pytest.raises(RestoreRefusedError, match="does not verify"):
        restore(sqlite_service, backup, [], tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("h_")] == []


def test_a_tampered_checkpoint_is_refused(sqlite_service: CaseService, tmp_path: Path) -> None:
    file_cases(sqlite_service, 3)
    backup, manifest = backup_of(sqlite_service, tmp_path)
    assert manifest.contents.checkpoint is not None
    # The checkpoint's signed document is changed and the manifest made to name the new hash:
    # the signature and the hash no longer match the document.
    forged = "f" * 64
    change_sqlite_backup(backup, f"UPDATE checkpoints SET merkle_root = '{'0' * 64}', hash = '{forged}'")
    rewrite_manifest(backup, checkpoint={**json.loads(manifest.to_json())["checkpoint"], "hash": forged})
    with pytest.raises(RestoreRefusedError, match="checkpoint #1"):
        restore(sqlite_service, backup, [], tmp_path)


def test_a_checkpoint_dropped_from_the_backup_is_refused(sqlite_service: CaseService, tmp_path: Path) -> None:
    """The copy's checkpoints must be the manifest's: one removed (and the manifest left as it
    was, apart from the digest) no longer ends at the checkpoint the manifest names."""
    file_cases(sqlite_service, 2)
    write_checkpoint(sqlite_service.db, KEY, sqlite_service.clock.now())
    file_cases(sqlite_service, 1)
    backup, manifest = backup_of(sqlite_service, tmp_path, checkpoint=True)
    assert manifest.contents.checkpoints == 2
    change_sqlite_backup(backup, "DELETE FROM checkpoint_heads WHERE checkpoint = 2")
    change_sqlite_backup(backup, "DELETE FROM checkpoints WHERE number = 2")
    with pytest.raises(RestoreRefusedError, match="latest checkpoint is #1 .* the manifest names #2"):
        restore(sqlite_service, backup, [], tmp_path)


def test_a_backup_of_another_database_is_refused_by_the_live_checkpoints(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    """The copy's checkpoints must be a prefix of the live database's: a backup of another
    database (its own checkpoint #1) is not an earlier state of this one."""
    file_cases(service, 2)
    backup, _ = backup_of(service, tmp_path)
    # The live database's checkpoint #1 is rewritten as if another history had been signed.
    with service.db.write() as session:
        session.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.number == 1).values(hash="e" * 64))
    with pytest.raises(RestoreRefusedError, match="checkpoint #1 of the copy differs from the live database's"):
        restore(service, backup, copies, tmp_path)
    assert copy_is_gone(service, copies, tmp_path)


def test_a_live_database_that_cannot_be_read_refuses_unless_told_to_go_on_without_it(
    sqlite_service: CaseService, tmp_path: Path
) -> None:
    """Its erasures after the backup could not be re-applied: the restore stops, unless the
    operator says to go on (the database is lost), and then the result says what was not done."""
    file_cases(sqlite_service, 2)
    backup, _ = backup_of(sqlite_service, tmp_path)
    gone = f"sqlite:///{tmp_path / 'lost.db'}"
    with pytest.raises(RestoreRefusedError, match="does not exist, so the erasures made after the backup cannot"):
        restore(sqlite_service, backup, [], tmp_path, live_url=gone)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("h_")] == []
    result = restore(sqlite_service, backup, [], tmp_path, live_url=gone, without_live=True)
    assert not result.live_checked and result.erasures_reapplied == 0
    assert any("NOT re-applied" in note for note in result.notes)
    assert not (tmp_path / "lost.db").exists()  # looking did not create it


# --- swapping ----------------------------------------------------------------------------------


def test_a_verified_copy_swapped_in_replaces_the_live_database_and_keeps_the_old_one(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    file_cases(service, 3)
    backup, manifest = backup_of(service, tmp_path)
    file_cases(service, 2)  # after the backup: gone once it is restored
    service.db.dispose()
    result = restore(service, backup, copies, tmp_path, swap=True)
    assert result.swapped and result.kept is not None
    assert count_cases(service.db.url) == manifest.contents.cases == 3
    with opened(service.db.url) as live:
        report = verify_database(live, service.registry, trusted_keys=TRUSTED)
    assert report.intact and report.cases_checked == 3
    if service.db.is_sqlite:
        kept = Path(result.kept)
        assert kept.exists() and not Path(str(result.copy)).exists()
        assert count_cases(f"sqlite:///{kept}") == 5
        assert not Path(f"{kept}-wal").exists()
    else:
        with opened(service.db.url) as live, live.read() as session:
            kept_cases = session.execute(text(f'SELECT count(*) FROM "{result.kept}".cases')).scalar_one()
            session.execute(text(f'DROP SCHEMA "{result.kept}" CASCADE'))
        assert kept_cases == 5
        assert copy_is_gone(service, copies, tmp_path)


def test_the_events_of_a_swapped_in_copy_are_the_backups(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    file_cases(service, 2)
    backup, _ = backup_of(service, tmp_path)
    with service.db.read() as session:
        before = session.execute(select(EVENTS.c.hash).order_by(EVENTS.c.case_id, EVENTS.c.seq)).scalars().all()
    file_cases(service, 1)
    service.db.dispose()
    result = restore(service, backup, copies, tmp_path, swap=True)
    with opened(service.db.url) as live, live.read() as session:
        after = session.execute(select(EVENTS.c.hash).order_by(EVENTS.c.case_id, EVENTS.c.seq)).scalars().all()
        if not service.db.is_sqlite:
            session.execute(text(f'DROP SCHEMA "{result.kept}" CASCADE'))
    assert after == before


def test_an_in_memory_database_has_nothing_to_back_up(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="in-memory"):
        take_backup(Database("sqlite://"), tmp_path / "x", signing_key=KEY, clock=lambda: T0)


# --- erasures made after the backup ------------------------------------------------------------

NAME = "张伟"
MOBILE = "13812345678"
ADDRESS = "上海市浦东新区世纪大道100号"
ORDER = "TB-20261111-7788"
OTHER_NAME = "李娜"
SECRETS = (NAME, MOBILE, ADDRESS, ORDER)


def file_closed_case(service: CaseService, actor: Actor, name: str, order: str) -> str:
    case = service.file(
        actor=actor,
        new_case=new_case(
            consumer_id=actor.id,
            subject=f"{name}的电水壶坏了",
            description=f"收件人{name}，电话{MOBILE}，地址{ADDRESS}",
            order_ref=order,
        ),
    )
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=actor, case_id=case.id, name="comment", data={"body": f"请打{MOBILE}找{name}"})
    service.execute(actor=actor, case_id=case.id, name="withdraw", reason=f"{name}已和商家和解")
    return case.id


def reader(service: CaseService, url: str) -> CaseService:
    """A case service on a copy, with the live database's keys (fresh: no cached data key)."""
    return CaseService(
        db=Database(url),
        registry=service.registry,
        authorizer=service.authorizer,
        clock=service.clock,
        privacy=PersonalData(memory_keys(service.db.url)),
    )


def stored_bytes(url: str) -> bytes:
    """SQLite: the file and its WAL as bytes. PostgreSQL: every row of the personal tables as text."""
    if url.startswith("sqlite"):
        path = Path(str(make_url(url).database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with opened(url) as db, db.read() as session:
        rows = [
            *session.execute(select(PERSONAL_VALUES.c.sealed)).scalars(),
            *session.execute(select(CASE_KEYS.c.wrapped)).scalars(),
        ]
    return b"\n".join(bytes(r).hex().encode("ascii") for r in rows if r is not None)


def as_stored(value: bytes, url: str) -> bytes:
    return value if url.startswith("sqlite") else value.hex().encode("ascii")


def test_a_backup_taken_while_filing_and_restored_after_a_later_erasure_does_not_bring_it_back(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    mine = [file_closed_case(service, CONSUMER, NAME, ORDER) for _ in range(2)]
    theirs = file_closed_case(service, OTHER_CONSUMER, OTHER_NAME, "TB-OTHER-1")
    stop = threading.Event()
    writer = make_service(service.db.url, mediators=())

    def keep_filing() -> None:
        while not stop.wait(PAUSE):
            writer.file(actor=OTHER_CONSUMER, new_case=new_case(consumer_id=OTHER_CONSUMER.id))

    thread = threading.Thread(target=keep_filing)
    thread.start()
    try:
        backup, manifest = backup_of(service, tmp_path)
    finally:
        stop.set()
        thread.join()
        writer.db.dispose()
    with service.db.read() as session:
        # What erasing ``mine`` destroys: the sealed values and the wrapped keys that open them.
        sealed = session.execute(select(PERSONAL_VALUES.c.sealed).where(PERSONAL_VALUES.c.case_id.in_(mine)))
        wrapped = session.execute(select(CASE_KEYS.c.wrapped).where(CASE_KEYS.c.case_id.in_(mine)))
        shredded = [bytes(b) for b in (*sealed.scalars(), *wrapped.scalars())]
    assert len(shredded) > 2

    # The control: the backup itself holds the consumer's data, readable with the keys.
    before = restore(service, backup, copies, tmp_path, erasures=False)
    held = reader(service, before.copy_url)
    try:
        assert NAME in held.get(actor=AUDITOR, case_id=mine[0]).description
        assert all(as_stored(b, before.copy_url) in stored_bytes(before.copy_url) for b in shredded)
    finally:
        held.db.dispose()

    outcome = service.erase_subject(user_id=CONSUMER.id, basis="PIPL Art. 47 request", approved_by="adm-1")
    assert sorted(outcome.erased) == sorted(mine)

    result = restore(service, backup, copies, tmp_path)
    assert result.erasures_reapplied == 1 and result.live_checked
    copy = reader(service, result.copy_url)
    try:
        # The copy verifies, chains, replays and checkpoints, and so do its erasures.
        report = verify_database(copy.db, copy.registry, trusted_keys=TRUSTED, all_roots=True)
        assert report.intact and report.cases_checked == manifest.contents.cases
        assert verify_erasures(copy.db) == []
        erased = copy.get(actor=AUDITOR, case_id=mine[0])
        assert (erased.subject, erased.description, erased.order_ref) == (ERASED,) * 3
        other = copy.get(actor=OTHER_CONSUMER, case_id=theirs)
        assert OTHER_NAME in other.subject and MOBILE in other.description
        with copy.db.read() as session:
            assert session.execute(select(SUBJECTS).where(SUBJECTS.c.user_id == CONSUMER.id)).all() == []
            kinds = session.execute(select(EVENTS.c.type).where(EVENTS.c.case_id == mine[0])).scalars().all()
        assert kinds[-1] == "personal_data_erased"
    finally:
        copy.db.dispose()
    raw = stored_bytes(result.copy_url)
    assert theirs.encode("ascii") in raw or not result.copy_url.startswith("sqlite")  # the right bytes were read
    for secret in SECRETS:
        assert secret.encode("utf-8") not in raw, secret
    # Neither the sealed values nor the wrapped keys that the backup held are left in the copy.
    assert [b for b in shredded if as_stored(b, result.copy_url) in raw] == []


def test_a_postgres_swap_that_fails_its_check_puts_the_old_schema_back(
    service: CaseService, tmp_path: Path, copies: list[str]
) -> None:
    if service.db.is_sqlite:
        pytest.skip("the schema swap is PostgreSQL's")
    file_cases(service, 2)
    backup, _ = backup_of(service, tmp_path)
    file_cases(service, 1)  # the live schema now differs from the backup
    schema = current_schema(service.db)
    service.db.dispose()

    def failing_check() -> None:
        assert count_cases(service.db.url) == 2  # the backup's schema is in place when checked
        raise RestoreRefusedError("the swapped-in schema does not verify")

    with pytest.raises(RestoreRefusedError, match="does not verify"):
        swap_postgres(service.db.url, schema, f"{schema}_kept", backup=backup, check=failing_check)
    assert count_cases(service.db.url) == 3
    with opened(service.db.url) as live, live.read() as session:
        kept = session.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": f"{schema}_kept"}).first()
    assert kept is None


def test_a_sqlite_swap_is_refused_while_the_live_database_is_open(sqlite_service: CaseService, tmp_path: Path) -> None:
    file_cases(sqlite_service, 2)
    backup, _ = backup_of(sqlite_service, tmp_path)
    file_cases(sqlite_service, 1)
    live = Path(str(make_url(sqlite_service.db.url).database))
    with sqlite_service.db.read() as session:  # a server's pool keeps its connection open
        session.execute(select(func.count()).select_from(CASES)).scalar_one()
        with pytest.raises(BackupError, match="open in another process or connection"):
            restore(sqlite_service, backup, [], tmp_path, swap=True)
    assert not list(tmp_path.glob("live.db.pre-restore-*"))
    assert len(list(tmp_path.glob("h_*"))) == 1  # the verified copy, kept for a later swap
    sqlite_service.db.dispose()
    assert count_cases(f"sqlite:///{live}") == 3


def test_a_backup_from_a_newer_schema_is_refused(sqlite_service: CaseService, tmp_path: Path) -> None:
    file_cases(sqlite_service, 1)
    backup, _ = backup_of(sqlite_service, tmp_path)
    change_sqlite_backup(backup, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    change_sqlite_backup(backup, "INSERT INTO alembic_version VALUES ('f00dfeedbeef')")
    rewrite_manifest(backup, schema_revision="f00dfeedbeef", engine_version="9.0.0")
    with pytest.raises(RestoreRefusedError, match="revision f00dfeedbeef is unknown to this engine .* taken by 9.0.0"):
        restore(sqlite_service, backup, [], tmp_path)
