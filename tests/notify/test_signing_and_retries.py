"""Standard Webhooks signing with the standard library, checked by the independent
``standardwebhooks`` package; the retry schedule with jitter; what an answer means."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notify import signing
from notify.retry import SCHEDULE, judge, next_attempt, parse_retry_after, parse_schedule

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_signatures_verify_with_the_reference_library() -> None:
    secret = signing.new_secret()
    body = '{"type":"case.filed","data":{"case_id":"DSP-1","subject":"电水壶"}}'.encode()
    headers = signing.headers([secret], "evt_DSP-1_1", int(time.time()), body)
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(secret).verify(body, headers)
    assert signing.verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    # The reference library's own signature of the same message is ours, byte for byte.
    reference = Webhook(secret).sign(
        "evt_DSP-1_1", datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC), body.decode()
    )
    assert reference == headers["webhook-signature"]


def test_rotation_sends_one_signature_per_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b"{}"
    headers = signing.headers([new, old], "evt_x_1", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


@pytest.mark.parametrize("bad", ["nope", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ="])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(signing.SecretError):
        signing.signature(bad, "evt", 1, b"{}")


def test_schedule_is_the_specifications_with_jitter() -> None:
    assert SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    rng = random.Random(1)
    for failures, delay in enumerate(SCHEDULE[1:], start=1):
        at = next_attempt(failures, NOW, rng=rng)
        assert at is not None
        assert timedelta(seconds=delay) <= at - NOW <= timedelta(seconds=delay * 1.1)
    assert next_attempt(len(SCHEDULE), NOW) is None  # ten attempts, then failed for good
    spread = {next_attempt(3, NOW, rng=rng) for _ in range(20)}
    assert len(spread) > 1  # jitter: not all at the same instant


def test_what_an_answer_means() -> None:
    assert judge(200, None, NOW).delivered and judge(204, None, NOW).delivered
    assert not judge(301, None, NOW).delivered  # only 2xx counts
    assert judge(410, None, NOW).disable
    assert judge(None, None, NOW) == judge(500, None, NOW)  # timeouts and resets are failures
    assert judge(429, None, NOW).slow_down == 30
    assert judge(503, "120", NOW).slow_down == 120
    assert judge(502, "Mon, 02 Mar 2026 03:00:00 GMT", NOW).slow_down == 3600
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("99999999", NOW) == 24 * 3600
    assert parse_schedule("0, 1.5,60") == (0, 1.5, 60)
    with pytest.raises(ValueError):
        parse_schedule("0,-1")
    with pytest.raises(ValueError):
        parse_schedule("a,b")
