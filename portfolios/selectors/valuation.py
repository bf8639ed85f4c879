"""Latest stored closes and what holdings are worth at them.

Values are holdings at the latest stored close on or before the last completed NYSE session, plus
cash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import timezone

from marketdata import calendar
from marketdata.selectors import latest_closes
from marketdata.stores import get_price_store
from optimization.services import price_decimal


@dataclass(frozen=True)
class Prices:
    """Latest stored closes on or before ``session``: {symbol: (date, USD)}, and which are synthetic."""

    session: date
    closes: dict[str, tuple[date, Decimal]]
    synthetic: frozenset[str]

    def stale(self, symbols) -> list[str]:
        """Symbols without a close on the last completed session."""
        return sorted(s for s in symbols if s not in self.closes or self.closes[s][0] != self.session)


@dataclass
class Valuation:
    """Holdings at the latest closes plus cash; ``value_usd`` is None when a held symbol has no close."""

    holdings_usd: Decimal
    cash_usd: Decimal
    missing: list[str]

    @property
    def value_usd(self) -> Decimal | None:
        return None if self.missing else self.holdings_usd + self.cash_usd


def last_session() -> date:
    """The last completed NYSE session: the date whose closes values and plans use."""
    return calendar.last_completed_session(timezone.now())


def prices_latest(*, symbols, session: date) -> Prices:
    """Latest stored closes of ``symbols`` (at most 31 days before ``session``) and the synthetic ones."""
    symbols = sorted(set(symbols))
    found = latest_closes(symbols=symbols, on_or_before=session)
    closes = {s: (day, price_decimal(price)) for s, (day, price) in found.items()}
    synthetic = get_price_store().synthetic_bars({symbol: day for symbol, (day, _) in found.items()})
    return Prices(session=session, closes=closes, synthetic=frozenset(synthetic))


def valuation_of(quantities: dict[str, Decimal], cash_usd: Decimal, prices: Prices) -> Valuation:
    missing = sorted(s for s, q in quantities.items() if q > 0 and s not in prices.closes)
    holdings = sum(
        (q * prices.closes[s][1] for s, q in quantities.items() if s in prices.closes),
        Decimal(0),
    )
    return Valuation(holdings_usd=holdings.quantize(Decimal("0.01")), cash_usd=cash_usd, missing=missing)
