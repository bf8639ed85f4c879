"""A portfolio's universe follows its holdings and targets: an instrument that joined because it was
held leaves with the holding (its price alert with it), unless targeted; the owner's choices stay."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from marketdata.models import Instrument
from portfolios.models import Portfolio
from portfolios.services.holdings import holdings_replace

from .factories import make_portfolio, make_user

pytestmark = pytest.mark.django_db
TARGETS = {"SPY": "0.6", "BND": "0.4"}


def universe(portfolio) -> list[str]:
    return sorted(portfolio.instruments.values_list("symbol", flat=True))


def holdings_post(client, portfolio, rows: dict[str, str]):
    data = {
        "holdings-TOTAL_FORMS": str(len(rows)),
        "holdings-INITIAL_FORMS": "0",
        "holdings-MIN_NUM_FORMS": "0",
        "holdings-MAX_NUM_FORMS": "1000",
        "cash_usd": "100",
    }
    for i, (symbol, quantity) in enumerate(rows.items()):
        data |= {f"holdings-{i}-symbol": symbol, f"holdings-{i}-quantity": quantity, f"holdings-{i}-cost_basis_usd": ""}
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.fixture
def portfolio(prices, clock):
    """Owner's universe SPY and BND, manual 60/40 targets; AAPL is known but has no price stored."""
    Instrument.objects.create(symbol="AAPL", name="Apple Inc.")
    owner = make_user()
    return make_portfolio(
        owner, symbols=["SPY", "BND"], holdings={"SPY": 10, "BND": 20}, cash_usd=Decimal(100), manual_targets=TARGETS
    )


def test_a_removed_holding_leaves_the_universe_and_its_price_alert_stops(client, portfolio):
    client.force_login(portfolio.owner)
    holdings_post(client, portfolio, {"SPY": "10", "BND": "20", "AAPL": "5"})
    assert universe(portfolio) == ["AAPL", "BND", "SPY"]
    assert "No close for the last completed session for AAPL" in client.get(reverse("dashboard")).content.decode()

    holdings_post(client, portfolio, {"SPY": "10", "BND": "20"})

    assert universe(portfolio) == ["BND", "SPY"]
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "AAPL" not in dashboard and "No close for" not in dashboard
    assert "AAPL" not in client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    portfolio.refresh_from_db()
    assert portfolio.manual_targets == TARGETS


def test_a_symbol_the_owner_chose_stays_in_the_universe_when_no_longer_held(portfolio):
    holdings_replace(portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "10"}])  # BND sold
    assert universe(portfolio) == ["BND", "SPY"]


def test_a_held_symbol_still_targeted_stays_in_the_universe(portfolio):
    holdings_replace(
        portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "10"}, {"symbol": "QQQ", "quantity": "3"}]
    )
    assert universe(portfolio) == ["BND", "QQQ", "SPY"]
    Portfolio.objects.filter(pk=portfolio.pk).update(manual_targets={"SPY": "0.5", "BND": "0.3", "QQQ": "0.2"})
    portfolio.refresh_from_db()

    holdings_replace(portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "10"}])

    assert universe(portfolio) == ["BND", "QQQ", "SPY"]
    # Once no longer targeted either, the next change of the holdings lets it go.
    Portfolio.objects.filter(pk=portfolio.pk).update(manual_targets=TARGETS)
    portfolio.refresh_from_db()
    holdings_replace(portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "11"}])
    assert universe(portfolio) == ["BND", "SPY"]
