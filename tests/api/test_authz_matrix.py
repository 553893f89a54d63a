"""The authorization matrix: every route x every role x case states, expectations in a data file.

`authz_matrix.yaml` holds, per route (and request variant) and case state, the status
each role must get, in the role order of its header. A route of the app missing from
the file fails the test. Set AUTHZ_MATRIX_PRINT=1 to print what the app answers now,
in the file's format (for reviewing a policy change, never for blind copying).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.actors import AUDITOR
from tests.support.api import MATRIX_DESCRIPTION, MATRIX_INTERNAL_NOTE, Api, case_in_state
from workflow.model import Actor

MATRIX_FILE = Path(__file__).with_name("authz_matrix.yaml")


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    # The matrix sends a thousand-odd requests as fast as the engine answers them; the
    # rate limiter is another test's subject (test_limits.py), not a role's permission.
    return api_factory({"rate_limit_per_minute": 10**6, "auth_failures_per_minute": 10**6})


MATRIX: dict[str, Any] = yaml.safe_load(MATRIX_FILE.read_text(encoding="utf-8"))
ROLES: list[str] = MATRIX["roles"]
IDENTITIES: dict[str, tuple[str, str, str | None] | None] = {
    "consumer": ("c-1", "consumer", None),
    "other_consumer": ("c-2", "consumer", None),
    "merchant": ("mu-1", "merchant", "m-1"),
    "other_merchant": ("mu-2", "merchant", "m-2"),
    "assigned_mediator": ("med-1", "mediator", None),
    "other_mediator": ("med-2", "mediator", None),
    "senior_mediator": ("sen-1", "senior_mediator", None),
    "auditor": ("aud-1", "auditor", None),
    "admin": ("adm-1", "admin", None),
    "anonymous": None,
}
# The mediator record `POST /v1/mediators` registers and `PATCH /v1/mediators/{mediator_id}` changes.
MEDIATOR_ID = "med-9"


def call(api: Api, role: str, key: str, spec: dict[str, Any], ids: dict[str, str]) -> tuple[int, str]:
    method, path = key.split("#")[0].split(" ", 1)
    url = path.format(**ids, mediator_id=MEDIATOR_ID, endpoint_id="ep_missing")
    headers: dict[str, str] = {}
    identity = IDENTITIES[role]
    if identity is not None:
        headers.update(api.token(identity[0], identity[1], identity[2]))
    if spec.get("if_match"):
        version = api.service.get(actor=Actor("aud-1", "auditor"), case_id=ids["case_id"]).version
        headers["If-Match"] = f'"{version}"'
    kwargs: dict[str, Any] = {}
    if "query" in spec:
        kwargs["params"] = spec["query"]
    if "body" in spec:
        kwargs["json"] = spec["body"]
    if "file" in spec:
        kwargs["files"] = {"file": ("photo.png", b"\x89PNG photo", "image/png")}
    response = api.client.request(method, url, headers=headers, **kwargs)
    assert response.status_code < 500, f"{role} {key}: {response.status_code} {response.text}"
    return response.status_code, response.text


# The personal texts of the matrix's cases, and the action the policies must allow a role before
# any answer shows it the text (resolved from its marker by the service's one reveal).
PERSONAL_TEXTS = {MATRIX_DESCRIPTION: "view", MATRIX_INTERNAL_NOTE: "view_internal"}


def may(api: Api, role: str, action: str, case_id: str) -> bool:
    """Do the policies allow ``role`` ``action`` on the case as it stands?"""
    identity = IDENTITIES[role]
    if identity is None:
        return False
    case = api.service.get(actor=AUDITOR, case_id=case_id)
    actor = Actor(identity[0], identity[1], identity[2])
    return api.service.authorizer.decide(actor=actor, action=action, case=case, now=api.service.clock.now()).allowed


def leaks(key: str, role: str, answer: str, allowed: dict[str, bool]) -> list[str]:
    """The personal texts ``answer`` shows that the policies did not let ``role`` see (``allowed``:
    per text, decided on the case as it stood before the request)."""
    return [
        f"{key} {role}: shows {action}-only text {text[:8]}..."
        for text, action in PERSONAL_TEXTS.items()
        if text in answer and not allowed[text]
    ]


def test_every_route_is_in_the_matrix(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    covered = {key.split("#")[0] for key in MATRIX["routes"]}
    assert routes - covered == set(), f"routes missing from {MATRIX_FILE.name}"
    assert covered - routes == set(), "the matrix names routes the app lacks"


def test_matrix(api: Api) -> None:
    printing = os.environ.get("AUTHZ_MATRIX_PRINT") == "1"
    failures: list[str] = []
    shared: dict[str, dict[str, str]] = {}
    for key, spec in MATRIX["routes"].items():
        for state in spec.get("states", ["filed", "mediating", "closed"]):
            expected = str(spec.get(state, spec.get("all", ""))).split()
            got: list[str] = []
            for index, role in enumerate(ROLES):
                # Reads share one case per state; each mutation gets a fresh one.
                if spec.get("mutates"):
                    ids = case_in_state(api, state)
                else:
                    ids = shared.get(state) or shared.setdefault(state, case_in_state(api, state))
                allowed = {text: may(api, role, action, ids["case_id"]) for text, action in PERSONAL_TEXTS.items()}
                status, answer = call(api, role, key, spec, ids)
                got.append(str(status))
                failures.extend(leaks(key, role, answer, allowed))
                if not printing and (index >= len(expected) or expected[index] != str(status)):
                    want = expected[index] if index < len(expected) else "?"
                    failures.append(f"{key} [{state}] {role}: expected {want}, got {status}")
            if printing:
                print(f"  {key!r} {state}: {' '.join(got)}")
    assert not failures, "\n".join(failures)
