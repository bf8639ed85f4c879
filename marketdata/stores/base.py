"""The price store interface and the frame shapes every store shares.

Long bars frame (`LONG_COLUMNS`), used to write and read whole bars: one row
per (symbol, date); `date` is datetime64 at midnight; prices float64 already
rounded to the stored 8 decimals; `volume` Int64 (nullable); `source` str;
`synthetic` bool.

Wide price frame (`price_frame`): index `date` (DatetimeIndex), one float64
column per requested symbol in the requested order, adjusted closes in USD,
NaN where a symbol has no bar on a date that another requested symbol has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from marketdata.models import PRICE_PLACES

PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close"]
LONG_COLUMNS = ["symbol", "date", *PRICE_COLUMNS, "volume", "source", "synthetic"]


class PriceStore(ABC):
    """Stores daily bars and answers price questions; writes are idempotent and all-or-nothing."""

    name: str = ""

    @abstractmethod
    def write_bars(self, bars: pd.DataFrame) -> int:
        """Stores the rows of a long bars frame whose (symbol, date) is not stored yet.

        Returns how many rows were written. Existing bars are never changed.
        Either every new row is written or none is.
        """

    @abstractmethod
    def read_bars(self, symbols: Sequence[str], start: date | None, end: date | None) -> pd.DataFrame:
        """A long bars frame of the stored bars, sorted by symbol then date (bounds inclusive)."""

    @abstractmethod
    def price_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """The wide frame of adjusted closes from start to end, both inclusive."""

    @abstractmethod
    def last_dates(self, symbols: Sequence[str]) -> dict[str, date | None]:
        """Each symbol's latest stored trading date, None when it has no bars."""

    @abstractmethod
    def stored_dates(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DatetimeIndex]:
        """The dates stored per symbol between start and end (symbols with none are absent)."""

    @abstractmethod
    def symbols(self) -> list[str]:
        """Every symbol with at least one stored bar."""

    def latest_closes(self, symbols: Sequence[str], start: date, end: date) -> dict[str, tuple[date, float]]:
        """Each symbol's last positive adjusted close between start and end: {symbol: (date, close)};
        symbols without one are absent."""
        frame = self.price_frame(list(symbols), start, end)
        values = frame.to_numpy(dtype="float64", na_value=np.nan)
        usable = np.isfinite(values) & (values > 0)
        found: dict[str, tuple[date, float]] = {}
        for column, symbol in enumerate(frame.columns):
            rows = np.flatnonzero(usable[:, column])
            if rows.size:
                found[str(symbol)] = (frame.index[rows[-1]].date(), float(values[rows[-1], column]))
        return found

    def synthetic_bars(self, bars: dict[str, date]) -> set[str]:
        """The symbols whose bar on the given day ({symbol: day}) is synthetic (the sample provider)."""
        if not bars:
            return set()
        frame = self.read_bars(sorted(bars), min(bars.values()), max(bars.values()))
        return {
            symbol
            for symbol, day, synthetic in zip(frame["symbol"], frame["date"], frame["synthetic"], strict=True)
            if synthetic and day.date() == bars[symbol]
        }


def normalise_long(bars: pd.DataFrame) -> pd.DataFrame:
    """Coerces a long frame to `LONG_COLUMNS` dtypes, rounding prices to the stored precision.

    Rounding here, once, is what makes every store hold the same numbers: the
    database stores the decimal and parquet the nearest double of it.
    """
    out = bars.reindex(columns=LONG_COLUMNS).copy()
    out["symbol"] = out["symbol"].astype(str)
    out["date"] = pd.to_datetime(out["date"]).dt.normalize().astype("datetime64[ns]")
    for column in PRICE_COLUMNS:
        out[column] = np.round(out[column].astype("float64"), PRICE_PLACES)
    out["volume"] = np.round(out["volume"].astype("float64")).astype("Int64")
    out["source"] = out["source"].fillna("").astype(str)
    out["synthetic"] = out["synthetic"].fillna(False).astype(bool)
    return out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def wide_frame(
    symbols: Sequence[str], column_codes: np.ndarray, dates: np.ndarray, adj_close: np.ndarray
) -> pd.DataFrame:
    """The wide price frame from one entry per bar: its column (index into `symbols`, -1 to drop),
    its date (datetime64) and its adjusted close.

    Filled through integer codes into one preallocated array: pivoting by
    symbol strings costs several times more on the hundred-thousand-bar
    answers a price frame is made of.
    """
    columns = list(symbols)
    keep = column_codes >= 0
    date_codes, unique_dates = pd.factorize(np.asarray(dates, dtype="datetime64[ns]")[keep], sort=True)
    values = np.full((len(unique_dates), len(columns)), np.nan)
    values[date_codes, column_codes[keep]] = np.asarray(adj_close, dtype="float64")[keep]
    index = pd.DatetimeIndex(unique_dates, name="date").as_unit("ns")
    return pd.DataFrame(values, index=index, columns=columns)


def column_codes_for(symbols: Sequence[str], found: Sequence[str]) -> np.ndarray:
    """For each symbol in `found`, its position in `symbols` (-1 when not requested)."""
    position = {symbol: i for i, symbol in enumerate(symbols)}
    return np.array([position.get(symbol, -1) for symbol in found], dtype="int64")
