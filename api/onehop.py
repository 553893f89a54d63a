"""One thread hop per request for the API's blocking endpoints.

The endpoints are plain ``def`` functions: they call the service, which blocks on the
database. FastAPI runs such an endpoint in the thread pool, and then, because the
endpoint was not a coroutine, validates its return value in the thread pool again: two
hand-offs to a worker thread and back per request, each costing a round of GIL
switching on the event loop (bench B2). :class:`OneHopRoute` wraps each such endpoint
in a coroutine that runs the whole function in the pool once; FastAPI then validates
and serializes the result on the loop, where it would have held the GIL anyway.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function that runs it in the thread pool. The
    signature is kept (``functools.wraps``), so FastAPI resolves the same parameters."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isasyncgenfunction(endpoint):
            endpoint = in_thread_pool(endpoint)
        super().__init__(path, endpoint, **kwargs)
