"""`disputes db backup` and `disputes db restore` on the command line: a round trip on the demo
database, and every refusal as one line with exit 2 and nothing swapped."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from privacy.keys import load_or_create_key_file
from runtime.bootstrap import build_engine
from runtime.settings import get_settings
from workflow.model import Actor, NewCase

runner = CliRunner()


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """One checkpoint key for every command of a test (the test environment's is per process)."""
    monkeypatch.setenv("DISPUTES_AUDIT_SIGNING_KEY", "24" * 32)
    get_settings.cache_clear()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "300"})


def refused(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    return lines[0]


def test_backup_then_restore_swaps_in_a_verified_copy(demo_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "nightly.sqlite"
    taken = invoke("db", "backup", "--to", str(backup))
    assert taken.exit_code == 0, taken.output
    assert "60 case chains" in taken.output and "latest checkpoint #" in taken.output
    manifest = json.loads((tmp_path / "nightly.sqlite.manifest.json").read_text(encoding="utf-8"))
    assert manifest["chains"]["cases"] == 60 and manifest["database"] == "sqlite"

    assert invoke("demo", "--count", "2").exit_code == 0  # after the backup: gone after the restore
    restored = invoke("db", "restore", str(backup), "--swap")
    assert restored.exit_code == 0, restored.output
    assert "sha256 matches its manifest; 60 cases" in restored.output
    assert "checkpoints agree with the live database's" in restored.output
    assert "swapped in; the old database is kept as" in restored.output
    kept = list(demo_db.parent.glob("demo.db.pre-restore-*"))
    assert len(kept) == 1 and not list(demo_db.parent.glob("demo.db.restore-*"))
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0 and "all 60 cases intact" in verified.output, verified.output


def test_a_backup_into_a_directory_gets_a_dated_name(demo_db: Path, tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    assert invoke("db", "backup", "--to", str(shelf)).exit_code == 0
    names = sorted(p.name for p in shelf.iterdir())
    assert len(names) == 2 and names[0].startswith("disputes-backup-") and names[1].endswith(".manifest.json")


def test_restore_without_swap_leaves_the_live_database_alone(demo_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b.sqlite"
    assert invoke("db", "backup", "--to", str(backup)).exit_code == 0
    before = demo_db.stat().st_mtime_ns
    copy = tmp_path / "copy.db"
    restored = invoke("db", "restore", str(backup), "--into", str(copy))
    assert restored.exit_code == 0, restored.output
    assert "not swapped in" in restored.output and copy.exists()
    assert demo_db.stat().st_mtime_ns == before


def test_a_corrupt_backup_is_one_line_exit_2_and_nothing_swapped(demo_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b.sqlite"
    assert invoke("db", "backup", "--to", str(backup)).exit_code == 0
    data = bytearray(backup.read_bytes())
    data[4096] ^= 0xFF
    backup.write_bytes(bytes(data))
    before = demo_db.read_bytes()
    line = refused(invoke("db", "restore", str(backup), "--swap"))
    assert "sha256" in line and "manifest" in line
    assert demo_db.read_bytes() == before
    assert not list(demo_db.parent.glob("demo.db.*restore*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "restore", "{tmp}/none.sqlite"], "does not exist"),
        (["db", "restore", "{tmp}/b.sqlite", "--manifest", "{tmp}/none.json"], "does not exist"),
        (["db", "restore", "{tmp}/b.sqlite", "--manifest", "{tmp}/junk.json"], "not a backup manifest"),
        (["db", "restore", "{tmp}/b.sqlite", "--into", "{tmp}/b.sqlite"], "exists already"),
        (["db", "backup", "--to", "{tmp}/b.sqlite"], "exists already"),
        (["db", "backup", "--to", "{tmp}/no/such/dir/b.sqlite"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(demo_db: Path, tmp_path: Path, args: list[str], message: str) -> None:
    assert invoke("db", "backup", "--to", str(tmp_path / "b.sqlite")).exit_code == 0
    (tmp_path / "junk.json").write_text("[1, 2", encoding="utf-8")
    line = refused(invoke(*[a.format(tmp=tmp_path) for a in args]))
    assert message in line, line


def test_a_lost_live_database_refuses_unless_without_live(demo_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b.sqlite"
    assert invoke("db", "backup", "--to", str(backup)).exit_code == 0
    demo_db.unlink()
    line = refused(invoke("db", "restore", str(backup), "--swap"))
    assert "erasures made after the backup cannot be re-applied" in line and "--without-live" in line
    assert not demo_db.exists()
    restored = invoke("db", "restore", str(backup), "--swap", "--without-live")
    assert restored.exit_code == 0, restored.output
    assert "NOT re-applied" in restored.output and demo_db.exists()
    assert invoke("audit", "verify").exit_code == 0


NAME = "张伟"
MOBILE = "13812345678"
ADDRESS = "上海市浦东新区世纪大道100号"
ORDER = "TB-20261111-7788"


def test_a_backup_taken_while_filing_restored_after_an_erasure_keeps_it_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's story on the command line: `db backup` while cases are being filed, `privacy
    erase` afterwards, `db restore --swap` of the backup: the swapped-in database verifies, its
    erasures verify, and neither its file nor its WAL holds the erased consumer's words."""
    live = tmp_path / "live.db"
    monkeypatch.setenv("DISPUTES_DATABASE_URL", f"sqlite:///{live}")
    get_settings.cache_clear()
    assert invoke("db", "upgrade").exit_code == 0
    engine = build_engine(get_settings())
    zhang, li = Actor("c-zhang", "consumer"), Actor("c-li", "consumer")
    filed: list[str] = []
    try:
        for actor, name in ((zhang, NAME), (zhang, NAME), (li, "李娜")):
            case = engine.cases.file(
                actor=actor,
                new_case=NewCase(
                    consumer_id=actor.id,
                    merchant_id="m-1",
                    category="product_quality",
                    subject=f"{name}的电水壶坏了",
                    description=f"收件人{name}，电话{MOBILE}，地址{ADDRESS}",
                    order_ref=ORDER if actor is zhang else "TB-OTHER",
                    claim_amount=29900,
                    currency="CNY",
                ),
            )
            engine.cases.execute(actor=actor, case_id=case.id, name="withdraw", reason=f"{name}已和商家和解")
            filed.append(case.id)
        stop = threading.Event()

        def keep_filing() -> None:
            # A short breath between filings, as a server has: a writer that takes SQLite's lock
            # back the instant it lets go starves another process's writer (the command's
            # start-up writes its configuration's versions) past its busy timeout.
            while not stop.wait(0.005):
                engine.cases.file(
                    actor=li,
                    new_case=NewCase(
                        consumer_id=li.id,
                        merchant_id="m-2",
                        category="not_received",
                        subject="还没收到",
                        description="包裹一直没到",
                        order_ref="TB-LI",
                        claim_amount=1000,
                        currency="CNY",
                    ),
                )

        writer = threading.Thread(target=keep_filing)
        writer.start()
        try:
            taken = invoke("db", "backup", "--to", str(tmp_path / "b.sqlite"))
        finally:
            stop.set()
            writer.join()
    finally:
        engine.dispose()
    assert taken.exit_code == 0, taken.output

    erased = invoke("privacy", "erase", "--subject", "c-zhang", "--basis", "PIPL Art. 47")
    assert erased.exit_code == 0 and "2 cases erased" in erased.output, erased.output
    restored = invoke("db", "restore", str(tmp_path / "b.sqlite"), "--swap")
    assert restored.exit_code == 0, restored.output
    assert "erasures re-applied: 1" in restored.output and "swapped in" in restored.output

    raw = b"".join(p.read_bytes() for p in (live, Path(f"{live}-wal")) if p.exists())
    assert all(case_id.encode("ascii") in raw for case_id in filed)  # the right bytes were read
    for secret in (NAME, MOBILE, ADDRESS, ORDER):
        assert secret.encode("utf-8") not in raw, secret
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.output
    erasures = invoke("audit", "verify", "--erasure")
    assert erasures.exit_code == 0, erasures.output


def test_a_restore_without_the_key_file_says_so_and_makes_none(demo_db: Path, tmp_path: Path) -> None:
    """The key file is not in the backup: a restore where it is lost is refused, naming the file
    and what to do, and no new key file is made (new keys would open nothing the copy holds)."""
    backup = tmp_path / "b.sqlite"
    assert invoke("db", "backup", "--to", str(backup)).exit_code == 0
    keys = demo_db.with_name("demo.db.keys")
    keys.rename(tmp_path / "kept-apart.keys")
    line = refused(invoke("db", "restore", str(backup), "--swap"))
    assert f"{keys}:1: error: no key file" in line and "not in a database backup" in line, line
    assert not keys.exists() and not list(demo_db.parent.glob("demo.db.pre-restore-*"))
    (tmp_path / "kept-apart.keys").rename(keys)
    assert invoke("db", "restore", str(backup), "--swap").exit_code == 0


def test_a_restore_with_another_key_file_is_refused_and_its_copy_removed(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = tmp_path / "b.sqlite"
    assert invoke("db", "backup", "--to", str(backup)).exit_code == 0
    other = tmp_path / "other.keys"
    load_or_create_key_file(other)
    monkeypatch.setenv("DISPUTES_KEY_FILE", str(other))
    get_settings.cache_clear()
    line = refused(invoke("db", "restore", str(backup), "--swap"))
    assert f"the key file {other} cannot open the copy's case keys wrapped under kek-" in line, line
    assert "60 cases" in line and "not in a database backup" in line
    assert not list(demo_db.parent.glob("demo.db.restore-*"))
    assert not list(demo_db.parent.glob("demo.db.pre-restore-*"))
