"""Keeps each browser test's outcome on its item, so a failing test leaves a screenshot behind; and
the Chromium every browser test drives."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per test module; the test skips, saying why, when it is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    if CHROMIUM is None:
        pytest.skip("Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)")
    with sync_api.sync_playwright() as playwright:
        # Flags for a container: no sandbox (root, no user namespaces), no GPU, nothing phoned home.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield launched
        launched.close()
