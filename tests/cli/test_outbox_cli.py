"""`disputes outbox` and `disputes webhooks` on the demo database: the demo's writes wait in the
outbox; an endpoint registered on the command line receives them on `outbox dispatch`."""

from __future__ import annotations

import re
from pathlib import Path

from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli import app
from tests.support.receivers import Behaviour, webhook_receiver

runner = CliRunner()


def test_outbox_and_webhooks_commands(demo_db: Path) -> None:
    before = runner.invoke(app, ["outbox", "status"])
    assert before.exit_code == 0, before.output
    depth = int(re.search(r"outbox depth (\d+)", before.output).group(1))  # type: ignore[union-attr]
    assert depth > 0  # the demo's filings, waiting to be fanned out
    with webhook_receiver(Behaviour(script=[(500, {})])) as receiver:
        added = runner.invoke(app, ["webhooks", "add", receiver.url, "--events", "case.filed"])
        assert added.exit_code == 0, added.output
        endpoint_id = added.output.split()[0]
        secret = re.search(r"secret (whsec_\S+)", added.output).group(1)  # type: ignore[union-attr]
        assert endpoint_id in runner.invoke(app, ["webhooks", "list"]).output
        dispatched = runner.invoke(app, ["outbox", "dispatch"])
        assert dispatched.exit_code == 0, dispatched.output
        delivered = receiver.delivered()
        assert delivered and all(Webhook(secret).verify(r.body, r.headers) for r in delivered)
        assert all(b'"type":"case.filed"' in r.body for r in delivered)
    status = runner.invoke(app, ["outbox", "status"])
    assert endpoint_id in status.output
    assert "oldest undelivered" in status.output
    assert runner.invoke(app, ["webhooks", "failed", endpoint_id]).output.strip().endswith("0 failed deliveries")
    assert runner.invoke(app, ["webhooks", "resend", endpoint_id]).output.strip() == "0 deliveries queued again"
    assert runner.invoke(app, ["webhooks", "rotate", endpoint_id]).output.startswith("secret whsec_")
    assert runner.invoke(app, ["webhooks", "remove", endpoint_id]).exit_code == 0
    missing = runner.invoke(app, ["webhooks", "remove", endpoint_id])
    assert missing.exit_code == 2 and "not found" in missing.output
    bad = runner.invoke(app, ["webhooks", "add", "ftp://example.com/x"])
    assert bad.exit_code == 2 and "http(s) URL" in bad.output
    role = runner.invoke(app, ["worker", "--role", "mailer"])
    assert role.exit_code == 2 and "--role is all, ticker or dispatcher" in role.output
