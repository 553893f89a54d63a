"""The console's fixtures: a browserless session per person over the real app (``web``), and
for the browser tests (``test_browser_*.py``) a live server on 127.0.0.1 with a temporary
SQLite database and demo data, Debian's Chromium driven by Playwright, and a screenshots
folder named after each test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from cli.demo_data import create_demo
from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.actors import T0
from tests.support.console import Browserless, console_client, console_engine
from tests.support.database import with_schema
from tests.support.live import serve

SCREENSHOTS = Path(os.environ.get("DISPUTES_SCREENSHOTS", "build/screenshots"))
REQUIRE_BROWSER = bool(os.environ.get("CI")) or os.environ.get("DISPUTES_REQUIRE_BROWSER") == "1"


@pytest.fixture
def console_engine_factory(db_url: str) -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        engine = console_engine(db_url, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(console_engine_factory: Callable[..., Engine]) -> Engine:
    return console_engine_factory()


@pytest.fixture
def web(engine: Engine) -> Iterator[Callable[[], Browserless]]:
    """A new browserless session (its own cookies) on the one app, per call."""
    clients: list[Browserless] = []

    def session() -> Browserless:
        made = console_client(engine)
        clients.append(made)
        return made

    yield session
    for made in clients:
        made.client.__exit__(None, None, None)


# --- the real browser -----------------------------------------------------------------------------


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the whole session (Debian's, with --no-sandbox: root in CI)."""
    executable = chromium_path()
    if executable is None:
        message = (
            "NO CHROMIUM FOUND: the console's browser tests did not run (apt-get install chromium fonts-wqy-microhei)"
        )
        if REQUIRE_BROWSER:
            pytest.fail(message)
        print(f"\n\n*** {message} ***\n")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The console on a live server on 127.0.0.1: a temporary SQLite database with demo data,
    demo sign-in on, the engine's clock a manual one the test moves."""
    url = f"sqlite:///{tmp_path / 'disputes.db'}"
    for ready in with_schema(url):
        clock = ManualClock(T0)
        engine = console_engine(ready, demo=True, clock=clock)
        create_demo(engine.cases, clock, count=8)
        with serve(create_app(engine=engine)) as base:
            yield base, engine
        engine.dispose()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], None]:
    """Screenshots into a folder named after the test (its node name, parameters included)."""
    folder = SCREENSHOTS / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return take
