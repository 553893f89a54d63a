"""The outbox's dispatcher as a running engine gives it (outbox/dispatch.py), and the thread
that runs it inside `disputes serve` (unless DISPUTES_RUN_DISPATCHER=false) or `disputes worker`."""

from __future__ import annotations

import logging
import threading

from notify.retry import parse_schedule
from outbox.dispatch import DispatchConfig, Dispatcher, run_forever
from outbox.mail import SmtpSettings
from runtime.engine import Engine
from runtime.settings import Settings

log = logging.getLogger("disputes.outbox")


def dispatch_config(settings: Settings) -> DispatchConfig:
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_sender,
        )
    # A lease shorter than a send could let a second dispatcher send while the first still waits.
    lease = max(settings.delivery_lease_seconds, settings.webhook_timeout_seconds * 3)
    return DispatchConfig(
        batch=settings.dispatcher_batch,
        concurrency=settings.dispatcher_concurrency,
        lease_seconds=lease,
        timeout_seconds=settings.webhook_timeout_seconds,
        schedule=parse_schedule(settings.webhook_retry_schedule),
        smtp=smtp,
    )


def build_dispatcher(engine: Engine) -> Dispatcher:
    return Dispatcher(engine.cases, engine.notification_rules, dispatch_config(engine.settings))


class DispatcherThread:
    """Runs passes of the dispatcher on a daemon thread until stopped."""

    def __init__(self, dispatcher: Dispatcher, interval: float) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the dispatcher is already running")
        self._thread = threading.Thread(
            target=run_forever,
            args=(self.dispatcher, self.interval, self._stop.is_set),
            name="outbox-dispatcher",
            daemon=True,
        )
        self._thread.start()
        log.info("outbox dispatcher: started, a pass every %ss", self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.dispatcher.close()
