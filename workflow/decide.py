"""decide(): a case snapshot and a command -> the events it causes, or a refusal.

Pure: no I/O, no clock (the command carries its instant), no randomness (new
offer, evidence and request ids derive from the case's next sequence number).
Who may do what is the policy layer's business; decide() only enforces what the
domain itself cannot allow (impossible triggers, malformed data, accepting one's
own offer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflow.categories import CATEGORY_ID
from workflow.definition import TransitionDef
from workflow.errors import InvalidCommandError, TransitionNotAllowedError, UnknownCommandError
from workflow.events import Event
from workflow.machine import WorkflowMachine
from workflow.model import MEDIATOR_ROLES, CaseSnapshot, Command
from workflow.text import TEXT_MAX, free_text, identifier

MAX_TEXT = TEXT_MAX


def check_text(value: str, field: str) -> None:
    """Refuse what free text may not hold (workflow/text.py), allowing the empty text."""
    free_text(value, field, required=False)


RULING_DECISIONS = ("for_consumer", "for_merchant", "partial")


def decide(machine: WorkflowMachine, snapshot: CaseSnapshot, command: Command) -> list[Event]:
    """Return the events ``command`` causes on ``snapshot``; raise a DisputeError if refused."""
    name = command.name
    transition = machine.transition(snapshot.state, name)
    if transition is not None:
        return [_transition_event(snapshot, transition, command)]
    if name in machine.definition.trigger_names:
        raise TransitionNotAllowedError(name, snapshot.state, machine.possible_triggers(snapshot.state))
    action = machine.action(name)
    if action is None:
        known = (*machine.definition.trigger_names, *machine.definition.action_names)
        raise UnknownCommandError(name, known)
    if not machine.action_allowed(snapshot.state, name):
        raise TransitionNotAllowedError(name, snapshot.state, machine.possible_triggers(snapshot.state), kind="action")
    handler = _ACTIONS[action.kind]
    return handler(snapshot, command, f"{snapshot.version + 1}")


def kind_of(machine: WorkflowMachine, name: str) -> str | None:
    """'trigger', 'action' or None for an unknown name."""
    if name in machine.definition.trigger_names:
        return "trigger"
    if machine.action(name) is not None:
        return "action"
    return None


# --- transitions -----------------------------------------------------------


def _transition_event(snapshot: CaseSnapshot, transition: TransitionDef, command: Command) -> Event:
    data: dict[str, Any] = {
        "trigger": transition.trigger,
        "from": snapshot.state,
        "to": transition.dest,
    }
    reason = _text(command.reason, "reason", required=transition.requires_reason, limit=4000)
    if reason:
        data["reason"] = reason
    if transition.assigns_mediator:
        mediator_id = command.data.get("mediator_id")
        if mediator_id is None and command.actor.role in MEDIATOR_ROLES:
            mediator_id = command.actor.id
        if mediator_id is None or mediator_id == "":
            raise InvalidCommandError(f"{transition.trigger!r} needs data.mediator_id", field="data.mediator_id")
        # Whether the id names a registered, active mediator with room is the service's check
        # (it needs the roster); the domain makes sure it is an identifier, in its one form.
        data["mediator_id"] = identifier(mediator_id, "data.mediator_id")
    citations = command.data.get("citations")
    if citations is not None:
        data["citations"] = _citations(citations)
    if transition.counts_reopen:
        data["reopen_count"] = snapshot.reopen_count + 1
    outcome = transition.outcome
    if outcome == "full_claim":
        data["outcome"] = "for_consumer"
        data["awarded_amount"] = snapshot.claim_amount
    elif outcome == "accepted_offer":
        offer = snapshot.offer(snapshot.accepted_offer_id) if snapshot.accepted_offer_id else None
        if offer is None:
            raise InvalidCommandError(f"{transition.trigger!r} needs an offer accepted by the other party")
        data["outcome"] = "settled_by_offer"
        data["offer_id"] = offer.offer_id
        data["awarded_amount"] = offer.amount
    elif outcome == "ruling":
        decision = command.data.get("decision")
        if decision not in RULING_DECISIONS:
            raise InvalidCommandError(
                f"a ruling needs data.decision, one of {', '.join(RULING_DECISIONS)}", field="data.decision"
            )
        if decision == "for_consumer":
            amount = snapshot.claim_amount
        elif decision == "for_merchant":
            amount = 0
        else:
            amount = _amount(command.data.get("awarded_amount"), "data.awarded_amount", upper=snapshot.claim_amount)
        data["outcome"] = decision
        data["awarded_amount"] = amount
    elif outcome in ("withdrawn", "rejected"):
        data["outcome"] = outcome
    return Event("transitioned", data)


# --- actions -----------------------------------------------------------------


def _text(value: Any, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    return free_text(value, field, required=required, limit=limit)


MAX_CITATIONS = 10


def _citations(value: Any) -> list[str]:
    """The rulebook entries a decision cites: identifiers, each once, in the order given. Whether
    they exist in the desk's rulebook is the case service's check (it holds the rulebook)."""
    if not isinstance(value, list) or not value or len(value) > MAX_CITATIONS:
        raise InvalidCommandError(
            f"data.citations must be a list of 1 to {MAX_CITATIONS} rulebook entry ids", field="data.citations"
        )
    cited: list[str] = []
    for item in value:
        entry = identifier(item, "data.citations")
        if entry not in cited:
            cited.append(entry)
    return cited


def _amount(value: Any, field: str, *, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommandError(f"{field} must be an integer amount in minor units", field=field)
    if value < 0:
        raise InvalidCommandError(f"{field} must not be negative", field=field)
    if upper is not None and value > upper:
        raise InvalidCommandError(f"{field} must not exceed the claim ({upper})", field=field)
    return value


def _comment(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    body = _text(command.data.get("body"), "data.body")
    internal = command.data.get("internal", False)
    if not isinstance(internal, bool):
        raise InvalidCommandError("data.internal must be true or false", field="data.internal")
    if internal and command.actor.role not in MEDIATOR_ROLES:
        raise InvalidCommandError("only mediators write internal notes", field="data.internal")
    return [
        Event(
            "message", {"message_id": f"msg{new_id}", "body": body, "internal": internal, "party": command.actor.party}
        )
    ]


def _add_evidence(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    data = command.data
    sha = _text(data.get("sha256"), "data.sha256", limit=64)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise InvalidCommandError("data.sha256 must be 64 lowercase hex digits", field="data.sha256")
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        # An empty file proves nothing and its sha256 is the same for every empty upload.
        raise InvalidCommandError("data.size must be a positive integer: evidence cannot be empty", field="data.size")
    return [
        Event(
            "evidence_added",
            {
                "evidence_id": f"ev{new_id}",
                "party": command.actor.party,
                "filename": _text(data.get("filename"), "data.filename", limit=255),
                "media_type": _text(data.get("media_type"), "data.media_type", limit=255),
                "size": size,
                "sha256": sha,
                "description": _text(data.get("description"), "data.description", required=False, limit=2000),
            },
        )
    ]


def _submit_evidence(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    drafts = [e.evidence_id for e in snapshot.evidence if e.status == "draft" and e.party == command.actor.party]
    if not drafts:
        raise InvalidCommandError("there is no draft evidence of yours to submit")
    return [Event("evidence_submitted", {"evidence_ids": drafts, "party": command.actor.party})]


def _respond(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    statement = _text(command.data.get("statement"), "data.statement")
    return [Event("merchant_responded", {"statement": statement})]


def _propose_offer(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    if command.actor.party not in ("consumer", "merchant"):
        raise InvalidCommandError("offers are proposed by the consumer or the merchant")
    amount = _amount(command.data.get("amount"), "data.amount", upper=snapshot.claim_amount)
    currency = command.data.get("currency", snapshot.currency)
    if currency != snapshot.currency:
        raise InvalidCommandError(
            f"the offer's currency must be the claim's ({snapshot.currency})", field="data.currency"
        )
    terms = _text(command.data.get("terms"), "data.terms", required=False, limit=4000)
    return [
        Event(
            "offer_proposed",
            {
                "offer_id": f"off{new_id}",
                "amount": amount,
                "currency": currency,
                "terms": terms,
                "party": command.actor.party,
            },
        )
    ]


def _open_offer(snapshot: CaseSnapshot, command: Command) -> str:
    offer_id = command.data.get("offer_id")
    offer = snapshot.offer(offer_id) if isinstance(offer_id, str) else None
    if offer is None:
        raise InvalidCommandError(f"no offer {offer_id!r} on this case", field="data.offer_id")
    if offer.status != "open":
        raise InvalidCommandError(f"offer {offer_id} is {offer.status}", field="data.offer_id")
    if offer.proposed_by == command.actor.party:
        raise InvalidCommandError("an offer is answered by the other party, not its proposer", field="data.offer_id")
    if command.actor.party not in ("consumer", "merchant"):
        raise InvalidCommandError("offers are answered by the consumer or the merchant")
    return offer.offer_id


def _accept_offer(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    return [Event("offer_accepted", {"offer_id": _open_offer(snapshot, command), "party": command.actor.party})]


def _reject_offer(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    reason = _text(command.data.get("reason") or command.reason, "reason", required=False, limit=4000)
    return [
        Event(
            "offer_rejected",
            {"offer_id": _open_offer(snapshot, command), "party": command.actor.party, "reason": reason},
        )
    ]


def _request_info(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    party = command.data.get("party")
    if party not in ("consumer", "merchant"):
        raise InvalidCommandError("data.party must be 'consumer' or 'merchant'", field="data.party")
    question = _text(command.data.get("question"), "data.question", limit=4000)
    return [Event("info_requested", {"request_id": f"rq{new_id}", "party": party, "question": question})]


def _provide_info(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    request_id = command.data.get("request_id")
    request = next((r for r in snapshot.info_requests if r.request_id == request_id), None)
    if request is None:
        raise InvalidCommandError(f"no information request {request_id!r} on this case", field="data.request_id")
    if request.status != "open":
        raise InvalidCommandError(f"request {request_id} is already answered", field="data.request_id")
    if request.party != command.actor.party:
        raise InvalidCommandError(f"request {request_id} is addressed to the {request.party}", field="data.request_id")
    answer = _text(command.data.get("answer"), "data.answer", limit=MAX_TEXT)
    return [Event("info_provided", {"request_id": request.request_id, "answer": answer})]


def _rate(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    party = command.actor.party
    if party not in ("consumer", "merchant"):
        raise InvalidCommandError("only the parties rate a case")
    if any(r.party == party for r in snapshot.ratings):
        raise InvalidCommandError(f"the {party} has already rated this case")
    score = command.data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidCommandError("data.score must be an integer from 1 to 5", field="data.score")
    comment = _text(command.data.get("comment"), "data.comment", required=False, limit=4000)
    return [Event("rated", {"party": party, "score": score, "comment": comment})]


def _recategorise(snapshot: CaseSnapshot, command: Command, new_id: str) -> list[Event]:
    """A mediator's correction of the case's category: part of the log, and a training example
    for the next triage model (cases/learning.py)."""
    category = command.data.get("category")
    # Which categories exist is the desk's (the case service checks it, cases/service.py); the
    # log's replay, across desk versions, only needs a category id.
    if not isinstance(category, str) or not CATEGORY_ID.match(category):
        raise InvalidCommandError("data.category must be a category id", field="data.category")
    if category == snapshot.category:
        raise InvalidCommandError(f"the case is already in category {category!r}", field="data.category")
    reason = _text(command.reason, "reason", limit=4000)
    return [Event("category_corrected", {"from": snapshot.category, "to": category, "reason": reason})]


_ACTIONS: dict[str, Callable[[CaseSnapshot, Command, str], list[Event]]] = {
    "comment": _comment,
    "add_evidence": _add_evidence,
    "submit_evidence": _submit_evidence,
    "respond": _respond,
    "propose_offer": _propose_offer,
    "accept_offer": _accept_offer,
    "reject_offer": _reject_offer,
    "request_info": _request_info,
    "provide_info": _provide_info,
    "rate": _rate,
    "recategorise": _recategorise,
}
