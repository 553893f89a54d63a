"""The storage errors: one root, :class:`StorageError`, for everything the database (not the
domain, not the configuration) refuses. The API answers them 503 (or 500 for damage), the
command line with one line and exit 2 (api/problems.py, cli/errors.py)."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the storage errors."""

    type_slug = "storage"


class DatabaseUnavailableError(StorageError):
    """The database stayed busy or unreachable after retries (HTTP 503)."""

    type_slug = "unavailable"


class SchemaBehindError(StorageError):
    """The database is not at the code's migration head (run `disputes db upgrade`)."""

    type_slug = "schema-behind"


class AuditIntegrityError(StorageError):
    """Stored audit data does not match what was signed (the checkpoint tables were changed)."""

    type_slug = "audit-integrity"


class BackupError(StorageError):
    """A backup or restore could not be made: the target exists, ``pg_dump`` is missing, a copy
    failed. Nothing was swapped."""

    type_slug = "backup"


class RestoreRefusedError(BackupError):
    """A restored copy failed a check (the file's digest, its chains, its checkpoints against the
    manifest's or the live database's): it was not swapped in."""

    type_slug = "restore-refused"
