"""The default policy set, loaded once per session (loading parses and validates every file)."""

from __future__ import annotations

import pytest

from policies.cedar import CedarAuthorizer, load_policy_dir


@pytest.fixture(scope="session")
def authorizer() -> CedarAuthorizer:
    return load_policy_dir()
