"""A minimal webhook receiver for the dispatcher benchmark: ``python -m bench.receiver PORT``.

A bare ASGI callable under uvicorn (uvloop, httptools) that reads the body and answers 204 over
keep-alive: as little receiver as possible, so the benchmark measures the dispatchers. What was
delivered is read from the database (``deliveries.delivered_at``), not counted here."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

NO_CONTENT = {"type": "http.response.start", "status": 204, "headers": [(b"content-length", b"0")]}
EMPTY = {"type": "http.response.body", "body": b""}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(NO_CONTENT)
    await send(EMPTY)


def main() -> None:
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
