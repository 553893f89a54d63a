"""tools/verify_export.py run as an outsider would: in a directory where nothing of this
project (nor its libraries but the two the tool names) can be imported."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"
# What the verifier may import besides the standard library: rfc8785, cryptography and
# what cryptography itself loads.
ALLOWED = ("rfc8785", "cryptography", "cffi", "_cffi_backend", "pycparser")
PROJECT = (
    "workflow",
    "policies",
    "sla",
    "intake",
    "desk",
    "store",
    "cases",
    "audit",
    "reports",
    "scenarios",
    "runtime",
    "api",
    "cli",
    "tests",
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
)
BOOTSTRAP = """
import importlib.util, runpy, sys
site, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, site)
present = [m for m in sys.argv[3].split(",") if importlib.util.find_spec(m) is not None]
if present:
    sys.exit(f"importable in the verifier's environment: {present}")
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


@dataclass
class Run:
    code: int
    out: str


def make_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the tool and links to exactly the packages it may use (the
    ``verifier`` fixture of tests/conftest.py)."""
    home = tmp_path_factory.mktemp("outsider")
    site = home / "site"
    site.mkdir()
    for name in ALLOWED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (site / source.name).symlink_to(source, target_is_directory=source.is_dir())
    shutil.copy(TOOL, home / "verify_export.py")
    return home


def run_tool(home: Path, export: Path, *args: str) -> Run:
    """python -I -S: no environment variables, no site-packages (where this project is
    installed in editable mode), no script directory on the path; only ``site``."""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            BOOTSTRAP,
            str(home / "site"),
            str(home / "verify_export.py"),
            ",".join(PROJECT),
            str(export),
            *args,
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "importable in the verifier's environment" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    return Run(result.returncode, result.stdout)
