"""The one set of people the tests act as, and the instant they start at."""

from __future__ import annotations

from datetime import UTC, datetime

from workflow.model import Actor

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
CONSUMER = Actor("c-1", "consumer")
OTHER_CONSUMER = Actor("c-2", "consumer")
MERCHANT = Actor("mu-1", "merchant", merchant_id="m-1")
OTHER_MERCHANT = Actor("mu-2", "merchant", merchant_id="m-2")
MEDIATOR = Actor("med-1", "mediator")
OTHER_MEDIATOR = Actor("med-2", "mediator")
SENIOR = Actor("sen-1", "senior_mediator")
AUDITOR = Actor("aud-1", "auditor")
ADMIN = Actor("adm-1", "admin")
