"""Markers: what the hash chain holds in place of a personal value.

A marker is ``pii:v1:<ref>:<hex sha256(salt || utf-8 value)>``. ``ref`` names the value's row
beside the chain (the salt and value, encrypted under the case's data key); the digest commits
to the value, so a value disclosed later (with its salt) can be checked against the chain, and a
swapped row is caught on reading. The salt is 16 random bytes: without it, a digest of a mobile
number is brute-forced in about an hour. Text a person writes may not start with the prefix
(:func:`refuse_marker_text`), so a marker in the log is always one the engine wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from workflow.errors import InvalidCommandError

PREFIX = "pii:v1:"
# What every rendering shows for a marker whose value or case key is gone.
ERASED = "[erased]"
SALT_BYTES = 16
MARKER_LENGTH = len(PREFIX) + 24 + 1 + 64
_MARKER = re.compile(r"^pii:v1:([0-9a-f]{24}):([0-9a-f]{64})$")
# Text beginning like any version of a marker is refused, not only v1's.
_RESERVED = re.compile(r"^\s*pii:v\d", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Secret:
    """A personal value as it is protected: the marker that replaces it, its salt and the value."""

    marker: str
    ref: str
    salt: bytes
    value: str


def commitment(salt: bytes, value: str) -> str:
    """Hex sha256 of ``salt || utf-8 value``: the digest a marker carries."""
    return hashlib.sha256(salt + value.encode("utf-8")).hexdigest()


def new_ref() -> str:
    """A fresh reference: 96 random bits in hex, unique across every case."""
    return secrets.token_hex(12)


def protect(value: str) -> Secret:
    """The marker for ``value`` with a fresh ref and salt."""
    ref, salt = new_ref(), secrets.token_bytes(SALT_BYTES)
    return Secret(marker=f"{PREFIX}{ref}:{commitment(salt, value)}", ref=ref, salt=salt, value=value)


def parse(text: str) -> tuple[str, str] | None:
    """``(ref, digest)`` of a marker, or None when ``text`` is not one."""
    if not text.startswith(PREFIX):
        return None
    found = _MARKER.match(text)
    return (found.group(1), found.group(2)) if found else None


def is_marker(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX) and _MARKER.match(text) is not None


def matches(marker: str, salt: bytes, value: str) -> bool:
    """Does ``value`` with ``salt`` give the digest ``marker`` commits to?"""
    parsed = parse(marker)
    return parsed is not None and hmac.compare_digest(parsed[1], commitment(salt, value))


def refuse_marker_text(value: str, field: str) -> None:
    """Refuse text a person wrote that starts like a marker: it would read as one."""
    if _RESERVED.match(value):
        raise InvalidCommandError(f"{field} may not start with the reserved prefix 'pii:'", field=field)


# A consumer's pseudonym: what event bodies, actor columns and case columns hold in place of the
# marketplace's user id (the mapping is a table of the case room).
_PSEUDONYM = re.compile(r"^sub_[0-9a-z]{20}$")
_PSEUDONYM_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_pseudonym() -> str:
    return "sub_" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(20))


def is_pseudonym(text: str) -> bool:
    return text.startswith("sub_") and _PSEUDONYM.match(text) is not None
