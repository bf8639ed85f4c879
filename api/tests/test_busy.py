"""A write that meets another request's lock answers JSON with Retry-After and saves nothing: 409
when the portfolio is busy (the services' own lock wait ran out), 503 when any other database lock
wait or deadlock ends the request. Never an HTML 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.urls import reverse

from api.errors import is_lock_error
from portfolios.models import Holding, Portfolio
from portfolios.services import portfolio_lock


class _PostgresError(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _caused_by(error: Exception) -> OperationalError:
    wrapped = OperationalError("the database refused the statement")
    wrapped.__cause__ = error
    return wrapped


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (_caused_by(_PostgresError("55P03")), True),  # lock_not_available
        (_caused_by(_PostgresError("40P01")), True),  # deadlock_detected
        (_caused_by(_PostgresError("40001")), True),  # serialization_failure
        (_caused_by(_PostgresError("57P01")), False),  # admin_shutdown: retrying the same server will not help
        (OperationalError("database is locked"), True),  # SQLite
        (OperationalError("disk I/O error"), False),
        (ValueError("database is locked"), False),
    ],
)
def test_which_database_errors_mean_busy(error, busy):
    assert is_lock_error(error) is busy


@contextmanager
def row_locked_elsewhere(portfolio_id: int) -> Iterator[None]:
    """Another connection holds ``portfolio_id``'s row lock (as a concurrent request would) until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Portfolio.objects.select_for_update().get(pk=portfolio_id)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10), "the other connection could not take the lock"
    try:
        yield
    finally:
        release.set()
        holder.join(30)


@pytest.fixture
def postgres_world(transactional_db, owner, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks that wait: PostgreSQL (SQLite has one writer for the whole file)")
    monkeypatch.setattr(portfolio_lock, "LOCK_WAIT_MS", 300)
    with connection.cursor() as cursor:
        # This session's own statements give up on a lock after 300 ms (the server default waits forever).
        cursor.execute("SET lock_timeout = 300")
    yield owner
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = DEFAULT")


def test_holdings_write_on_a_busy_portfolio_is_409_with_retry_after(postgres_world):
    world = postgres_world
    url = reverse("api:portfolio-holdings", kwargs={"pk": world.portfolio.pk})
    before = dict(Holding.objects.filter(portfolio=world.portfolio).values_list("instrument__symbol", "quantity"))
    with row_locked_elsewhere(world.portfolio.pk):
        response = world.client.put(url, {"holdings": [{"symbol": "SPY", "quantity": "1"}]}, format="json")
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) >= 1 and "try again" in response.json()["detail"]
    after = dict(Holding.objects.filter(portfolio=world.portfolio).values_list("instrument__symbol", "quantity"))
    assert after == before


def test_cash_write_on_a_busy_portfolio_is_409(postgres_world):
    world = postgres_world
    url = reverse("api:portfolio-cash", kwargs={"pk": world.portfolio.pk})
    with row_locked_elsewhere(world.portfolio.pk):
        response = world.client.put(url, {"cash_usd": "1"}, format="json")
    assert response.status_code == 409 and "Retry-After" in response
    assert Portfolio.objects.get(pk=world.portfolio.pk).cash_usd != Decimal(1)


def test_a_lock_wait_that_escapes_a_view_is_503_json_with_retry_after(postgres_world):
    world = postgres_world
    url = reverse("api:portfolio-detail", kwargs={"pk": world.portfolio.pk})
    with row_locked_elsewhere(world.portfolio.pk):
        response = world.client.delete(url)
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) >= 1 and response.json()["detail"]
    assert Portfolio.objects.filter(pk=world.portfolio.pk).exists()
