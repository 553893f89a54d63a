"""The load generator survives a server that closes or resets keep-alive connections under a
request: each such request counts as failed (error key "connection"), and the next one
opens a new connection. Against a small asyncio HTTP server on loopback, no mocks."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from bench import loadgen
from tests.support.live import run_coroutine

ANSWER = b'HTTP/1.1 201 Created\r\nContent-Length: 2\r\nETag: "1"\r\nLocation: /v1/cases/DSP-X\r\n\r\n{}'


class DroppingServer:
    """Answers every request, except that the 3rd, 6th, 9th, ... are never answered: the
    connection is closed (odd ones: a FIN after reading the request) or reset (even ones: RST)."""

    def __init__(self) -> None:
        self.requests = 0
        self.answered = 0
        self.dropped = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                if self.requests % 3 == 0:
                    self.dropped += 1
                    if self.requests % 2 == 0:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                writer.write(ANSWER)
                await writer.drain()
                self.answered += 1
        finally:
            writer.close()


def config(port: int, phase: str) -> dict[str, Any]:
    tokens = {"consumer": "t", "merchant": "t", "mediator": "t"}
    common = {"port": port, "mode": "bare", "tokens": tokens, "phase": phase, "duration": 0.6, "warmup": 0}
    return {**common, "rate": 150, "seed": 7} if phase == "open" else {**common, "concurrency": 2}


@pytest.mark.parametrize("phase", ["open", "closed"])
def test_dropped_connections_count_as_failed_requests(phase: str) -> None:
    server = DroppingServer()

    async def run() -> list[dict[str, Any]]:
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            return await loadgen.phases([config(port, phase)])

    [result] = run_coroutine(run())

    assert server.dropped >= 5 and server.answered >= 10, vars(server)
    # Every request the server never answered is a failed request, and only those.
    assert result["errors"] == {"connection": server.dropped}, result
    assert result["dropped"] == server.dropped
    assert any("connection lost" in sample for sample in result["samples"]), result["samples"]
    # A connection is dropped once: requests went on, each drop followed by a fresh connection.
    assert result["opened"] == server.connections >= server.dropped
    assert server.answered >= 2 * server.dropped  # every 3rd request dropped, to the very end
    if phase == "open":
        assert result["completed"] == server.answered  # answered ones only carry a latency
    else:
        assert 0 < result["completed"] <= server.answered
