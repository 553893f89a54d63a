"""Key-encryption keys: what wraps each case's data key, behind one small interface.

:class:`KeyProvider` is the seam. Development and SQLite desks use :class:`KeyFile` (a JSON file
of named 256-bit keys, the newest one current, generated next to the database on first use).
Production plugs a KMS in by implementing the same three members (``current``, ``wrap``,
``unwrap``: e.g. ``Encrypt``/``Decrypt`` of a KMS key, the key id as ``kek_id``); the data keys and
values never leave the engine. Rotation adds a new current key (:func:`rotate_key_file`); the
case room's ``rewrap_keys`` then re-wraps every live data key under it, and old keys can be
dropped once nothing is wrapped under them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from workflow.errors import ConfigError, Problem

KEY_FILE_VERSION = 1
KEK_BYTES = 32


class KeyProvider(Protocol):
    """Wraps and unwraps data keys. ``kek_id`` names the key a data key was wrapped under."""

    @property
    def current(self) -> str:
        """The id of the key new data keys are wrapped under."""
        ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """``(kek_id, wrapped)``: the data key wrapped under the current key."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """The data key, or ValueError when the key is unknown or the wrapping does not open."""
        ...


@dataclass
class KeyFile:
    """Named AES-256 key-encryption keys held in memory (loaded from a key file, or given)."""

    keys: dict[str, bytes]
    current_id: str
    source: str = "<keys>"

    @property
    def current(self) -> str:
        return self.current_id

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.current_id, aes_key_wrap(self.keys[self.current_id], data_key)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        kek = self.keys.get(kek_id)
        if kek is None:
            raise ValueError(f"no key-encryption key {kek_id!r} in {self.source}")
        try:
            return aes_key_unwrap(kek, wrapped)
        except InvalidUnwrap as exc:
            raise ValueError(f"the data key wrapped under {kek_id!r} does not open") from exc

    @classmethod
    def generate(cls, source: str = "<generated>") -> KeyFile:
        kek_id = _new_kek_id()
        return cls(keys={kek_id: secrets.token_bytes(KEK_BYTES)}, current_id=kek_id, source=source)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": KEY_FILE_VERSION,
                "current": self.current_id,
                "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self.keys.items()},
            },
            indent=2,
        )


# Why a key file can be missing where a database is restored, and what to do (docs/privacy.md).
KEY_FILE_ADVICE = (
    "the key file is not in a database backup: restore the one in use when the backup was taken "
    "from its own backup (docs/privacy.md, Backups and the key file), then restore again"
)


def _new_kek_id() -> str:
    return f"kek-{secrets.token_hex(4)}"


def load_key_file(path: Path) -> KeyFile:
    """The keys of a key file, or a ConfigError naming the file and what is wrong."""

    def problem(message: str) -> ConfigError:
        return ConfigError([Problem(str(path), 1, message)])

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise problem(f"cannot read the key file: {exc.strerror}") from exc
    except ValueError as exc:
        raise problem(f"not a key file (JSON expected): {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != KEY_FILE_VERSION:
        raise problem(f"not a key file of version {KEY_FILE_VERSION}")
    raw = document.get("keys")
    current = document.get("current")
    if not isinstance(raw, dict) or not raw or not isinstance(current, str) or current not in raw:
        raise problem("a key file needs 'keys' (id -> base64 key) and 'current' naming one of them")
    keys: dict[str, bytes] = {}
    for kek_id, text in raw.items():
        try:
            key = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
        except ValueError:
            key = b""
        if len(key) != KEK_BYTES:
            raise problem(f"key {kek_id!r} is not {KEK_BYTES} bytes of base64")
        keys[kek_id] = key
    return KeyFile(keys=keys, current_id=current, source=str(path))


def write_key_file(path: Path, keys: KeyFile) -> None:
    """Write ``keys`` readable by the owner only (created 0600, replaced atomically)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(keys.to_json())
    os.replace(temporary, path)


def load_or_create_key_file(path: Path) -> tuple[KeyFile, bool]:
    """The key file's keys, generating the file first when there is none; ``True`` if generated."""
    if path.exists():
        return load_key_file(path), False
    keys = KeyFile.generate(str(path))
    write_key_file(path, keys)
    return keys, True


def rotate_key_file(path: Path) -> KeyFile:
    """Add a new key to the file and make it current (the old keys stay, for unwrapping)."""
    keys = load_key_file(path)
    kek_id = _new_kek_id()
    rotated = KeyFile(keys={**keys.keys, kek_id: secrets.token_bytes(KEK_BYTES)}, current_id=kek_id, source=str(path))
    write_key_file(path, rotated)
    return rotated
