"""Shared pytest fixtures for every app."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
# The execution fixtures (a movable clock at a market-open moment, the sample prices) for every app's tests.
pytest_plugins = ["portfolios.tests.execution_factories"]


@pytest.fixture
def shared_data() -> Path:
    """The real historical price files; tests that need them skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real price data not found at {SHARED_DATA} (clone the project next to shared/data)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Tests create many users; the production hasher's deliberate slowness buys nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _forget_recent_reads() -> None:
    """Each test starts with empty read memories (a transactional test's committed prices would
    otherwise be remembered into the next test's different ones)."""
    from marketdata.recent import forget_all

    forget_all()
