"""The demo identities: whom `disputes token --demo` mints tokens for and whom the console's
demo sign-in lists (subject, role, merchant id), one per role, matching `disputes demo`'s data."""

from __future__ import annotations

DEMO_IDENTITIES: tuple[tuple[str, str, str | None], ...] = (
    ("c-2001", "consumer", None),
    ("mu-m-1001", "merchant", "m-1001"),
    ("med-li", "mediator", None),
    ("sen-zhao", "senior_mediator", None),
    ("aud-1", "auditor", None),
    ("adm-1", "admin", None),
    ("reviewer-1", "reviewer", None),
)
