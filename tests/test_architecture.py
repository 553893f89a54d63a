"""The rooms keep their layers: the import-linter contract of pyproject.toml holds (a package
imports only packages below it; the pure packages import no web framework and no database
library). `make lint` runs the same contract; this keeps a plain `pytest` run honest too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contract_holds() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_every_top_level_package_is_in_the_contract() -> None:
    """A new room must take its place in the layers (pyproject.toml and docs/architecture.md)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("tests", "bench"))
    for package in packages:
        assert f'"{package}"' in text.split("[tool.importlinter]")[1], f"{package} is not in the import contract"


def test_no_test_module_imports_another() -> None:
    """Shared builders live in tests/support/; fixtures in conftest.py files. A test module that
    imports another runs (or hides) that module's tests in a second place."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("tests."):
                module = words[1].split(".")[-1]
                if module.startswith("test_") or module == "conftest":
                    offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []
