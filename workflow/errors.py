"""The engine's error roots: domain refusals (:class:`DisputeError`) and unusable configuration
(:class:`ConfigError`, with every :class:`Problem` and its file and line).

Storage errors have their own root, ``store.errors.StorageError``. Both edges map these classes
along the MRO: the API to problem+json types (api/problems.py), the command line to one line
and an exit code (cli/errors.py). A new error class needs one row there, or inherits its
parent's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration file, with where it is."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(ValueError):
    """Base of every configuration file that cannot be used (a workflow, a policy set, calendars,
    intake rules, a desk, scenario files): ``problems`` lists every problem found, each with its
    file and line. A ValueError, as a bad configuration value always was."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DisputeError(Exception):
    """Base of every error the engine raises on purpose."""

    type_slug = "dispute-error"


class NotFoundError(DisputeError):
    type_slug = "not-found"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")
        self.what = what
        self.ident = ident


class ConflictError(DisputeError):
    """Optimistic-lock failure: the case moved on since the caller read it."""

    type_slug = "stale-version"

    def __init__(self, case_id: str, current_version: int, expected_version: int | None = None) -> None:
        super().__init__(
            f"case {case_id} is at version {current_version}"
            + (f", not {expected_version}" if expected_version is not None else "")
        )
        self.case_id = case_id
        self.current_version = current_version
        self.expected_version = expected_version


class InvalidCommandError(DisputeError):
    """The command is malformed for the domain (missing reason, bad amount, unknown offer)."""

    type_slug = "validation"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransitionNotAllowedError(DisputeError):
    """The trigger or action is impossible in the case's current state."""

    type_slug = "transition-not-allowed"

    def __init__(self, name: str, state: str, possible: Sequence[str], *, kind: str = "trigger") -> None:
        listed = ", ".join(possible) or "none"
        super().__init__(f"{kind} {name!r} is not possible in state {state!r}; possible triggers: {listed}")
        self.name = name
        self.state = state
        self.possible = tuple(possible)
        self.kind = kind


class UnknownCommandError(DisputeError):
    type_slug = "validation"

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"{name!r} is neither a trigger nor an action of this workflow (known: {', '.join(known)})")
        self.name = name
        self.known = tuple(known)


class PolicyDeniedError(DisputeError):
    """A policy decision refused the request; carries the deciding policies and reasons."""

    type_slug = "policy-denied"

    def __init__(self, action: str, reasons: Sequence[str], policy_ids: Sequence[str] = ()) -> None:
        super().__init__(f"{action!r} refused: " + ("; ".join(reasons) or "no policy permits it"))
        self.action = action
        self.reasons = tuple(reasons)
        self.policy_ids = tuple(policy_ids)


class ReplayError(DisputeError):
    """The events cannot be folded: a gap in seq, a foreign case, an unknown type. Stored
    events that do not replay are damage (``audit verify`` names them)."""

    type_slug = "replay-error"

    def __init__(self, case_id: str, seq: int, message: str) -> None:
        super().__init__(f"case {case_id} seq {seq}: {message}")
        self.case_id = case_id
        self.seq = seq


class MediatorUnavailableError(DisputeError):
    """The named mediator is registered but may not take the case now (HTTP 409): ``reason`` is
    ``inactive`` or ``at_capacity`` (their open load plus the case's weight exceeds their capacity)."""

    type_slug = "mediator-unavailable"

    def __init__(self, mediator_id: str, reason: str, detail: str, *, open_load: int, capacity: int) -> None:
        super().__init__(f"mediator {mediator_id!r} cannot take the case: {detail}")
        self.mediator_id = mediator_id
        self.reason = reason
        self.open_load = open_load
        self.capacity = capacity
