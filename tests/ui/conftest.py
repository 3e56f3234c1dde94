"""Fixtures for the web page tests (see :mod:`tests.ui.harness`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.harness import ARTIFACTS, CHROMIUM_ARGS, World, build_world, chromium_path


@pytest.fixture(name="world", scope="module")
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One partnership with web pages, shared by a module's tests."""
    world = build_world(tmp_path_factory.mktemp("ui-world"))
    try:
        yield world
    finally:
        world.loop.close()


@pytest.fixture(name="browser", scope="module")
def _browser(world: World) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped only if not installed).

    Depends on ``world`` so that the partnership is set up (with the CLI, which runs its own
    event loop) before Playwright's synchronous API takes over this thread.
    """
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]'): browser tests skipped")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
