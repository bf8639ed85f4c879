"""Rebalance requests with an Idempotency-Key: the same key answers the same run, never a second one."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from api.models import IdempotencyKey
from portfolios.models import RebalanceRun
from portfolios.tests.execution_factories import AS_OF, paper_portfolio

from .conftest import token_client


def rebalance(client, portfolio, body=None, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    url = reverse("api:portfolio-rebalance", kwargs={"pk": portfolio.pk})
    return client.post(url, body if body is not None else {"as_of": AS_OF.isoformat()}, format="json", **headers)


@pytest.fixture
def portfolio(prices, clock):
    return paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=500)


def test_rebalance_plans_a_run_and_answers_its_plan(portfolio):
    response = rebalance(token_client(portfolio.owner), portfolio)
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "planned" and run["trades"] and run["needs"]
    assert run["report_url"].endswith(reverse("run_report", args=[run["id"]]))
    assert {t["side"] for t in run["trades"]} == {"buy", "sell"}


def test_same_key_twice_answers_the_same_run(portfolio):
    client = token_client(portfolio.owner)
    first = rebalance(client, portfolio, key="sync-2025-06-30")
    second = rebalance(client, portfolio, key="sync-2025-06-30")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1
    assert IdempotencyKey.objects.get(key="sync-2025-06-30").run_id == first.json()["id"]


def test_same_key_answers_its_run_even_after_the_day_changed(portfolio):
    """A retry a day later with the same key does not plan that day's run."""
    client = token_client(portfolio.owner)
    first = rebalance(client, portfolio, body={}, key="k1")
    RebalanceRun.objects.filter(pk=first.json()["id"]).update(trading_date="2025-06-27")
    again = rebalance(client, portfolio, body={}, key="k1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1


def test_same_key_with_a_different_body_is_409(portfolio):
    client = token_client(portfolio.owner)
    assert rebalance(client, portfolio, key="k").status_code == 201
    response = rebalance(client, portfolio, body={"as_of": AS_OF.isoformat(), "cash_flow_usd": "100"}, key="k")
    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["detail"]
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1


def test_keys_belong_to_their_user(portfolio, prices):
    """Another user's identical key is another key: it never answers the first user's run."""
    other = paper_portfolio(holdings_usd={"SPY": 1000}, username="bob")
    mine = rebalance(token_client(portfolio.owner), portfolio, key="shared")
    theirs = rebalance(token_client(other.owner), other, key="shared")
    assert theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["portfolio"] == other.pk


def test_planning_failure_is_422_and_frees_the_key(portfolio):
    client = token_client(portfolio.owner)
    response = rebalance(client, portfolio, body={"as_of": "2025-06-28"}, key="k")  # a Saturday
    assert response.status_code == 422 and "not an NYSE trading day" in response.json()["detail"]
    assert not IdempotencyKey.objects.exists()
    assert rebalance(client, portfolio, body={"as_of": "2025-06-28"}, key="k").status_code == 422


def test_a_future_date_is_400(portfolio):
    response = rebalance(token_client(portfolio.owner), portfolio, body={"as_of": "2025-07-04"}, key="k")
    assert response.status_code == 400 and "future" in response.json()["as_of"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"as_of": "yesterday"}, "as_of"),
        ({"cash_flow_usd": "NaN"}, "cash_flow_usd"),
        ({"strategy": "x"}, "strategy"),
    ],
)
def test_bad_rebalance_input_is_400(portfolio, body, field):
    response = rebalance(token_client(portfolio.owner), portfolio, body=body, key="k")
    assert response.status_code == 400 and field in response.json()
    assert not RebalanceRun.objects.exists() and not IdempotencyKey.objects.exists()


def test_a_too_long_key_is_400(portfolio):
    response = rebalance(token_client(portfolio.owner), portfolio, key="x" * 256)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()


@pytest.mark.django_db(transaction=True)
def test_same_key_concurrently_makes_one_run(prices, clock):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so two requests cannot race on the key")
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=500)
    client_a, client_b = token_client(portfolio.owner, "a"), token_client(portfolio.owner, "b")
    barrier = threading.Barrier(2)
    answers = []

    def send(client):
        try:
            barrier.wait()
            answers.append(rebalance(client, portfolio, key="race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in (client_a, client_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.content for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1
    assert IdempotencyKey.objects.filter(key="race").count() == 1
