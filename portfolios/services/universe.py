"""A portfolio's universe follows its holdings and targets, and keeps what the owner chose.

The universe (`Portfolio.instruments`) is what the optimizer allocates over and the symbols whose
prices the portfolio needs. The owner chooses instruments for it (the portfolio form, the API,
an imported configuration); a held instrument joins it on its own (`universe_join_held`), marked
as such, and leaves it again once it is neither held nor targeted (`universe_follow_holdings`),
so a sold position stops needing prices and stops raising their alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from django.db.models import Exists, OuterRef

from marketdata.models import Instrument
from portfolios.models import Holding, Portfolio, PortfolioInstrument, RebalanceRun
from portfolios.selectors.drift import targets_latest


def universe_join_held(*, portfolio: Portfolio, instruments: Iterable[Instrument]) -> None:
    """Held ``instruments`` join the universe; one already in it keeps how it joined (an owner's
    choice stays one)."""
    universes_join_held({portfolio.pk: instruments})


def universes_join_held(joining: Mapping[int, Iterable[Instrument]]) -> None:
    """`universe_join_held` for many portfolios ({portfolio id: instruments}), in one statement."""
    PortfolioInstrument.objects.bulk_create(
        [
            PortfolioInstrument(portfolio_id=portfolio_id, instrument=instrument, joined_with_holding=True)
            for portfolio_id, instruments in joining.items()
            for instrument in instruments
        ],
        ignore_conflicts=True,
    )


def universe_follow_holdings(*, portfolio: Portfolio) -> list[str]:
    """Drop from the universe the instruments that joined only because they were held and are now
    neither held (a quantity above 0) nor among the portfolio's latest targets (a weight above 0,
    `targets_latest`); the symbols dropped. The caller holds the portfolio's lock
    (`portfolio_locked`) and has written the holdings."""
    return universes_follow_holdings([portfolio])[portfolio.pk]


def universes_follow_holdings(portfolios: Sequence[Portfolio]) -> dict[int, list[str]]:
    """`universe_follow_holdings` for many portfolios, by id: one query when no instrument leaves."""
    leaving: dict[int, dict[str, int]] = {portfolio.pk: {} for portfolio in portfolios}
    held = Holding.objects.filter(portfolio_id=OuterRef("portfolio_id"), instrument_id=OuterRef("instrument_id"))
    joined = (
        PortfolioInstrument.objects.filter(portfolio__in=list(portfolios), joined_with_holding=True)
        .exclude(Exists(held.filter(quantity__gt=0)))
        .values_list("portfolio_id", "instrument__symbol", "pk")
    )
    for portfolio_id, symbol, pk in joined:
        leaving[portfolio_id][symbol] = pk
    moving = [portfolio for portfolio in portfolios if leaving[portfolio.pk]]
    # Rare (a position sold out that only joined with its holding): the latest run of each is read.
    runs = {
        portfolio.pk: RebalanceRun.objects.filter(portfolio=portfolio)
        .order_by("-trading_date", "-created_at")
        .only("id", "portfolio_id", "trading_date", "targets", "targets_source", "optimization_result_id")
        .first()
        for portfolio in moving
    }
    latest = targets_latest(portfolios=moving, runs=runs) if moving else {}
    dropped = {
        portfolio.pk: sorted(s for s in leaving[portfolio.pk] if not latest[portfolio.pk].weights.get(s))
        for portfolio in portfolios
    }
    gone = [leaving[pk][symbol] for pk, symbols in dropped.items() for symbol in symbols]
    if gone:
        PortfolioInstrument.objects.filter(pk__in=gone).delete()
    return dropped
