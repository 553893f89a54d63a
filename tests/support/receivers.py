"""Real receivers on 127.0.0.1 for the notification tests: a webhook receiver that can fail at
random (500s, timeouts, connection resets) or answer a scripted status, recording everything it
saw; and an SMTP server (aiosmtpd) collecting the messages it was sent."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    message_id: str
    headers: dict[str, str]
    body: bytes
    answered: int | None  # None: timed out or reset
    at: float


@dataclass
class Behaviour:
    """How the receiver answers: ``fail_rate`` of requests fail at random (a 500, a wait past the
    sender's timeout, or a reset connection); ``script`` answers the next requests in order first."""

    fail_rate: float = 0.0
    hang_seconds: float = 1.5
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    seed: int = 21


class WebhookReceiver:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._rng = random.Random(self.behaviour.seed)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (a dispatcher killed while sending): the
                    # message never arrived, as a real receiver would drop it too.
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, fault = receiver._decide()
                record = Received(headers.get("webhook-id", ""), headers, body, None, time.monotonic())
                if fault == "reset":
                    receiver._keep(record)
                    # SO_LINGER 0: close() sends RST, the sender sees a reset connection.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "hang":
                    receiver._keep(record)
                    time.sleep(receiver.behaviour.hang_seconds)
                    self.close_connection = True
                    return
                record.answered = status
                receiver._keep(record)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    def _decide(self) -> tuple[int, dict[str, str], str]:
        with self._lock:
            if self.behaviour.script:
                status, extra = self.behaviour.script.pop(0)
                return status, extra, ""
            if self._rng.random() < self.behaviour.fail_rate:
                fault = self._rng.choice(["500", "hang", "reset"])
                return (500, {}, "") if fault == "500" else (0, {}, fault)
        return 200, {}, ""

    def _keep(self, record: Received) -> None:
        with self._lock:
            self.received.append(record)

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_receiver(behaviour: Behaviour | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(behaviour).start()
    try:
        yield receiver
    finally:
        receiver.stop()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content, policy=policy.default))
        )
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[tuple[list[str], Message]]]]:
    """An aiosmtpd server on 127.0.0.1; yields its port and the messages it received."""
    from aiosmtpd.controller import Controller

    handler = _Collect()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.messages
    finally:
        controller.stop()
