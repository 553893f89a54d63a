"""A case's history and messages as lines of plain words, prepared in Python.

A 200-event case page spent most of its time in Jinja macro and method calls made per event;
the same sentences built here cost a tenth. The messages are gettext ids like the templates'
(marked with :func:`N_` so the catalogs' test finds them); every case text still passes through
:func:`console.texts.shown`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from console.formatting import Formatter
from console.i18n import translations
from console.texts import shown
from runtime.engine import Engine
from workflow.events import RecordedEvent
from workflow.model import Actor


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translated later"
    return message


WHO = {
    "consumer": N_("The consumer"),
    "merchant": N_("The merchant"),
    "mediator": N_("The mediator"),
    "senior_mediator": N_("The mediator"),
}
YOU, SYSTEM = N_("You"), N_("The system")
AUTHORS = {"consumer": N_("consumer"), "merchant": N_("merchant"), "mediator": N_("mediator")}
YOU_AUTHOR = N_("you")
STATES = {
    "filed": N_("Filed, waiting for a mediator"),
    "assigned": N_("With a mediator, waiting for the merchant's response"),
    "mediating": N_("In mediation"),
    "settled": N_("Settled"),
    "escalated": N_("With a senior mediator"),
    "closed": N_("Closed"),
}
CLOCKS = {
    "assignment": N_("A mediator takes the case"),
    "merchant_response": N_("The merchant responds"),
    "resolution": N_("Mediation reaches a settlement"),
    "ruling": N_("The senior mediator rules"),
    "fulfilment": N_("The merchant fulfils the settlement"),
}
SENTENCES = {
    "filed": N_("%(who)s filed the complaint."),
    "transitioned": N_("%(who)s moved the case on: %(state)s."),
    "message": N_("%(who)s wrote a message."),
    "evidence_added": N_("%(who)s added a file."),
    "evidence_submitted": N_("%(who)s submitted evidence."),
    "merchant_responded": N_("%(who)s responded to the claim."),
    "offer_proposed": N_("%(who)s proposed an offer."),
    "offer_accepted": N_("%(who)s accepted an offer."),
    "offer_rejected": N_("%(who)s rejected an offer."),
    "info_requested": N_("%(who)s asked a question."),
    "info_provided": N_("%(who)s answered a question."),
    "rated": N_("%(who)s rated the handling of the case."),
    "timer_started": N_("The clock started: %(clock)s."),
    "timer_warned": N_("The deadline is near: %(clock)s."),
    "timer_breached": N_("The deadline was missed: %(clock)s."),
    "timer_met": N_("Done in time: %(clock)s."),
    "timer_paused": N_("The clock is paused: %(clock)s."),
    "timer_resumed": N_("The clock runs again: %(clock)s."),
    "timer_cancelled": N_("The clock changed: %(clock)s."),
    "timer_rescheduled": N_("The clock changed: %(clock)s."),
    "flag_raised": N_("A flag was raised on the case."),
    "flag_cleared": N_("A flag was cleared."),
}


@dataclass(frozen=True, slots=True)
class Line:
    at: str  # ISO-8601, for <time datetime>
    when: str  # as the viewer reads it
    who: str  # messages: the author as the viewer calls them
    text: str
    internal: bool = False  # a mediator's internal note (the services never give one to a party)


def history(events: Iterable[RecordedEvent], actor: Actor, fmt: Formatter) -> list[Line]:
    """One line per event: who did what (no case texts: those have their own sections)."""
    gettext = translations(fmt.language).gettext
    labels = {name: gettext(label) for name, label in WHO.items()}
    you, system = gettext(YOU), gettext(SYSTEM)
    lines = []
    for event in events:
        who = you if event.actor_id == actor.id else labels.get(event.actor_role, system)
        data: dict[str, Any] = event.data
        sentence = SENTENCES.get(event.type)
        if sentence is None:
            text = event.type
        else:
            to, timer = data.get("to"), data.get("timer")
            text = gettext(sentence) % {
                "who": who,
                "state": gettext(STATES[to]) if to in STATES else to,
                "clock": gettext(CLOCKS[timer]) if timer in CLOCKS else timer,
            }
        lines.append(Line(event.at, fmt.instant(event.at), who, text))
    return lines


def messages(engine: Engine, rows: Iterable[Any], actor: Actor, fmt: Formatter) -> list[Line]:
    """The case's messages: author, when, and the text (through :func:`shown`)."""
    gettext = translations(fmt.language).gettext
    authors = {party: gettext(label) for party, label in AUTHORS.items()}
    you = gettext(YOU_AUTHOR)
    return [
        Line(
            fmt.iso(row.at),
            fmt.instant(row.at),
            you if row.author_id == actor.id else authors.get(row.party, row.party),
            shown(engine, actor, row.body),
            bool(getattr(row, "internal", False)),
        )
        for row in rows
    ]


# --- clocks -------------------------------------------------------------------------------------

PAUSED_FOR = {
    "consumer": N_("waiting for the consumer's answer to a question"),
    "merchant": N_("waiting for the merchant's answer to a question"),
}
DAYS_HOURS, HOURS_MINUTES = N_("%(days)d d %(hours)d h"), N_("%(hours)d h %(minutes)d min")
IN_ZONE = N_("%(time)s in %(zone)s")


@dataclass(frozen=True, slots=True)
class ClockLine:
    """A running or paused clock as a page shows it (lists show one per row)."""

    name: str  # the clock's label
    status: str  # running, paused (others are not shown)
    due_at: str  # ISO-8601
    due: str  # in the viewer's zone
    due_on_calendar: str  # in the calendar's zone, when it differs from the viewer's ("" otherwise)
    left: str  # business time left on the calendar ("" when overdue)
    warned: bool
    calendar: str
    paused_for: str  # why a paused clock waits ("" if unknown)


def duration(seconds: int, gettext: Any) -> str:
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    if hours >= 24:
        return str(gettext(DAYS_HOURS) % {"days": hours // 24, "hours": hours % 24})
    return str(gettext(HOURS_MINUTES) % {"hours": hours, "minutes": minutes})


def clock_line(timer: Any, zones: dict[str, Any], awaiting: tuple[str, ...], fmt: Formatter) -> ClockLine:
    """``timer`` (an SLA planner's view) for the viewer: deadline in their zone and the
    calendar's, business time left, or why it is paused."""
    gettext = translations(fmt.language).gettext
    zone = zones.get(timer.calendar)
    on_calendar = ""
    if zone is not None and not fmt.same_zone(zone):
        on_calendar = gettext(IN_ZONE) % {"time": fmt.instant(timer.due_at, zone), "zone": fmt.zone_name(zone)}
    paused_for = next((gettext(PAUSED_FOR[party]) for party in awaiting if party in PAUSED_FOR), "")
    return ClockLine(
        name=gettext(CLOCKS[timer.name]) if timer.name in CLOCKS else timer.name,
        status=timer.status,
        due_at=timer.due_at,
        due=fmt.instant(timer.due_at),
        due_on_calendar=on_calendar,
        left=duration(timer.remaining_seconds, gettext) if timer.remaining_seconds > 0 else "",
        warned=timer.warned,
        calendar=timer.calendar,
        paused_for=paused_for,
    )
