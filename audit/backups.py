"""Backups that say what they hold, and restores that prove it before anything is swapped.

:func:`take_backup` checkpoints the live database, copies it at one instant (store/backup.py:
``VACUUM INTO`` or ``pg_dump -Fc``) and writes a :class:`Manifest` beside the copy: the file's
sha256 and size, the engine version, the database kind, the schema revision, the time, how many
case and merchant chains (and events) the copy holds, and the latest checkpoint it holds. A
database that has no checkpoint yet gets one first, so that every manifest names one; otherwise
the latest (the ticker writes one every ``DISPUTES_CHECKPOINT_INTERVAL_SECONDS``) is recorded as it
is, unless ``checkpoint=True`` asks for a fresh one: writing a checkpoint reads every chain's head
inside a write transaction, which holds up writers for a time that grows with the number of cases
(bench B9), and a backup should not add that stall by default. (When another worker holds the
checkpoint lock at that instant, PostgreSQL, the latest already written is recorded; a database
with no case at all records ``null``.)

:func:`restore_backup` turns a backup into a NEW database (a file, or a database on the server),
and refuses it unless: the file's digest and size are the manifest's; the copy holds the chains
and the checkpoint the manifest names; every chain, replay and checkpoint of the copy verifies
(audit/verify.py); and the copy's checkpoints agree, number by number, with the live database's
(when it can be read). Each checkpoint names the hash of the one before, so agreeing on the
latest checkpoint means agreeing on every earlier one: the copy's checkpoints are a prefix of
the manifest's and of the live database's. Then the erasures the live database recorded after
the backup are applied to the copy again (:func:`erasure_replay`), the copy is checked once more,
and only then, when asked, swapped in. A live database that cannot be read refuses the restore
(its erasures would be lost) unless ``without_live`` says to go on without them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from audit.checkpoints import latest_checkpoint, write_checkpoint
from audit.verify import VerifyReport, verify_database
from cases.erasure import erasures_since, reapply_erasures
from cases.personal import PersonalData
from cases.registry import WorkflowRegistry
from cases.service import CaseService
from policies.base import AllowAllAuthorizer
from privacy.keys import KEY_FILE_ADVICE, KeyProvider
from sla.clock import Clock
from store import backup as copies
from store.db import Database
from store.errors import BackupError, RestoreRefusedError, StorageError
from store.schema import head_revision, known_revision, upgrade
from store.tables import CASE_KEYS, CASES, CHECKPOINTS, ERASURES, EVENTS, MERCHANT_EVENTS, MERCHANTS
from workflow.model import from_iso, to_iso

MANIFEST_FORMAT = "dispute-engine/backup-manifest/v1"
MANIFEST_SUFFIX = ".manifest.json"

# What a restore reports as it goes (a stage's description); the CLI shows it.
Step = Callable[[str], None]
# Re-applies to ``copy`` the erasures ``live`` recorded after ``since``; returns how many.
ErasureReplay = Callable[[Database, Database, datetime], int]


def erasure_replay(*, registry: WorkflowRegistry, privacy: PersonalData, clock: Clock) -> ErasureReplay:
    """The :data:`ErasureReplay` of an engine: the erasures the live database recorded at or after
    the backup began (cases/erasure.py ``erasures_since``; ``updated_at``, so one asked for
    before and completed after counts too) carried out again on the copy by a case service on it
    with the live engine's keys (``privacy``: the copy's data keys are wrapped by the same
    key-encryption keys). No policy decides them: each was approved when it was first made.
    Carrying one out again is harmless where the backup already holds it."""

    def replay(live: Database, copy: Database, since: datetime) -> int:
        with live.read() as session:
            if not inspect(session.connection()).has_table(ERASURES.name):
                return 0  # a database from before erasures existed has none to carry over
        records = erasures_since(live, since)
        if records:
            service = CaseService(
                db=copy, registry=registry, authorizer=AllowAllAuthorizer(), clock=clock, privacy=privacy
            )
            reapply_erasures(service, records)
        return len(records)

    return replay


def engine_version() -> str:
    try:
        return metadata.version("dispute-engine")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


@dataclass(frozen=True)
class CheckpointRef:
    """The latest checkpoint a backup holds: enough to recognise it (its hash names every
    earlier one through ``previous_hash``) and to compare it with a published copy."""

    number: int
    hash: str
    merkle_root: str
    created_at: str
    public_key: str
    case_count: int
    event_count: int


@dataclass(frozen=True)
class Contents:
    """What a database (a backup, a restored copy) holds, read in one transaction."""

    schema_revision: str | None
    cases: int
    events: int
    merchants: int
    merchant_events: int
    checkpoints: int
    checkpoint: CheckpointRef | None

    @property
    def chains(self) -> dict[str, int]:
        return {
            "cases": self.cases,
            "events": self.events,
            "merchants": self.merchants,
            "merchant_events": self.merchant_events,
        }


def read_contents(session: Session) -> Contents:
    """The counts and the latest checkpoint, as ``session`` sees the database."""

    def count(table: Any) -> int:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())

    latest = latest_checkpoint(session)
    connection = session.connection()
    revision = (
        MigrationContext.configure(connection).get_current_revision()
        if inspect(connection).has_table("alembic_version")
        else None
    )
    return Contents(
        schema_revision=revision,
        cases=count(CASES),
        events=count(EVENTS),
        merchants=count(MERCHANTS),
        merchant_events=count(MERCHANT_EVENTS),
        checkpoints=count(CHECKPOINTS),
        checkpoint=None
        if latest is None
        else CheckpointRef(
            number=latest.number,
            hash=latest.hash,
            merkle_root=latest.merkle_root,
            created_at=to_iso(latest.created_at),
            public_key=latest.public_key,
            case_count=latest.case_count,
            event_count=latest.event_count,
        ),
    )


@dataclass(frozen=True)
class Manifest:
    """The JSON file written beside a backup (``<backup>.manifest.json``)."""

    file: str  # the backup file's name (the manifest sits in the same directory)
    sha256: str
    size: int
    engine_version: str
    database: str  # sqlite | postgresql
    schema: str | None  # PostgreSQL: the schema dumped
    started_at: str  # before the copy began: erasures from here on are re-applied on restore
    created_at: str  # when the copy was complete
    contents: Contents
    format: str = MANIFEST_FORMAT

    def to_json(self) -> str:
        values = asdict(self)
        contents = values.pop("contents")
        values["schema_revision"] = contents.pop("schema_revision")
        values["checkpoint"] = contents.pop("checkpoint")
        values["checkpoints"] = contents.pop("checkpoints")
        values["chains"] = contents
        return json.dumps(values, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> Manifest:
        try:
            values = json.loads(text)
            if values.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {values.get('format')!r}, not {MANIFEST_FORMAT}")
            checkpoint = values["checkpoint"]
            chains = values["chains"]
            contents = Contents(
                schema_revision=values["schema_revision"],
                cases=int(chains["cases"]),
                events=int(chains["events"]),
                merchants=int(chains["merchants"]),
                merchant_events=int(chains["merchant_events"]),
                checkpoints=int(values["checkpoints"]),
                checkpoint=None if checkpoint is None else CheckpointRef(**checkpoint),
            )
            found = cls(
                file=str(values["file"]),
                sha256=str(values["sha256"]).lower(),
                size=int(values["size"]),
                engine_version=str(values["engine_version"]),
                database=str(values["database"]),
                schema=values["schema"],
                started_at=str(values["started_at"]),
                created_at=str(values["created_at"]),
                contents=contents,
            )
            from_iso(found.started_at)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RestoreRefusedError(f"{source} is not a backup manifest: {exc}") from None
        return found

    @property
    def started(self) -> datetime:
        return from_iso(self.started_at)


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def take_backup(
    db: Database,
    target: Path,
    *,
    signing_key: Ed25519PrivateKey,
    clock: Callable[[], datetime],
    checkpoint: bool = False,
    on_step: Step = lambda _step: None,
) -> Manifest:
    """Copy the live database into ``target`` (a new file) and write the manifest beside it,
    first writing a checkpoint if there is none yet (or, with ``checkpoint``, in any case). The
    copy is consistent while the server writes; see the module's docstring."""
    kind = copies.kind_of(db.url)
    if kind == copies.SQLITE:
        copies.sqlite_file(db.url)  # an in-memory database has none: refused before anything is written
    copies.refuse_existing(target)
    copies.refuse_existing(manifest_path(target))
    if checkpoint or not _has_checkpoint(db):
        on_step("writing a checkpoint")
        write_checkpoint(db, signing_key, clock())
    started = clock()
    schema: str | None = None
    if kind == copies.SQLITE:
        on_step("copying the database (VACUUM INTO)")
        contents = copies.copy_sqlite(db, target, read_contents)
    else:
        schema = copies.current_schema(db)
        on_step(f"dumping schema {schema} (pg_dump)")
        contents = copies.dump_postgres(db, target, schema, read_contents)
    on_step("computing the backup's sha256")
    manifest = Manifest(
        file=target.name,
        sha256=copies.sha256_file(target),
        size=target.stat().st_size,
        engine_version=engine_version(),
        database=kind,
        schema=schema,
        started_at=to_iso(started),
        created_at=to_iso(clock()),
        contents=contents,
    )
    on_step("flushing the backup to disk")
    copies.flush(target)
    _write_atomically(manifest_path(target), manifest.to_json())
    return manifest


