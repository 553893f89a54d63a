"""All runtime settings in one place, read from DISPUTES_* environment variables, and the
checkpoint signing key they name."""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.keys import generate_signing_key, load_signing_key, private_key_pem
from privacy.keys import KEY_FILE_ADVICE, KeyFile, KeyProvider, load_key_file, load_or_create_key_file
from workflow.errors import ConfigError, Problem

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
    # The key file whose keys wrap each case's data key (privacy/keys.py; docs/privacy.md says how
    # a KMS replaces it). Unset in development: generated next to the SQLite database on first use.
    key_file: Path | None = None
    # No longer read: how long personal data is kept is the desk's ``retention_years`` (desk.yaml).
    # Refused when set, so a deployment that set it is told, not silently given the desk's period.
    retention_years: int | None = None
    # How often the ticker runs the retention sweep (and deferred erasures of cases since
    # closed); 0: never.
    retention_interval_seconds: int = Field(default=3600, ge=0)
    # How often the ticker applies the merchant-supervision thresholds (reports/supervision.py); 0: never
    # (run `disputes supervise` instead).
    supervision_interval_seconds: int = Field(default=3600, ge=0)

    # Demo mode (what `make run` starts): the console's sign-in page lists the demo users, one
    # click each (runtime/demo.py). Refused in production.
    demo: bool = False

    tick_seconds: float = Field(default=5.0, gt=0)
    run_ticker: bool = True
    # Load the triage's encoder and fill its table with the desk's vocabulary at start-up, on a
    # thread, so the first complaint filed without a category waits for neither.
    warm_triage: bool = True

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

    # Notifications (issue #21): the outbox's dispatcher runs inside `disputes serve` unless
    # DISPUTES_RUN_DISPATCHER=false (then `disputes worker` runs it).
    run_dispatcher: bool = True
    dispatcher_interval_seconds: float = Field(default=1.0, gt=0)
    dispatcher_batch: int = Field(default=100, ge=1, le=1000)
    dispatcher_concurrency: int = Field(default=16, ge=1, le=256)
    # A claimed delivery is in flight this long; a dispatcher killed meanwhile leaves it to the next.
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Seconds after each failure (Standard Webhooks' schedule); comma-separated to override.
    webhook_retry_schedule: str = "0,5,300,1800,7200,18000,36000,50400,72000,86400"
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "disputes@localhost"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.retention_years is not None:
            raise ValueError(
                "DISPUTES_RETENTION_YEARS is no longer read: set retention_years in the desk's desk.yaml "
                "(docs/privacy.md), then unset it"
            )
        if self.environment == "production":
            if self.jwt_algorithm == "HS256" and (self.jwt_secret == DEV_SECRET or len(self.jwt_secret) < 32):
                raise ValueError(
                    "DISPUTES_JWT_SECRET must be set to a private value of 32+ characters outside development"
                )
            if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
                raise ValueError("DISPUTES_JWT_PUBLIC_KEY is required with RS256")
            if self.allow_all:
                raise ValueError("DISPUTES_ALLOW_ALL may not be used in production")
            if self.demo:
                raise ValueError("DISPUTES_DEMO (one-click demo sign-in) may not be used in production")
            if not self.audit_signing_key:
                raise ValueError("DISPUTES_AUDIT_SIGNING_KEY (the Ed25519 key that signs checkpoints) is required")
            if self.key_file is None:
                raise ValueError("DISPUTES_KEY_FILE (the keys that wrap personal data's case keys) is required")
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


def memory_keys(database_url: str) -> KeyFile:
    """Keys for tests of a database without a key file: derived from the database's URL, so every
    process of a test (a server restarted, a second worker) unwraps the others' case keys. Never
    outside the test environment: anyone who knows the URL knows the key."""
    seed = hashlib.sha256(b"dispute-engine test keys\0" + database_url.encode("utf-8")).digest()
    return KeyFile(keys={"kek-test": seed}, current_id="kek-test", source="<test keys>")


def default_key_file(database_url: str) -> Path | None:
    """Where a development desk keeps its key file: beside its SQLite database file
    (``disputes.db`` -> ``disputes.db.keys``); None for other databases."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path + ".keys")


def key_provider(settings: Settings, *, create: bool = True) -> KeyProvider:
    """The keys that wrap case data keys: the configured key file; in development one beside the
    SQLite database (or in the working directory), generated on first use (``create=False``, as
    a restore asks: a ConfigError instead, since new keys open nothing the database holds); in
    tests without a file, keys kept in memory per database."""
    if settings.key_file is not None:
        try:
            return load_key_file(settings.key_file)
        except ConfigError as exc:
            if create or settings.key_file.exists():
                raise
            raise ConfigError([Problem(str(settings.key_file), 1, f"no key file: {KEY_FILE_ADVICE}")]) from exc
    path = default_key_file(settings.database_url)
    if path is None and settings.environment == "test":
        return memory_keys(settings.database_url)
    path = path or Path(".disputes-keys")
    if not create and not path.exists():
        raise ConfigError([Problem(str(path), 1, f"no key file (DISPUTES_KEY_FILE unset): {KEY_FILE_ADVICE}")])
    keys, generated = load_or_create_key_file(path)
    if generated:
        log.warning("generated a development key file for personal data in %s", path)
    return keys
