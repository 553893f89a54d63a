"""The one function every case text passes through on its way to a page.

Subjects, descriptions, messages, statements, offer terms, answers and evidence descriptions
are personal data. The engine's services return them; the console never reads them from raw
event bodies or SQL. Case texts are stored as markers (``pii:v1:<ref>:<hash>``) and consumers
as pseudonyms; :func:`shown` resolves them for the viewer through the engine's one resolution
entry point, ``CaseService.reveal`` (the services' own answers are revealed already, so this
costs nothing for them). Templates call it through the ``shown`` filter; nothing else renders
a case text.
"""

from __future__ import annotations

from runtime.engine import Engine
from workflow.model import Actor


def shown(engine: Engine, actor: Actor, text: str | None) -> str:
    """``text`` as ``actor`` may read it (the resolved personal text, or the text itself)."""
    del actor  # the services decided what the actor may see before the text reached a page
    return engine.cases.reveal(text or "")