def _has_checkpoint(db: Database) -> bool:
    with db.read() as session:
        return session.execute(select(CHECKPOINTS.c.number).limit(1)).first() is not None


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    copies.flush(partial)
    os.replace(partial, path)
    copies.flush(path.parent)


# --- restore -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreRequest:
    """What `disputes db restore` was asked: the backup, its manifest, the live database, where
    the copy goes (None: beside the live database, with the time in its name), whether to swap."""

    backup: Path
    live_url: str
    manifest: Path | None = None
    into: str | None = None
    swap: bool = False
    # Restore even though the live database cannot be read (lost, unreachable): its erasures
    # after the backup are then not re-applied, and the result says so.
    without_live: bool = False


@dataclass
class RestoreResult:
    """What a restore did: where the verified copy is (or what it replaced), what was checked."""

    copy: str  # the copy's file or database (gone after a swap: it became the live one)
    copy_url: str
    manifest: Manifest
    cases: int = 0
    events: int = 0
    checkpoints: int = 0
    live_checked: bool = False
    live_note: str = ""
    erasures_reapplied: int = 0
    swapped: bool = False
    kept: str | None = None  # the old live database, kept under this name after a swap
    notes: list[str] = field(default_factory=list)


def restore_backup(
    request: RestoreRequest,
    *,
    registry: WorkflowRegistry,
    trusted_keys: Sequence[str] | None,
    now: datetime,
    reapply_erasures: ErasureReplay | None,
    on_step: Step = lambda _step: None,
    keys: KeyProvider | None = None,
) -> RestoreResult:
    """Restore ``request.backup`` into a new copy, check it, re-apply later erasures, swap it
    in when asked. Raises :class:`RestoreRefusedError` (the copy removed, nothing swapped) on
    any failed check; see the module's docstring for the checks. ``keys``: the key provider the
    restored database will be served with; a copy whose live case keys it cannot open is refused."""
    manifest_file = request.manifest or manifest_path(request.backup)
    if not request.backup.is_file():
        raise BackupError(f"the backup {request.backup} does not exist")
    if not manifest_file.is_file():
        raise BackupError(f"the manifest {manifest_file} does not exist (name it with --manifest)")
    manifest = Manifest.from_json(manifest_file.read_text(encoding="utf-8"), manifest_file)
    kind = copies.kind_of(request.live_url)
    if manifest.database != kind:
        raise RestoreRefusedError(f"the backup is of a {manifest.database} database, the live one is {kind}")

    on_step("checking the backup's size and sha256")
    size = request.backup.stat().st_size
    if size != manifest.size:
        raise RestoreRefusedError(f"the backup has {size} bytes, its manifest says {manifest.size}")
    if kind == copies.SQLITE:
        # The copy is hashed, not the backup: one read proves both the file and the copy.
        live_file = copies.sqlite_file(request.live_url)
        target = Path(request.into) if request.into else _beside(live_file, now)
        on_step(f"copying the backup to {target}")
        copy_url = copies.restore_sqlite(request.backup, target)
        result = RestoreResult(copy=str(target), copy_url=copy_url, manifest=manifest)
        digest_of = target
    else:
        digest_of = request.backup
        server_url, database = _postgres_target(request, now)
        result = RestoreResult(copy=database, copy_url="", manifest=manifest)
    pg_copy: copies.PostgresCopy | None = None

    def discard() -> None:
        if kind == copies.SQLITE:
            _unlink_sqlite(Path(result.copy))
        elif pg_copy is not None:  # a failed pg_restore drops the database it created itself
            copies.drop_database(server_url, database)

    try:
        digest = copies.sha256_file(digest_of)
        if digest != manifest.sha256:
            raise RestoreRefusedError(
                f"the backup's sha256 is {digest[:16]}..., its manifest says {manifest.sha256[:16]}..."
            )
        if kind == copies.POSTGRESQL:
            on_step(f"restoring into the new database {database} (pg_restore)")
            pg_copy = copies.restore_postgres(request.backup, server_url, database)
            result.copy_url = pg_copy.url
        _check_copy(result, registry, trusted_keys, on_step)
        if keys is not None:
            _check_keys(result, keys, on_step)
        if not _check_against_live(result, request.live_url, on_step):
            if not request.without_live:
                raise RestoreRefusedError(
                    f"{result.live_note}, so the erasures made after the backup cannot be re-applied: "
                    "give --without-live to restore anyway, then carry them out again by hand"
                )
            result.notes.append(
                "the live database was not read: erasures made after the backup were NOT re-applied; "
                "carry them out again (`disputes privacy erase`) before serving"
            )
        elif reapply_erasures is not None:
            on_step("re-applying the erasures made after the backup")
            with copies.opened(request.live_url) as live, copies.opened(result.copy_url) as copy:
                result.erasures_reapplied = reapply_erasures(live, copy, manifest.started)
            if result.erasures_reapplied:
                on_step("checking the chains again after the erasures")
                _verify(result.copy_url, registry, trusted_keys, replay=True, on_step=on_step)
        else:
            result.notes.append("erasures: this engine keeps no personal data apart, nothing to re-apply")
    except BaseException:
        discard()
        raise

    if request.swap:
        try:
            _swap(result, request, kind, pg_copy, now, on_step, registry, trusted_keys)
        except BackupError as exc:
            raise BackupError(f"{exc} (the verified copy is kept: {result.copy})") from None
    return result


