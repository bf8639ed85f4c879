"""What the optimizer reads: a portfolio's symbols, their price window and their asset data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
from django.utils import timezone

from marketdata import calendar
from marketdata.models import Instrument
from marketdata.reference import lookup
from marketdata.selectors import price_frame
from optimization.core.constraints import AssetInfo
from optimization.core.errors import InsufficientData

from .decimals import float_or_none


def asset_info(symbols: Sequence[str]) -> dict[str, AssetInfo]:
    """Asset class, sector and ESG score per symbol: stored instruments first, then the reference table."""
    stored = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}
    info = {}
    for symbol in symbols:
        instrument = stored.get(symbol)
        if instrument is not None:
            info[symbol] = AssetInfo(
                asset_class=instrument.asset_class,
                sector=instrument.sector,
                esg_score=float_or_none(instrument.esg_score),
            )
        else:
            known = lookup(symbol)
            info[symbol] = AssetInfo(asset_class=known.asset_class, sector=known.sector)
    return info


def price_window(symbols: Sequence[str], *, as_of: date | None, lookback_days: int | None) -> pd.DataFrame:
    """Adjusted closes for ``symbols`` over the lookback ending at ``as_of`` (default: last completed session)."""
    start, end = window_dates(as_of=as_of, lookback_days=lookback_days)
    return window_of(price_frame(symbols=list(symbols), start=start, end=end), symbols, start=start, end=end)


def window_dates(*, as_of: date | None, lookback_days: int | None) -> tuple[date, date]:
    """The first and last day of a price window (`price_window`)."""
    end = as_of or calendar.last_completed_session(timezone.now())
    return (calendar.sessions_back(end, lookback_days + 1) if lookback_days else date(1900, 1, 1)), end


def window_of(frame: pd.DataFrame, symbols: Sequence[str], *, start: date, end: date) -> pd.DataFrame:
    """``symbols``' columns of a price frame read from ``start`` to ``end`` (for those or more
    symbols), as `price_window` answers them: `InsufficientData` names a symbol without prices."""
    frame = frame.reindex(columns=list(symbols)).dropna(how="all")
    stored = ~np.isnan(frame.to_numpy(dtype="float64", na_value=np.nan)).all(axis=0)
    missing = [symbol for symbol, has_prices in zip(symbols, stored, strict=True) if not has_prices]
    if missing:
        raise InsufficientData(
            f"no stored prices between {start} and {end} for {', '.join(missing)}; run fetch_prices for them"
        )
    return frame


def universes_read(portfolios: Sequence) -> dict[int, list[str]]:
    """Each portfolio's universe by id, sorted, in one query."""
    universes: dict[int, list[str]] = {portfolio.pk: [] for portfolio in portfolios}
    if portfolios:
        through = type(portfolios[0]).instruments.through
        pairs = through.objects.filter(portfolio_id__in=list(universes)).values_list(
            "portfolio_id", "instrument__symbol"
        )
        for portfolio_id, symbol in pairs.order_by("instrument__symbol"):
            universes[portfolio_id].append(symbol)
    return universes


def portfolio_symbols(portfolio, *, universe: Sequence[str] | None = None) -> list[str]:
    """The portfolio's universe, sorted (``universe``: its symbols when the caller has read them)."""
    symbols = sorted(portfolio.instruments.values_list("symbol", flat=True) if universe is None else universe)
    if not symbols:
        raise InsufficientData(f"portfolio {portfolio.name!r} has no instruments; add the assets it may hold")
    return symbols
