"""The one place a notice's case texts are read (:func:`shown`) and a caller's recipient keys are
made (:func:`recipient_keys`).

A notice stores ids, kinds and instants only. When it is shown in an inbox or sent by e-mail,
the case facts its template needs are read here, through the case service and as the
recipient sees the case (their view policies apply): the case service answers with its
``pii:v1:...`` markers resolved (issue #18), and a consumer's key, which names their ``sub_...``
pseudonym, is turned back into the person to read as. No other module of the notification side
reads a case text.

Recipient keys (notify/plan.py) name a consumer by the case's ``consumer_id`` as the command
path sees it: a pseudonym (issue #18). :func:`recipient_keys` is where a caller's
marketplace user id is mapped to that pseudonym (so inbox rows and the ``contacts`` row hold the
pseudonym, and erasing the subject erases by it).
"""

from __future__ import annotations

from typing import Any

from cases.service import CaseService
from notify.plan import inbox_keys, reader_of
from privacy.markers import ERASED
from workflow.categories import TITLE_LANGUAGES
from workflow.errors import DisputeError
from workflow.model import Actor


def shown(cases: CaseService, recipient: str, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The facts a template renders: the notice's data, and the case's id and category (and
    subject) as the recipient may see them now, with the rulebook entries that apply to the
    category; what they may no longer see is left out. Where the desk declares what the case's
    state reads as to the recipient's party (a state's ``labels``), ``state_label`` carries it:
    where the case stands now, in that party's words."""
    facts = {**data, "case_id": case_id}
    if not case_id:
        return facts
    user_id, role, merchant_id = reader_of(recipient)
    if role == "consumer":
        # Consumer keys carry the pseudonym the log holds; the case is read as the person.
        user_id = cases.reveal(user_id)
        if user_id == ERASED:
            return facts
    reader = Actor(user_id, role, merchant_id)
    try:
        case = cases.get(actor=reader, case_id=case_id)
    except DisputeError:
        return facts
    facts.setdefault("category", case.category)
    categories = cases.categories
    if categories.declared and facts["category"] in categories:
        # A desk's own category reads as its title (notify/templates.py); a dropped one as its id.
        facts["category_titles"] = {lang: categories.title(facts["category"], lang) for lang in TITLE_LANGUAGES}
    facts["subject"] = case.subject
    label = cases.party_labels(actor=reader, cases=[case]).get(case.id)
    if label is not None:
        facts["state_label"] = label
    if cases.rulebook is not None:
        # The desk's rulebook entries for the category, which the acknowledgement cites in plain
        # language (issue #22): desk texts, not the case's, so nothing here needs protecting.
        facts["rulebook"] = [
            {"id": e.id, "citation": e.citation, "title": dict(e.title), "summary": dict(e.summary)}
            for e in cases.rulebook.for_category(str(facts["category"]))
        ]
    return facts


def recipient_keys(cases: CaseService, actor: Actor) -> list[str]:
    """The recipient keys whose notices ``actor`` sees (theirs, their side's, their merchant's),
    as the log knows them: a consumer by their pseudonym, so no notice row holds a user id."""
    logged = cases.as_logged(actor)
    return inbox_keys(logged.id, logged.party, logged.merchant_id)