def _check_keys(result: RestoreResult, keys: KeyProvider, on_step: Step) -> None:
    """Every key-encryption key that wraps a live case key of the copy is one ``keys`` holds:
    the key file is kept apart from the database and its backups (docs/privacy.md), so a restore
    with the wrong one, or a new one, would serve every text as unreadable."""
    on_step("checking that the key file opens the copy's case keys")
    missing: list[str] = []
    with copies.opened(result.copy_url) as copy, copy.read() as session:
        if not inspect(session.connection()).has_table(CASE_KEYS.name):
            return  # a database from before personal data was kept apart
        live = CASE_KEYS.c.wrapped.is_not(None)
        wrapped_under = session.execute(
            select(CASE_KEYS.c.kek_id, func.count()).where(live).group_by(CASE_KEYS.c.kek_id)
        ).all()
        for kek_id, count in wrapped_under:
            wrapped = session.execute(
                select(CASE_KEYS.c.wrapped).where(live, CASE_KEYS.c.kek_id == kek_id).limit(1)
            ).scalar_one()
            try:
                keys.unwrap(kek_id, bytes(wrapped))
            except ValueError:
                missing.append(f"{kek_id} ({count} {'case' if count == 1 else 'cases'})")
    if missing:
        source = getattr(keys, "source", "the key provider")
        raise RestoreRefusedError(
            f"the key file {source} cannot open the copy's case keys wrapped under {', '.join(missing)}: "
            f"{KEY_FILE_ADVICE}"
        )


