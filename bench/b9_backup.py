"""B9: `disputes db backup` while cases are filed: how long it takes, and how long it holds up a writer.

On a database of cloned cases (bench/bulk.py; 15,000 cases, some 80 MB on SQLite), one
thread files cases through ``CaseService`` one after another, the whole time. Each run:

- a quiet second of filings gives the normal filing latency (median);
- :func:`audit.backups.take_backup` runs (``VACUUM INTO`` or ``pg_dump -Fc`` in one snapshot,
  the counts, the file's sha256 and fsync): the stall is the longest filing under way at some
  moment of the backup, and the ratio that stall over the normal filing latency;
- the same with ``checkpoint=True`` (`db backup --checkpoint`): a checkpoint's write transaction
  first, which reads every chain's head while writers wait;
- the raw baseline for the time is a plain copy of the same data with the writer stopped: the
  database file copied byte for byte (SQLite; not consistent under writes, which is the point of
  VACUUM INTO), or a bare ``pg_dump -Fc`` of the schema (PostgreSQL).

No targets: the issue measured ~250 ms of writer stall for an 837 MB SQLite file; these rows say
what the engine's backup costs a writer on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.backups import take_backup
from audit.keys import generate_signing_key
from bench.bulk import INSTANTS, build_scale
from bench.common import CONSUMER, Outcome, Row, fmt_ms, log, make_service, median, new_case, sqlite_path
from bench.context import Context
from store.backup import current_schema, libpq_uri, pg_tool
from store.db import Database

NAME = "B9"


class Writer:
    """Files cases one after another on its own thread; keeps (start, end) of every filing."""

    def __init__(self, url: str) -> None:
        self.service = make_service(url)
        self.spans: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        try:
            # 2 ms between filings: with none, the writer takes SQLite's lock back the instant it
            # lets go and can starve the backup's first checkpoint past the busy timeout.
            while not self.stop.wait(0.002):
                start = time.perf_counter()
                self.service.file(actor=CONSUMER, new_case=new_case(order_ref=f"B9-{n}"))
                self.spans.append((start, time.perf_counter()))
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the benchmark
            self.failure = exc

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.service.db.dispose()
        if self.failure is not None:
            raise self.failure

    def longest(self, start: float, end: float) -> float:
        """The longest filing that was under way at some moment of [start, end]."""
        return max((e - s for s, e in self.spans if e >= start and s <= end), default=0.0)

    def normal(self, start: float, end: float) -> float:
        return median([e - s for s, e in self.spans if s >= start and e <= end] or [0.0])


def raw_copy_seconds(url: str, directory: Path) -> float:
    target = directory / "raw-copy"
    start = time.perf_counter()
    if url.startswith("sqlite"):
        shutil.copyfile(sqlite_path(url), target)
    else:
        db = Database(url, pool_size=1)
        try:
            schema = current_schema(db)
        finally:
            db.dispose()
        subprocess.run(
            [pg_tool("pg_dump"), "-Fc", f"--schema={schema}", f"--file={target}", f"--dbname={libpq_uri(url)}"],
            check=True,
            capture_output=True,
        )
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


@dataclass
class Measured:
    seconds: float  # the whole backup
    copy_seconds: float  # VACUUM INTO / pg_dump alone
    normal: float  # median filing latency in the quiet second before
    stall: float  # longest filing under way at some moment of the backup
    size: int


def measure(
    url: str, db: Database, target: Path, *, key: Ed25519PrivateKey, checkpoint: bool, quiet: float
) -> Measured:
    marks: dict[str, float] = {}

    def step(description: str) -> None:
        marks[description.split(" ")[0]] = time.perf_counter()

    with Writer(url) as writer:
        time.sleep(quiet)  # the writer warms up
        quiet_from = time.perf_counter()
        time.sleep(quiet)
        quiet_to = time.perf_counter()
        start = time.perf_counter()
        manifest = take_backup(
            db, target, signing_key=key, clock=writer.service.clock.now, checkpoint=checkpoint, on_step=step
        )
        end = time.perf_counter()
        time.sleep(quiet / 2)  # filings that started during the backup finish
    target.unlink()
    target.with_name(target.name + ".manifest.json").unlink()
    copy_from = marks.get("copying", marks.get("dumping", start))
    return Measured(
        seconds=end - start,
        copy_seconds=marks.get("computing", end) - copy_from,
        normal=writer.normal(quiet_from, quiet_to),
        stall=writer.longest(start, end),
        size=manifest.size,
    )


def run(ctx: Context) -> Outcome:
    out = Outcome()
    count = ctx.pick(quick=2_000, full=15_000)
    quiet = ctx.pick(quick=0.3, full=1.0)  # seconds of filing before a backup, the second one measured
    scale = build_scale(ctx.backend, ctx.stack, count, "backup", instants=ctx.pick(quick=6, full=INSTANTS))
    key = generate_signing_key()
    directory = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    plain: list[Measured] = []
    checkpointed: list[Measured] = []
    raws: list[float] = []
    try:
        db = Database(scale.url)
        try:
            for index in range(ctx.warmups + ctx.runs):
                raw = raw_copy_seconds(scale.url, directory)
                # The warm-up's backup writes the database's first checkpoint; later ones record it.
                first = measure(scale.url, db, directory / f"b-{index}", key=key, checkpoint=False, quiet=quiet)
                second = measure(scale.url, db, directory / f"c-{index}", key=key, checkpoint=True, quiet=quiet)
                for label, m in (("backup", first), ("with --checkpoint", second)):
                    log(
                        f"B9: run {index + 1}, {label}: {m.size / 1e6:.0f} MB in {m.seconds:.2f} s "
                        f"(copy {m.copy_seconds:.2f} s, raw copy {raw:.2f} s); filing {m.normal * 1000:.1f} ms, "
                        f"longest during the backup {m.stall * 1000:.0f} ms"
                    )
                if index >= ctx.warmups:
                    plain.append(first)
                    checkpointed.append(second)
                    raws.append(raw)
        finally:
            db.dispose()
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    def mid(values: list[Measured], field: str) -> float:
        return median([getattr(m, field) for m in values])

    size = f"{mid(plain, 'size') / 1e6:.0f} MB"
    how = "VACUUM INTO" if ctx.backend.kind == "sqlite" else "pg_dump -Fc in one exported snapshot"
    raw_name = "file copy" if ctx.backend.kind == "sqlite" else "bare pg_dump -Fc"
    raw = median(raws)
    out.rows.append(
        Row(
            f"B9 backup of {count:,} cases ({size}) while filing ({how}, counts, sha256, fsync) "
            f"vs a {raw_name} with no writer",
            fmt_ms(raw),
            fmt_ms(mid(plain, "seconds")),
            mid(plain, "seconds") / raw,
            "(info)",
            None,
        )
    )
    out.rows.append(
        Row(
            f"B9 the copy alone ({how}) vs a {raw_name}",
            fmt_ms(raw),
            fmt_ms(mid(plain, "copy_seconds")),
            mid(plain, "copy_seconds") / raw,
            "(info)",
            None,
        )
    )
    out.rows.append(
        Row(
            "B9 writer stall during a backup: longest filing under way vs a normal filing",
            fmt_ms(mid(plain, "normal")),
            fmt_ms(mid(plain, "stall")),
            mid(plain, "stall") / mid(plain, "normal"),
            "(info)",
            None,
        )
    )
    out.rows.append(
        Row(
            "B9 writer stall during a backup with --checkpoint (a checkpoint's write first) vs a normal filing",
            fmt_ms(mid(checkpointed, "normal")),
            fmt_ms(mid(checkpointed, "stall")),
            mid(checkpointed, "stall") / mid(checkpointed, "normal"),
            "(info)",
            None,
        )
    )
    return out
