"""The one interface every price provider implements, and its errors.

A provider answers one question: the daily bars of some symbols between two
dates. It returns what it got, per symbol, in one frame shape; it does not
validate completeness (the chain in `marketdata.providers.chain` does that the
same way for every provider) and it never writes anything.

Bars frame shape (`BAR_COLUMNS`): index `date` (a `DatetimeIndex` of trading
dates at midnight, no time zone, ascending), float64 columns `open`, `high`,
`low`, `close`, `adj_close` (split- and dividend-adjusted close, USD) and
`volume`; NaN where the source has no value. Sources that only publish an
adjusted close (wide CSV tables) leave open/high/low/close NaN.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date

import pandas as pd

BAR_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


class ProviderError(Exception):
    """A whole call failed. `transient` errors are retried with backoff; others are not."""

    def __init__(self, message: str, *, transient: bool = True):
        super().__init__(message)
        self.transient = transient


class ProviderNotConfigured(ProviderError):
    """The provider lacks settings it needs (API keys, a path); the chain skips it."""

    def __init__(self, message: str):
        super().__init__(message, transient=False)


class PriceProvider(ABC):
    """Base class of price providers, registered by dotted path in `PRICE_PROVIDER_REGISTRY`.

    Subclasses take their options (from `PRICE_PROVIDER_OPTIONS[name]`) as
    keyword arguments. `rate_limit_per_minute` is enforced by the chain.
    """

    #: Registry name, stored as the bars' `source`.
    name: str = ""
    #: True when prices are invented (the offline sample provider); shown wherever prices are.
    synthetic: bool = False
    #: Symbols per call; the chain splits longer lists into batches of this size.
    max_symbols_per_request: int = 100

    def __init__(self, *, rate_limit_per_minute: int | None = None, **options: object):
        self.rate_limit_per_minute = rate_limit_per_minute
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options: {', '.join(sorted(options))}")

    @abstractmethod
    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        """Daily bars for `symbols` from `start` to `end`, both inclusive.

        Returns {symbol: bars frame} for the symbols the source answered; a
        symbol it does not know may be missing or map to an empty or all-NaN
        frame. Raises `ProviderError` when the whole call failed.
        """


def empty_bars() -> pd.DataFrame:
    """A bars frame with no rows, in the documented shape."""
    return pd.DataFrame(
        {column: pd.Series(dtype="float64") for column in BAR_COLUMNS},
        index=pd.DatetimeIndex([], name="date"),
    )


def conform_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerces a provider's frame to the documented shape (columns, dtypes, index)."""
    if _conformed(frame):
        return frame
    out = frame.reindex(columns=list(BAR_COLUMNS)).astype("float64")
    index = pd.DatetimeIndex(out.index)
    if index.tz is not None:
        # A tz-aware stamp names the session in the exchange's time zone: keep its local date.
        index = index.tz_convert("America/New_York").tz_localize(None)
    out.index = index.normalize().rename("date")
    return out.sort_index()


def _conformed(frame: pd.DataFrame) -> bool:
    index = frame.index
    return (
        tuple(frame.columns) == BAR_COLUMNS
        and all(dtype == "float64" for dtype in frame.dtypes)
        and isinstance(index, pd.DatetimeIndex)
        and index.tz is None
        and index.name == "date"
        and index.is_monotonic_increasing
        and (len(index) == 0 or (index == index.normalize()).all())
    )