def _beside(live: Path, now: datetime) -> Path:
    return live.with_name(f"{live.name}.restore-{now.strftime('%Y%m%dT%H%M%SZ')}")


def _unlink_sqlite(path: Path) -> None:
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()


def _postgres_target(request: RestoreRequest, now: datetime) -> tuple[str, str]:
    """(server URL, new database name): ``--into`` as a URL or a bare database name, else the
    live database's name with ``_restore_`` and the time."""
    if request.into and "://" in request.into:
        return request.into, copies.database_name(request.into)
    name = request.into or f"{copies.database_name(request.live_url)}_restore_{now.strftime('%Y%m%d%H%M%S')}"
    return request.live_url, name


def _check_copy(
    result: RestoreResult, registry: WorkflowRegistry, trusted_keys: Sequence[str] | None, on_step: Step
) -> None:
    manifest = result.manifest
    with copies.opened(result.copy_url) as copy, copy.read() as session:
        found = read_contents(session)
    if found.schema_revision != manifest.contents.schema_revision:
        raise RestoreRefusedError(
            f"the copy's schema revision is {found.schema_revision}, the manifest says "
            f"{manifest.contents.schema_revision}"
        )
    if found.chains != manifest.contents.chains:
        raise RestoreRefusedError(f"the copy holds {found.chains}, the manifest says {manifest.contents.chains}")
    _same_checkpoint(found, manifest)
    head = head_revision()
    if found.schema_revision is not None and found.schema_revision != head:
        if not known_revision(found.schema_revision):
            raise RestoreRefusedError(
                f"the backup's schema revision {found.schema_revision} is unknown to this engine "
                f"(version {engine_version()}; the backup was taken by {manifest.engine_version}): "
                "restore it with that engine or a newer one"
            )
        on_step(f"migrating the copy from {found.schema_revision} to {head}")
        with copies.opened(result.copy_url) as copy:
            upgrade(copy.engine)
    if manifest.engine_version != engine_version():
        result.notes.append(f"the backup was taken by engine {manifest.engine_version}, this is {engine_version()}")
    on_step(f"verifying {found.cases} case chains, {found.merchants} merchant chains, {found.checkpoints} checkpoints")
    report = _verify(result.copy_url, registry, trusted_keys, replay=True, on_step=on_step)
    result.cases, result.events, result.checkpoints = report.cases_checked, report.events_checked, found.checkpoints


