"""axe-core in the browser tests: the vendored release (tests/support/vendor/, sha256 pinned)
evaluated in the page through the DevTools protocol (so the console's CSP need not allow it),
and the serious or critical violations it finds."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

AXE_FILE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # npm axe-core 4.14.1 axe.min.js
BLOCKING = ("serious", "critical")
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def axe_source() -> str:
    content = AXE_FILE.read_bytes()
    if hashlib.sha256(content).hexdigest() != AXE_SHA256:
        raise AssertionError(f"{AXE_FILE.name} is not the pinned axe-core release")
    return content.decode("utf-8")


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """axe's serious and critical violations on ``page`` as it stands (WCAG 2.x A and AA rules)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", RULE_TAGS
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def assert_accessible(page: Any, where: str) -> None:
    found = blocking_violations(page)
    assert not found, f"axe on {where}: {found}"
