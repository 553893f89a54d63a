"""All runtime settings in one place, read from DISPUTES_* environment variables, and the
checkpoint signing key they name."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.keys import generate_signing_key, load_signing_key, private_key_pem

log = logging.getLogger("disputes")

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEV_SIGNING_KEY_FILE = Path(".disputes-signing-key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISPUTES_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./disputes.db"
    # Per process: each API worker and each ticker holds up to pool_size + max_overflow
    # connections (docs/deploy.md sizes them against PostgreSQL's max_connections).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int | None = Field(default=None, ge=0, le=200)  # None: as many as db_pool_size
    db_pool_timeout: float = Field(default=30.0, gt=0)  # seconds a request waits for a free connection

    # Identity: HS256 with a shared secret, or RS256 with a public key (PEM text or file path).
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: str = DEV_SECRET
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = 30

    # Configuration of the desk (workflows, policies, calendars); None = packaged default.
    config_dir: Path | None = None
    # Run without any policy set (everything allowed); tests of lower layers only.
    allow_all: bool = False

    # Ed25519 key that signs checkpoints: PEM text, a 32-byte seed (hex/base64) or a file path.
    # In development a key is generated into DEV_SIGNING_KEY_FILE on first use.
    audit_signing_key: str | None = None
    # Public keys (hex) whose checkpoint signatures verification accepts; empty = the signing key's.
    audit_trusted_keys: tuple[str, ...] = ()
    checkpoint_interval_seconds: int = Field(default=3600, ge=1)
    # How often the ticker applies the merchant-supervision thresholds (reports/supervision.py); 0: never
    # (run `disputes supervise` instead).
    supervision_interval_seconds: int = Field(default=3600, ge=0)

    tick_seconds: float = Field(default=5.0, gt=0)
    run_ticker: bool = True

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upload_media_types: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/pdf",
        "text/plain",
        "video/mp4",
    )
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Failed authentications (no, malformed, expired or wrongly signed token) per client address:
    # past this, 429 until the bucket refills, so junk tokens cannot take the server's time.
    auth_failures_per_minute: int = Field(default=60, ge=1)
    # How long a throttled failed authentication waits for its 429 (api/guard.py).
    auth_failure_delay_seconds: float = Field(default=1.0, ge=0, le=30)
    # How long a duplicate POST waits for the first request with its Idempotency-Key before 409
    # (PostgreSQL; on SQLite, writers take turns and a duplicate waits its turn).
    idempotency_wait_seconds: float = Field(default=15.0, ge=0)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment == "production":
            if self.jwt_algorithm == "HS256" and (self.jwt_secret == DEV_SECRET or len(self.jwt_secret) < 32):
                raise ValueError(
                    "DISPUTES_JWT_SECRET must be set to a private value of 32+ characters outside development"
                )
            if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
                raise ValueError("DISPUTES_JWT_PUBLIC_KEY is required with RS256")
            if self.allow_all:
                raise ValueError("DISPUTES_ALLOW_ALL may not be used in production")
            if not self.audit_signing_key:
                raise ValueError("DISPUTES_AUDIT_SIGNING_KEY (the Ed25519 key that signs checkpoints) is required")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs checkpoints: configured, or in development one kept in a local file
    (generated on first use), or for tests a fresh one per process."""
    if settings.audit_signing_key:
        return load_signing_key(settings.audit_signing_key)
    if settings.environment == "test":
        return generate_signing_key()
    if not DEV_SIGNING_KEY_FILE.exists():
        DEV_SIGNING_KEY_FILE.write_text(private_key_pem(generate_signing_key()), encoding="utf-8")
        DEV_SIGNING_KEY_FILE.chmod(0o600)
        log.warning("generated a development checkpoint signing key in %s", DEV_SIGNING_KEY_FILE)
    return load_signing_key(str(DEV_SIGNING_KEY_FILE))
