"""What the optimizer reads: a portfolio's symbols, their price window and their asset data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
from django.utils import timezone

from marketdata import calendar
from marketdata.models import Instrument
from marketdata.recent import RecentReads
from marketdata.reference import lookup
from marketdata.selectors import price_frame
from optimization.core.constraints import AssetInfo
from optimization.core.errors import InsufficientData

from .decimals import float_or_none

# Reads the daily run repeats for every portfolio of a universe (see `marketdata.recent`).
_recent_windows = RecentReads(max_entries=512)
_recent_assets = RecentReads(max_entries=512)


def asset_info(symbols: Sequence[str]) -> dict[str, AssetInfo]:
    """Asset class, sector and ESG score per symbol: stored instruments first, then the reference table."""
    return dict(_recent_assets.get_or_read(tuple(symbols), lambda: _asset_info(symbols)))


def _asset_info(symbols: Sequence[str]) -> dict[str, AssetInfo]:
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
    end = as_of or calendar.last_completed_session(timezone.now())
    start = calendar.sessions_back(end, lookback_days + 1) if lookback_days else date(1900, 1, 1)

    def complete(frame: pd.DataFrame) -> bool:  # every symbol has its close on the last day
        return bool(len(frame)) and frame.index[-1].date() == end and not frame.iloc[-1].isna().any()

    read = _recent_windows.get_or_read(
        (tuple(symbols), start, end),
        lambda: price_frame(symbols=list(symbols), start=start, end=end).reindex(columns=list(symbols)),
        keep=complete,
    )
    frame = read.dropna(how="all")  # a new frame: the remembered one is never handed out
    stored = ~np.isnan(frame.to_numpy(dtype="float64", na_value=np.nan)).all(axis=0)
    missing = [symbol for symbol, has_prices in zip(symbols, stored, strict=True) if not has_prices]
    if missing:
        raise InsufficientData(
            f"no stored prices between {start} and {end} for {', '.join(missing)}; run fetch_prices for them"
        )
    return frame


def portfolio_symbols(portfolio) -> list[str]:
    symbols = sorted(portfolio.instruments.values_list("symbol", flat=True))
    if not symbols:
        raise InsufficientData(f"portfolio {portfolio.name!r} has no instruments; add the assets it may hold")
    return symbols
