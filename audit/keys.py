"""Ed25519 keys that sign checkpoints: generated, written as PEM, read from PEM, seeds or files."""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted: what settings and key files hold."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 hex digits, the form checkpoints name it in."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(source: str | bytes | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) text, a 32-byte seed (raw, hex or base64),
    or a path to a file holding either. Errors never echo the key material."""
    data = _key_material(source)
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"the signing key PEM cannot be read ({type(exc).__name__}); it must be unencrypted"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"the signing key is {type(key).__name__}, not Ed25519")
        return key
    return Ed25519PrivateKey.from_private_bytes(_seed(data))


def load_public_key(source: str | bytes | os.PathLike[str]) -> str:
    """A trusted public key as 64 hex digits, from hex, PEM (SubjectPublicKeyInfo) or a file."""
    data = _key_material(source)
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"the public key is {type(key).__name__}, not Ed25519")
        return public_key_hex(key)
    stripped = data.strip()
    if len(stripped) == 64 and _HEX64.fullmatch(stripped.decode("ascii", "replace")):
        return stripped.decode("ascii").lower()
    raise ValueError("a public key must be 64 hex digits or a PEM public key")


def _key_material(source: str | bytes | os.PathLike[str]) -> bytes:
    if isinstance(source, os.PathLike):
        return Path(source).expanduser().read_bytes()
    if isinstance(source, bytes):
        return source
    text_ = source.strip()
    if "-----BEGIN" in text_:
        # Keys put in environment variables often carry literal "\n" for newlines.
        return text_.replace("\\n", "\n").encode("ascii", "replace")
    if _looks_like_seed(text_):
        return text_.encode("ascii")
    path = Path(text_).expanduser()
    if text_ and path.is_file():
        return path.read_bytes()
    raise ValueError("the key is neither PEM, a 32-byte seed in hex or base64, nor a readable file")


def _looks_like_seed(value: str) -> bool:
    if _HEX64.fullmatch(value):
        return True
    try:
        return len(_b64(value)) == 32
    except ValueError:
        return False


def _b64(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def _seed(data: bytes) -> bytes:
    if len(data) == 32 and not _HEX64.fullmatch(data.decode("latin-1")):
        return data  # a raw binary seed file
    value = data.strip().decode("ascii", "replace")
    if _HEX64.fullmatch(value):
        return bytes.fromhex(value)
    try:
        seed = _b64(value)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed must be 32 bytes (64 hex digits or 44 base64 characters)")
    return seed