def _same_checkpoint(found: Contents, manifest: Manifest) -> None:
    """The copy's latest checkpoint is the manifest's (so, through the previous-hash chain that
    verification checks, every one of its checkpoints is the manifest's)."""
    want, have = manifest.contents.checkpoint, found.checkpoint
    if want is None and have is None:
        return
    if want is None or have is None or (have.number, have.hash) != (want.number, want.hash):
        described = "none" if have is None else f"#{have.number} {have.hash[:16]}..."
        expected = "none" if want is None else f"#{want.number} {want.hash[:16]}..."
        raise RestoreRefusedError(f"the copy's latest checkpoint is {described}, the manifest names {expected}")
    if found.checkpoints != manifest.contents.checkpoints:
        raise RestoreRefusedError(
            f"the copy holds {found.checkpoints} checkpoints, the manifest says {manifest.contents.checkpoints}"
        )


def _verify(
    url: str,
    registry: WorkflowRegistry,
    trusted_keys: Sequence[str] | None,
    *,
    replay: bool,
    on_step: Step = lambda _step: None,
) -> VerifyReport:
    problems: list[str] = []
    what = "verifying" if replay else "checking the chains of"

    def on_page(report: VerifyReport) -> None:
        on_step(f"{what} the copy: {report.cases_checked:,} of {report.cases_total:,} cases")

    with copies.opened(url) as copy:
        report = verify_database(
            copy,
            registry,
            trusted_keys=trusted_keys,
            replay=replay,
            progress=on_page,
            on_finding=lambda f: problems.append(str(f)),
        )
    if not report.intact:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise RestoreRefusedError(f"the restored copy does not verify: {shown}")
    return report


