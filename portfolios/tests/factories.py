"""Builders for portfolio tests: owners, sample prices, portfolios with holdings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model

from marketdata.models import Instrument
from marketdata.selectors import price_frame
from marketdata.services import prices_fetch
from portfolios.models import Portfolio
from portfolios.services.holdings import holdings_replace

AS_OF = date(2025, 6, 30)
SYMBOLS = ["SPY", "QQQ", "VXUS", "BND"]


def load_sample_prices(symbols=SYMBOLS, end: date = AS_OF) -> None:
    """Offline sample prices (the demo's provider) for a year and a half up to ``end``."""
    prices_fetch(symbols=list(symbols), provider_names=["sample"], start=date(2024, 1, 2), end=end)


def close(symbol: str, on: date = AS_OF) -> Decimal:
    """The stored close as the planner sees it (6 decimal places)."""
    value = price_frame(symbols=[symbol], start=on, end=on)[symbol].iloc[-1]
    return Decimal(repr(float(value))).quantize(Decimal("0.000001"))


def make_user(username: str = "alice"):
    return get_user_model().objects.create_user(username, password="pw-not-used-123")


def make_portfolio(owner, name: str = "Core", symbols=SYMBOLS, holdings=None, cash_usd=None, **policy) -> Portfolio:
    """A portfolio over ``symbols``; ``holdings`` is {symbol: shares}."""
    portfolio = Portfolio.objects.create(owner=owner, name=name, **policy)
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
    if holdings is not None or cash_usd is not None:
        rows = [{"symbol": s, "quantity": q} for s, q in (holdings or {}).items()]
        holdings_replace(portfolio=portfolio, rows=rows, cash_usd=cash_usd)
    return portfolio
