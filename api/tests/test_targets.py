"""Targets: GET the optimizer's latest with metrics; PUT manual weights that the plans then use."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from optimization.services.targets import targets_compute
from portfolios.models import Portfolio
from portfolios.services.rebalancing import rebalance_run_create
from portfolios.tests.factories import AS_OF, load_sample_prices, make_portfolio, make_user

from .conftest import token_client


@pytest.fixture
def portfolio(db):
    load_sample_prices()
    owner = make_user("alice")
    return make_portfolio(
        owner, symbols=["SPY", "BND"], holdings={"SPY": 10, "BND": 10}, cash_usd=100, max_weight="1", min_weight="0"
    )


def url(portfolio) -> str:
    return reverse("api:portfolio-targets", kwargs={"pk": portfolio.pk})


def test_get_answers_the_latest_computed_targets_with_metrics(portfolio):
    allocation = targets_compute(portfolio=portfolio, as_of=AS_OF)
    body = token_client(portfolio.owner).get(url(portfolio)).json()
    assert body["source"] == "optimizer" and body["manual_weights"] is None
    computed = body["computed"]
    assert computed["as_of"] == AS_OF.isoformat()
    weights = {s: Decimal(w) for s, w in computed["weights"].items()}
    assert weights == allocation.result.weights()
    assert abs(sum(weights.values()) - 1) < Decimal("1e-6")
    assert Decimal(computed["volatility"]) > 0 and computed["metrics"]


def test_put_manual_targets_override_the_optimizer_in_the_plan(portfolio):
    client = token_client(portfolio.owner)
    response = client.put(url(portfolio), {"weights": {"spy": "0.25", "BND": 0.75}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["source"] == "manual"
    run = rebalance_run_create(portfolio=Portfolio.objects.get(pk=portfolio.pk), as_of=AS_OF, manual=True).run
    assert run.targets_source == "manual" and run.optimization_result is None
    assert {s: Decimal(w) for s, w in run.targets.items()} == {"SPY": Decimal("0.25"), "BND": Decimal("0.75")}


def test_put_null_goes_back_to_the_optimizer(portfolio):
    client = token_client(portfolio.owner)
    client.put(url(portfolio), {"weights": {"SPY": "1"}}, format="json")
    response = client.put(url(portfolio), {"weights": None}, format="json")
    assert response.status_code == 200 and response.json()["source"] == "optimizer"
    run = rebalance_run_create(portfolio=Portfolio.objects.get(pk=portfolio.pk), as_of=AS_OF, manual=True).run
    assert run.targets_source == "optimizer"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"SPY": "0.6", "BND": "0.3"}, "weights sum to 0.9, not 1"),
        ({"SPY": "0.5", "NOPE": "0.5"}, "unknown symbol NOPE"),
        ({"SPY": "1.5", "BND": "-0.5"}, ""),
        ({"SPY": "NaN"}, ""),
        ({"SPY": True}, ""),
        ({}, ""),
    ],
)
def test_bad_weights_are_400_and_nothing_changes(portfolio, weights, message):
    client = token_client(portfolio.owner)
    client.put(url(portfolio), {"weights": {"SPY": "0.5", "BND": "0.5"}}, format="json")
    response = client.put(url(portfolio), {"weights": weights}, format="json")
    assert response.status_code == 400, response.content
    assert "weights" in response.json()
    assert message in str(response.json()["weights"])
    portfolio.refresh_from_db()
    assert portfolio.manual_targets == {"SPY": 0.5, "BND": 0.5}


def test_get_says_how_the_weight_bounds_moved_the_computed_targets(db):
    load_sample_prices()
    capped = make_portfolio(make_user("bob"), max_weight="0.3", min_weight="0")
    allocation = targets_compute(portfolio=capped, as_of=AS_OF)
    computed = token_client(capped.owner).get(url(capped)).json()["computed"]
    assert computed["warnings"] == [w["message"] for w in allocation.result.warnings]
    assert any("capped at 30% by the maximum weight" in text for text in computed["warnings"]), computed