def _check_swapped(url: str, registry: WorkflowRegistry, trusted_keys: Sequence[str] | None) -> None:
    _verify(url, registry, trusted_keys, replay=False)


def _check_against_live(result: RestoreResult, live_url: str, on_step: Step) -> bool:
    """Every checkpoint number both hold has the same hash in the copy and in the live database.
    False (and ``result.live_note`` says why) when the live database cannot be read."""
    if copies.kind_of(live_url) == copies.SQLITE and not copies.sqlite_file(live_url).exists():
        result.live_note = "the live database file does not exist"
        return False
    on_step("comparing the copy's checkpoints with the live database's")
    with copies.opened(result.copy_url) as copy, copy.read() as session:
        ours = dict(session.execute(select(CHECKPOINTS.c.number, CHECKPOINTS.c.hash)).tuples().all())
    try:
        with copies.opened(live_url) as live, live.read() as session:
            if not inspect(session.connection()).has_table(CHECKPOINTS.name):
                result.live_note = "the live database has no tables"
                return False
            older = select(CHECKPOINTS.c.number, CHECKPOINTS.c.hash).where(CHECKPOINTS.c.number <= max(ours, default=0))
            theirs = dict(session.execute(older).tuples().all())
    except (StorageError, DBAPIError) as exc:
        result.live_note = f"the live database could not be read ({exc.__class__.__name__})"
        return False
    differing = sorted(n for n in ours.keys() & theirs.keys() if ours[n] != theirs[n])
    if differing:
        raise RestoreRefusedError(
            f"checkpoint #{differing[0]} of the copy differs from the live database's: "
            "the backup is not an earlier state of this database"
        )
    result.live_checked = True
    missing = len(ours) - len(theirs)
    if missing:
        result.live_note = f"the live database lacks {missing} of the copy's checkpoints"
    return True


def _swap(
    result: RestoreResult,
    request: RestoreRequest,
    kind: str,
    pg_copy: copies.PostgresCopy | None,
    now: datetime,
    on_step: Step,
    registry: WorkflowRegistry,
    trusted_keys: Sequence[str] | None,
) -> None:
    stamp = now.strftime("%Y%m%d%H%M%S")
    if kind == copies.SQLITE:
        live = copies.sqlite_file(request.live_url)
        kept = live.with_name(f"{live.name}.pre-restore-{now.strftime('%Y%m%dT%H%M%SZ')}")
        on_step(f"swapping the copy in over {live} (the old file kept as {kept.name})")
        copies.swap_sqlite(Path(result.copy), live, kept)
        result.kept = str(kept)
    else:
        assert pg_copy is not None
        schema = result.manifest.schema or "public"
        kept_schema = f"{schema}_pre_restore_{stamp}"
        verified = request.backup.with_name(f"{request.backup.name}.verified-{stamp}")
        on_step(f"dumping the verified copy {pg_copy.database}")
        copies.dump_copy(pg_copy, schema, verified)
        try:
            on_step(f"swapping: schema {schema} renamed {kept_schema}, the verified copy restored in its place")
            copies.swap_postgres(
                request.live_url,
                schema,
                kept_schema,
                backup=verified,
                # The swapped-in schema came through a second dump and restore: its chains are
                # checked once more before the old schema is given up.
                check=lambda: _check_swapped(request.live_url, registry, trusted_keys),
            )
        finally:
            verified.unlink(missing_ok=True)
        copies.drop_database(request.live_url, pg_copy.database)
        result.kept = kept_schema
    result.swapped = True
