"""Parallel rebalance requests for one portfolio: each gets a JSON answer, one run per date is stored."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from marketdata.models import Instrument
from portfolios.models import RebalanceRun
from portfolios.tests.execution_factories import AS_OF, paper_portfolio

from .conftest import token_client

CLIENTS = 8


def rebalance_in_parallel(portfolio, clients) -> list:
    url = reverse("api:portfolio-rebalance", kwargs={"pk": portfolio.pk})
    barrier = threading.Barrier(CLIENTS)
    answers = []

    def send(client):
        try:
            barrier.wait()
            answers.append(client.post(url, {"as_of": AS_OF.isoformat()}, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_parallel_rebalances_of_a_portfolio_whose_planning_fails_all_answer_422(prices, clock):
    """Each request stores the failure; the ones that lose the race to store it still answer it."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the requests cannot race")
    Instrument.objects.create(symbol="NOPX", name="No prices", asset_class="equity")
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000}, targets={"SPY": "0.9", "NOPX": "0.1"})
    clients = [token_client(portfolio.owner, f"client {i}") for i in range(CLIENTS)]
    for _ in range(3):
        answers = rebalance_in_parallel(portfolio, clients)
        assert [a.status_code for a in answers] == [422] * CLIENTS, [a.content[:200] for a in answers]
        assert all("no price on 2025-06-30 for NOPX" in a.json()["detail"] for a in answers)
        failed = RebalanceRun.objects.get(portfolio=portfolio)
        assert failed.status == RebalanceRun.Status.FAILED and "NOPX" in failed.error
