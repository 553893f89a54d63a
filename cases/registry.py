"""Workflow definitions in force, and every version cases are pinned to."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from desk.choice import WorkflowRule, choose_workflow
from policies.base import Authorizer
from policies.loader import version_documents
from store.db import Database
from store.tables import POLICY_VERSIONS, WORKFLOW_VERSIONS
from workflow.definition import (
    DEFAULT_WORKFLOW,
    PACKAGED_DEFINITIONS,
    WorkflowDefinition,
    load_definition_document,
    load_definition_file,
)
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.machine import WorkflowMachine, machine_for


class WorkflowRegistry:
    """Active definitions by name (new cases use these) and pinned versions by hash."""

    def __init__(
        self,
        definitions: list[WorkflowDefinition],
        default: str | None = None,
        rules: tuple[WorkflowRule, ...] = (),
    ) -> None:
        if not definitions:
            raise ValueError("at least one workflow definition is needed")
        self._lock = threading.Lock()
        # desk.yaml's workflow_rules: which workflow a filing uses by its facts (desk/choice.py).
        self.rules = rules
        self._active = {d.name: d for d in definitions}
        self._by_version = {d.version: d for d in definitions}
        self.default_name = default or (DEFAULT_WORKFLOW if DEFAULT_WORKFLOW in self._active else definitions[0].name)

    @classmethod
    def from_directory(cls, directory: Path = PACKAGED_DEFINITIONS, default: str | None = None) -> WorkflowRegistry:
        files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
        return cls([load_definition_file(f) for f in files], default=default)

    def active(self, name: str | None = None) -> WorkflowDefinition:
        name = name or self.default_name
        try:
            return self._active[name]
        except KeyError:
            raise NotFoundError("workflow", name) from None

    def for_filing(self, name: str | None, facts: Mapping[str, Any]) -> WorkflowDefinition:
        """The workflow a new case uses: the one its filer named (a name that is not active is the
        filer's mistake: InvalidCommandError on ``workflow``), else the first workflow rule
        matching its facts, else the default."""
        if name is None:
            return self.active(choose_workflow(self.rules, facts))
        found = self._active.get(name)
        if found is None:
            known = ", ".join(self._active)
            raise InvalidCommandError(f"unknown workflow {name!r} (workflows: {known})", field="workflow")
        return found

    @property
    def active_definitions(self) -> list[WorkflowDefinition]:
        return list(self._active.values())

    def replace_active(
        self,
        definitions: list[WorkflowDefinition],
        default: str | None = None,
        rules: tuple[WorkflowRule, ...] | None = None,
    ) -> None:
        """Swap in new definitions (a reload); pinned old versions stay resolvable.
        ``default``: the workflow new cases use from now on (unchanged if None)."""
        if not definitions:
            raise ValueError("at least one workflow definition is needed")
        with self._lock:
            for d in definitions:
                self._by_version[d.version] = d
            self._active = {d.name: d for d in definitions}
            if default is not None:
                self.default_name = default
            if rules is not None:
                self.rules = rules

    def machine(self, version: str, session: Session | None = None) -> WorkflowMachine:
        return machine_for(self.pinned(version, session))

    def pinned(self, version: str, session: Session | None = None) -> WorkflowDefinition:
        """The definition of ``version``, from memory or from the workflow_versions table."""
        found = self._by_version.get(version)
        if found is not None:
            return found
        if session is None:
            raise NotFoundError("workflow version", version)
        table = WORKFLOW_VERSIONS
        document = session.execute(select(table.c.document).where(table.c.version == version)).scalar()
        if document is None:
            raise NotFoundError("workflow version", version)
        definition = load_definition_document(json.loads(document), file=f"<stored {version[:12]}>")
        with self._lock:
            self._by_version[version] = definition
        return definition

    @staticmethod
    def store_policy_version(session: Session, version: str, documents: dict[str, str], now: datetime) -> None:
        """Record a policy set's files under its version (for export and third-party replay)."""
        table = POLICY_VERSIONS
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(
            insert(table)
            .values(
                version=version,
                files=json.dumps(documents, ensure_ascii=False, sort_keys=True),
                created_at=now,
            )
            .on_conflict_do_nothing()
        )

    def store_active(self, session: Session, now: datetime) -> None:
        """Record each active definition's document (once), so cases pinned to it can
        always replay. Called in its own transaction at start-up and on reload."""
        table = WORKFLOW_VERSIONS
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        for definition in self.active_definitions:
            values = {
                "version": definition.version,
                "name": definition.name,
                "document": json.dumps(definition.document, ensure_ascii=False, sort_keys=True),
                "created_at": now,
            }
            session.execute(insert(table).values(**values).on_conflict_do_nothing())


def record_versions(db: Database, registry: WorkflowRegistry, authorizer: Authorizer, now: datetime) -> None:
    """Store, once each, the documents of the active workflow definitions and the files of the
    policy set in force under their versions, so that every case can be replayed and exported.
    Run by the composition root at start-up and after a reload (runtime/bootstrap.py)."""
    with db.write() as session:
        registry.store_active(session, now)
        directory = getattr(authorizer, "directory", None)
        if directory is None:
            return
        version, documents = version_documents(directory)
        if version == authorizer.version:  # else the files changed since they were loaded: the next reload records them
            registry.store_policy_version(session, version, documents, now)
