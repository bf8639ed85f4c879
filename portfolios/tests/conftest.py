"""Fixtures of the portfolio tests."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from portfolios.services import portfolio_lock


@pytest.fixture
def held_elsewhere(monkeypatch):
    """Another writer holds a portfolio's lock (in a thread of its own) until the test ends."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no row locks to hold from another connection")
    monkeypatch.setattr(portfolio_lock, "LOCK_WAIT_MS", 200)
    release = threading.Event()
    threads = []

    def hold(portfolio) -> None:
        locked = threading.Event()

        def run() -> None:
            try:
                with portfolio_lock.portfolio_locked(portfolio.pk):
                    locked.set()
                    release.wait(timeout=60)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        assert locked.wait(timeout=30), "the other writer never got the lock"

    yield hold
    release.set()
    for thread in threads:
        thread.join(timeout=60)
