"""A portfolio's universe follows its holdings and targets, and keeps what the owner chose.

The universe (`Portfolio.instruments`) is what the optimizer allocates over and the symbols whose
prices the portfolio needs. The owner chooses instruments for it (the portfolio form, the API,
an imported configuration); a held instrument joins it on its own (`universe_join_held`), marked
as such, and leaves it again once it is neither held nor targeted (`universe_follow_holdings`),
so a sold position stops needing prices and stops raising their alerts.
"""

from __future__ import annotations

from collections.abc import Iterable

from marketdata.models import Instrument
from portfolios.models import Holding, Portfolio, PortfolioInstrument, RebalanceRun
from portfolios.selectors.drift import targets_latest


def universe_join_held(*, portfolio: Portfolio, instruments: Iterable[Instrument]) -> None:
    """Held ``instruments`` join the universe; one already in it keeps how it joined (an owner's
    choice stays one)."""
    portfolio.instruments.add(*instruments, through_defaults={"joined_with_holding": True})


def universe_follow_holdings(*, portfolio: Portfolio) -> list[str]:
    """Drop from the universe the instruments that joined only because they were held and are now
    neither held (a quantity above 0) nor among the portfolio's latest targets (a weight above 0,
    `targets_latest`); the symbols dropped. The caller holds the portfolio's lock
    (`portfolio_locked`) and has written the holdings."""
    leaving = dict(
        PortfolioInstrument.objects.filter(portfolio=portfolio, joined_with_holding=True)
        .exclude(instrument_id__in=Holding.objects.filter(portfolio=portfolio, quantity__gt=0).values("instrument_id"))
        .values_list("instrument__symbol", "pk")
    )
    if not leaving:
        return []
    latest = (
        RebalanceRun.objects.filter(portfolio=portfolio)
        .order_by("-trading_date", "-created_at")
        .only("id", "portfolio_id", "trading_date", "targets", "targets_source", "optimization_result_id")
        .first()
    )
    weights = targets_latest(portfolios=[portfolio], runs={portfolio.pk: latest})[portfolio.pk].weights
    dropped = sorted(symbol for symbol in leaving if not weights.get(symbol))
    PortfolioInstrument.objects.filter(pk__in=[leaving[symbol] for symbol in dropped]).delete()
    return dropped
