"""How a mutating route answers, built inside its command's transaction.

A request with an ``Idempotency-Key`` has its answer stored with the command's events
(cases/idempotency.py), so the answer must exist before the transaction commits. A route
says how it answers before it runs its command (:func:`answering`): the status, the body
as a function of the command's result, and the headers a replay repeats. The command's
transaction renders and stores that answer; the guard middleware then sends the client
exactly the stored bytes, so the first answer and every replay are the same.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.deps import etag
from cases import idempotency
from workflow.model import CaseSnapshot

R = TypeVar("R")
# The response headers a replay repeats (lower case, as ASGI carries them).
REPLAYED_HEADERS = frozenset({"content-type", "etag", "location", "retry-after"})


def case_headers(case: CaseSnapshot) -> dict[str, str]:
    """The headers of an answer about one case: its version as the ETag."""
    return {"etag": etag(case.version)}


def _no_headers(_: Any) -> dict[str, str]:
    return {}


@contextlib.contextmanager
def answering(
    status: int, view: Callable[[R], Any], headers: Callable[[R], dict[str, str]] = _no_headers
) -> Iterator[None]:
    """Within this block, the current idempotent request (if any) is answered with ``status``,
    the JSON of ``view(result)`` and ``headers(result)``, rendered from the result of the
    command the block runs and stored in that command's transaction."""
    request = idempotency.current()
    if request is None:
        yield
        return

    def render(result: R) -> idempotency.StoredResponse:
        body = JSONResponse(jsonable_encoder(view(result))).body
        replayed = {"content-type": "application/json", **{k.lower(): v for k, v in headers(result).items()}}
        return idempotency.StoredResponse(status, json.dumps(replayed), bytes(body))

    request.render = render
    try:
        yield
    finally:
        request.render = None
