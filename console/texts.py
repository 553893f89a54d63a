"""The one function every case text passes through on its way to a page.

Subjects, descriptions, messages, statements, offer terms, answers and evidence descriptions
are personal data. The engine's services return them; the console never reads them from raw
event bodies or SQL. This seam is where the privacy layer plugs in: once case texts are stored
as markers (``pii:v1:<ref>:<hash>``) and consumers as pseudonyms, :func:`shown` resolves them
for the viewer through the engine's resolution entry point. Until then it returns the text
the service gave. Templates call it through the ``shown`` filter; nothing else renders a case
text.
"""

from __future__ import annotations

from runtime.engine import Engine
from workflow.model import Actor


def shown(engine: Engine, actor: Actor, text: str | None) -> str:
    """``text`` as ``actor`` may read it (the resolved personal text, or the text itself)."""
    del engine, actor  # the privacy layer's resolution takes both
    return text or ""
