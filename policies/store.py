"""PolicyStore: the policy set currently serving, replaced only by one that validates."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from policies.cedar import CedarAuthorizer
from policies.lint import lint
from policies.loader import PolicyLoadError, try_load
from workflow.definition import WorkflowDefinition
from workflow.errors import Problem
from workflow.facts import desk_fact_types, desk_related_names


class PolicyStore:
    """Holds the current :class:`CedarAuthorizer`; :meth:`reload` swaps it atomically.

    A request should read :attr:`current` once and use that authorizer for all its
    decisions and for the policy version it records, so that a reload in between
    cannot mix two policy sets in one request.
    """

    def __init__(self, authorizer: CedarAuthorizer, *, workflows: Sequence[WorkflowDefinition] = ()) -> None:
        """``workflows``: when given, a reload is also refused if the lint finds a
        workflow trigger or action no permit reaches, or a permit naming an unknown action."""
        self._current = authorizer
        self._workflows = tuple(workflows)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, *, workflows: Sequence[WorkflowDefinition] = ()) -> PolicyStore:
        """Load ``path`` (raising :class:`PolicyLoadError` with every problem) and serve it."""
        return cls(_build(Path(path), tuple(workflows)), workflows=workflows)

    @property
    def current(self) -> CedarAuthorizer:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def reload(self, path: str | Path | None = None) -> CedarAuthorizer:
        """Validate ``path`` (default: the directory now serving) and serve it.

        On any problem raise :class:`PolicyLoadError` and keep serving the previous set.
        """
        directory = Path(path) if path is not None else self._current.directory
        with self._lock:
            # Build outside any reader's way: readers never take the lock, they
            # see either the old or the new authorizer, never a half-loaded one.
            authorizer = _build(directory, self._workflows, zone=self._current.loaded.fact_zone)
            self._current = authorizer
            return authorizer

    def replace(self, authorizer: CedarAuthorizer, *, workflows: Sequence[WorkflowDefinition] = ()) -> None:
        """Serve ``authorizer``, already validated and linted by the caller together with the
        ``workflows`` it goes with (a whole desk reloading: both change at once)."""
        with self._lock:
            self._workflows = tuple(workflows)
            self._current = authorizer

    def try_reload(self, path: str | Path | None = None) -> list[Problem]:
        """Like :meth:`reload` but return the problems (empty when the new set serves)."""
        try:
            self.reload(path)
        except PolicyLoadError as exc:
            return list(exc.problems)
        return []


def _build(directory: Path, workflows: tuple[WorkflowDefinition, ...], *, zone: str = "UTC") -> CedarAuthorizer:
    types, clashes = desk_fact_types(workflows)
    if clashes:
        raise PolicyLoadError([Problem(directory.as_posix(), 1, clash) for clash in clashes])
    loaded, problems = try_load(directory, fact_types=types, fact_zone=zone, related=desk_related_names(workflows))
    if loaded is None:
        raise PolicyLoadError(problems)
    authorizer = CedarAuthorizer(loaded)
    if workflows:
        problems = lint(authorizer.loaded, workflows)
        if problems:
            raise PolicyLoadError(problems)
    return authorizer
