"""The one place a notice's case texts are read (:func:`shown`) and a caller's recipient keys are
made (:func:`recipient_keys`).

A notice stores ids, kinds and instants only. When it is shown in an inbox or sent by e-mail,
the case facts its template needs are read here, through the case service and as the
recipient sees the case (their view policies apply). Seam for the personal-data work
(issue #18): once case texts are stored as ``pii:v1:...`` markers and consumers as
``sub_...`` pseudonyms, this function is where the markers are resolved for the recipient,
and no other module of the notification side reads a case text.

Recipient keys (notify/plan.py) name a consumer by the case's ``consumer_id`` as the command
path sees it: a pseudonym once issue #18 lands. :func:`recipient_keys` is then where a caller's
marketplace user id is mapped to that pseudonym (so inbox rows and the ``contacts`` row hold the
pseudonym, and erasing the subject erases by it).
"""

from __future__ import annotations

from typing import Any

from cases.service import CaseService
from notify.plan import inbox_keys, reader_of
from workflow.errors import DisputeError
from workflow.model import Actor


def shown(cases: CaseService, recipient: str, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The facts a template renders: the notice's data, and the case's id and category (and
    subject) as the recipient may see them now; what they may no longer see is left out."""
    facts = {**data, "case_id": case_id}
    if not case_id:
        return facts
    user_id, role, merchant_id = reader_of(recipient)
    try:
        case = cases.get(actor=Actor(user_id, role, merchant_id), case_id=case_id)
    except DisputeError:
        return facts
    facts.setdefault("category", case.category)
    facts["subject"] = case.subject
    return facts


def recipient_keys(cases: CaseService, actor: Actor) -> list[str]:
    """The recipient keys whose notices ``actor`` sees (theirs, their side's, their merchant's).
    Seam for issue #18: map ``actor.id`` to the consumer's pseudonym here."""
    return inbox_keys(actor.id, actor.party, actor.merchant_id)
