"""holdings_replace: the whole set is validated first and written all at once, or not at all."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from portfolios.models import Holding
from portfolios.services.holdings import cash_set, holdings_replace, holdings_upsert, manual_targets_set

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
        ([{"symbol": "SPY", "quantity": "NaN"}], None, "holdings", "quantity must be a plain decimal number"),
        ([{"symbol": "SPY", "quantity": "abc"}], None, "holdings", "quantity must be a plain decimal number"),
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


@pytest.mark.parametrize(
    ("row", "text"),
    [
        ({"symbol": "SPY", "quantity": "1e309"}, "row 1 (SPY): quantity must be a plain decimal number"),
        ({"symbol": "SPY", "quantity": "9" * 30}, "row 1 (SPY): quantity is too large"),
        ({"symbol": "SPY", "quantity": "100000000000000.5"}, "row 1 (SPY): quantity must be at most 100000000000000"),
        ({"symbol": "SPY", "quantity": "1_000"}, "quantity must be a plain decimal number"),
        ({"symbol": "SPY", "quantity": "\uff11\uff10"}, "quantity must be a plain decimal number"),
        ({"symbol": "SPY", "quantity": "\u0661\u0660"}, "quantity must be a plain decimal number"),
        ({"symbol": "SPY", "quantity": "1\x00"}, "quantity must be a plain decimal number"),
        ({"symbol": "SPY", "quantity": 1.5}, "quantity must be a number written as text or an integer, got float"),
        ({"symbol": "SPY", "quantity": True}, "quantity must be a number written as text or an integer, got bool"),
        ({"symbol": "SPY", "quantity": "1", "cost_basis_usd": "9" * 30}, "cost_basis_usd is too large"),
        ({"symbol": "\u00df", "quantity": "1"}, "row 1 (not a symbol): symbol must be a ticker symbol"),
        ({"symbol": "SP\x00Y", "quantity": "1"}, "row 1 (not a symbol): symbol must be a ticker symbol"),
        ({"symbol": "S" * 21, "quantity": "1"}, "row 1 (not a symbol): symbol must be a ticker symbol"),
        ({"symbol": 7, "quantity": "1"}, "row 1 (not a symbol): symbol must be a ticker symbol as text"),
    ],
)
def test_input_no_column_can_hold_changes_nothing(portfolio, row, text) -> None:
    for write in (holdings_replace, holdings_upsert):
        with pytest.raises(ValidationError) as caught:
            write(portfolio=portfolio, rows=[row])
        assert text in " ".join(caught.value.message_dict["holdings"])
    assert held(portfolio) == {"SPY": Decimal(10), "BND": Decimal("5.5")}


@pytest.mark.parametrize("cash", ["1e309", "9" * 30, "1_000", "\uff11", "\u0661", "NaN", "1000000000000000.0001"])
def test_bad_cash_changes_nothing(portfolio, cash) -> None:
    with pytest.raises(ValidationError) as caught:
        cash_set(portfolio=portfolio, cash_usd=cash)
    assert "cash_usd" in caught.value.message_dict
    with pytest.raises(ValidationError):
        holdings_replace(portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "1"}], cash_usd=cash)
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal(100) and held(portfolio) == {"SPY": Decimal(10), "BND": Decimal("5.5")}


def test_bad_rows_and_bad_cash_are_named_together(portfolio) -> None:
    with pytest.raises(ValidationError) as caught:
        holdings_replace(portfolio=portfolio, rows=[{"symbol": "SPY", "quantity": "-1"}], cash_usd="abc")
    assert set(caught.value.message_dict) == {"holdings", "cash_usd"}


def test_upsert_sets_the_given_symbols_and_keeps_the_others(portfolio) -> None:
    holdings = holdings_upsert(portfolio=portfolio, rows=[{"symbol": "qqq", "quantity": "2"}], cash_usd="7")
    assert {h.instrument.symbol: h.quantity for h in holdings} == {"BND": Decimal("5.5"), "QQQ": 2, "SPY": 10}
    assert held(portfolio) == {"BND": Decimal("5.5"), "QQQ": Decimal(2), "SPY": Decimal(10)}
    portfolio.refresh_from_db()
    assert portfolio.cash_usd == Decimal(7)


@pytest.mark.parametrize(
    ("weights", "text"),
    [
        ({"\u00df": "1"}, "the symbol must be a ticker symbol"),
        ({"SPY": "0.5", "spy": "0.5"}, "SPY is given twice"),
        ({"SPY": "\uff11"}, "the weight of SPY must be a plain decimal number"),
        ({"SPY": "1e0"}, "the weight of SPY must be a plain decimal number"),
        ({"SPY": 1.0}, "the weight of SPY must be a number written as text or an integer"),
        ({"SPY": "0.12345678901"}, "more than 10 decimal places"),
    ],
)
def test_bad_manual_targets_change_nothing(portfolio, weights, text) -> None:
    with pytest.raises(ValidationError) as caught:
        manual_targets_set(portfolio=portfolio, weights=weights)
    assert text in " ".join(caught.value.message_dict["manual_targets"])
    portfolio.refresh_from_db()
    assert portfolio.manual_targets in (None, {})
