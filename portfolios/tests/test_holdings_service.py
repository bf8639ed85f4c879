"""holdings_replace: the whole set is validated first and written all at once, or not at all."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from portfolios.models import Holding
from portfolios.services.holdings import holdings_replace

from .factories import load_sample_prices, make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio():
    load_sample_prices(["SPY", "QQQ", "BND"])
    return make_portfolio(make_user(), symbols=["SPY", "BND"], holdings={"SPY": "10", "BND": "5.5"}, cash_usd="100")


def held(portfolio) -> dict[str, Decimal]:
    return {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}


def test_replace_sets_quantities_removes_absent_rows_and_extends_the_universe(portfolio) -> None:
    holdings_replace(
        portfolio=portfolio,
        rows=[{"symbol": "spy", "quantity": "12.123456789"}, {"symbol": "QQQ", "quantity": 3, "cost_basis_usd": "900"}],
        cash_usd="250.5",
    )
    assert held(portfolio) == {"QQQ": Decimal(3), "SPY": Decimal("12.123456789")}
    assert Holding.objects.get(portfolio=portfolio, instrument__symbol="QQQ").cost_basis_usd == Decimal(900)
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal("250.5")
    assert set(portfolio.instruments.values_list("symbol", flat=True)) == {"SPY", "BND", "QQQ"}


@pytest.mark.parametrize(
    ("rows", "cash", "field", "text"),
    [
        ([{"symbol": "SPY", "quantity": "-1"}], None, "holdings", "row 1 (SPY): quantity must not be negative"),
        ([{"symbol": "ZZZZ", "quantity": "1"}], None, "holdings", "unknown symbol ZZZZ"),
        (
            [{"symbol": "SPY", "quantity": "1"}, {"symbol": "spy", "quantity": "2"}],
            None,
            "holdings",
            "row 2 (SPY): duplicate holding for SPY",
        ),
        ([{"symbol": "SPY", "quantity": "NaN"}], None, "holdings", "quantity must be a finite number"),
        ([{"symbol": "SPY", "quantity": "abc"}], None, "holdings", "quantity must be a number"),
        ([{"symbol": "SPY", "quantity": "1.0000000001"}], None, "holdings", "more than 9 decimal places"),
        ([{"symbol": "SPY", "quantity": "1", "cost_basis_usd": "-3"}], None, "holdings", "cost_basis_usd must not"),
        ([{"quantity": "1"}], None, "holdings", "row 1 (no symbol): symbol is required"),
        ([{"symbol": "SPY", "quantity": "1"}], "-5", "cash_usd", "cash_usd must not be negative"),
    ],
)
def test_bad_rows_change_nothing(portfolio, rows, cash, field, text) -> None:
    before = held(portfolio)
    with pytest.raises(ValidationError) as caught:
        holdings_replace(portfolio=portfolio, rows=rows, cash_usd=cash)
    assert text in " ".join(caught.value.message_dict[field])
    assert held(portfolio) == before
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal(100)


def test_one_bad_row_among_good_ones_keeps_the_previous_holdings(portfolio) -> None:
    with pytest.raises(ValidationError):
        holdings_replace(
            portfolio=portfolio,
            rows=[{"symbol": "QQQ", "quantity": "4"}, {"symbol": "SPY", "quantity": "-2"}],
        )
    assert held(portfolio) == {"BND": Decimal("5.5"), "SPY": Decimal(10)}
