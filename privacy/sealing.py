"""Sealing a personal value: AES-256-GCM under the case's data key, the marker as associated data.

The sealed bytes are ``nonce (12) || ciphertext of (salt || utf-8 value) || tag``. Binding the
marker as associated data means a row copied under another marker does not open; opening also
recomputes the marker's commitment, so a value swapped with its salt is caught too.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.markers import SALT_BYTES, Secret, matches

DATA_KEY_BYTES = 32
NONCE_BYTES = 12


class TamperedValueError(ValueError):
    """A value row that does not open under its case's key, or does not match its marker."""

    def __init__(self, marker: str) -> None:
        super().__init__(f"the value row of {marker} does not match it (altered or swapped)")
        self.marker = marker


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def seal_value(data_key: bytes, secret: Secret) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, secret.salt + secret.value.encode("utf-8"), secret.marker.encode("ascii"))
    return nonce + sealed


def open_value(data_key: bytes, marker: str, sealed: bytes) -> tuple[bytes, str]:
    """``(salt, value)`` of a sealed row, checked against ``marker``; TamperedValueError if not."""
    try:
        plain = AESGCM(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], marker.encode("ascii"))
    except InvalidTag as exc:
        raise TamperedValueError(marker) from exc
    salt, value = plain[:SALT_BYTES], plain[SALT_BYTES:].decode("utf-8")
    if not matches(marker, salt, value):
        raise TamperedValueError(marker)
    return salt, value
