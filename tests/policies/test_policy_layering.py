"""The policies package stays pure: importing it pulls in no web, database or upper-layer modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import policies

ROOT = Path(policies.__file__).resolve().parent.parent
FORBIDDEN = ("fastapi", "sqlmodel", "sqlalchemy", "starlette", "cases", "api", "sla")


def test_importing_policies_imports_nothing_forbidden() -> None:
    code = (
        "import sys\n"
        "import policies, policies.base, policies.facts, policies.loader, policies.cedar, policies.lint\n"
        "import policies.store\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_policies_sources_do_not_name_forbidden_packages() -> None:
    for path in sorted((ROOT / "policies").glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                top = stripped.split()[1].split(".")[0]
                assert top not in FORBIDDEN, f"{path.name}: {stripped}"
