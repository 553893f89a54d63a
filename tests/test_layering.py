"""The pure packages stay pure: importing workflow, policies, sla or intake pulls in no web, database
or upper-layer module, and no module of theirs names one (DESIGN.md section 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_AND_DB = ("fastapi", "sqlmodel", "sqlalchemy", "starlette")
# Imports point one way: api -> cases -> {intake, sla, policies, workflow}; intake -> {sla, workflow};
# sla, policies -> workflow.
FORBIDDEN = {
    "workflow": (*WEB_AND_DB, "cases", "api", "sla", "policies", "intake"),
    "policies": (*WEB_AND_DB, "cases", "api", "sla", "intake"),
    "sla": (*WEB_AND_DB, "cases", "api", "policies", "intake"),
    "intake": (*WEB_AND_DB, "cases", "api", "policies"),
}


def modules_of(package: str) -> list[str]:
    return [package] + [f"{package}.{p.stem}" for p in sorted((ROOT / package).glob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_a_pure_package_imports_nothing_forbidden(package: str) -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {modules_of(package)!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN[package]!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_sources_do_not_name_forbidden_packages(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                top = stripped.split()[1].split(".")[0]
                assert top not in FORBIDDEN[package], f"{path.name}: {stripped}"
