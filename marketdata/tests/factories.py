"""Builders of bars frames and in-process providers that behave like real ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from marketdata.calendar import sessions_index
from marketdata.providers.base import BAR_COLUMNS, PriceProvider, ProviderError, conform_bars


def bars_frame(start: date, end: date, *, first_close: float = 100.0, daily_return: float = 0.001) -> pd.DataFrame:
    """Bars on every NYSE session from start to end, closes growing by `daily_return` a day."""
    index = sessions_index(start, end).rename("date")
    closes = first_close * (1 + daily_return) ** np.arange(len(index))
    return pd.DataFrame(
        {
            "open": closes * 0.999,
            "high": closes * 1.01,
            "low": closes * 0.99,
            "close": closes,
            "adj_close": closes,
            "volume": np.full(len(index), 1_000_000.0),
        },
        index=index,
    )[list(BAR_COLUMNS)]


class ScriptedProvider(PriceProvider):
    """A provider holding bars per symbol, answering like a real source, with scripted faults.

    `failures` is a list of exceptions raised by the next calls, in order; a
    `delay_s` makes every call slow. Calls are recorded as (symbols, start, end).
    """

    def __init__(
        self,
        name: str,
        bars: dict[str, pd.DataFrame] | None = None,
        *,
        failures: Sequence[Exception] = (),
        delay_s: float = 0.0,
        synthetic: bool = False,
        rate_limit_per_minute: int | None = None,
    ):
        super().__init__(rate_limit_per_minute=rate_limit_per_minute)
        self.name = name
        self.synthetic = synthetic
        self.bars = dict(bars or {})
        self.failures = list(failures)
        self.delay_s = delay_s
        self.calls: list[tuple[tuple[str, ...], date, date]] = []
        self._lock = threading.Lock()

    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        with self._lock:
            self.calls.append((tuple(symbols), start, end))
            failure = self.failures.pop(0) if self.failures else None
        if self.delay_s:
            time.sleep(self.delay_s)
        if failure is not None:
            raise failure
        answer = {}
        for symbol in symbols:
            if symbol in self.bars:
                frame = self.bars[symbol]
                answer[symbol] = frame[(frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))]
        return answer


def transient(message: str = "HTTP 503 from provider") -> ProviderError:
    return ProviderError(message, transient=True)


def assert_bars_shape(frame: pd.DataFrame) -> None:
    """The documented bars frame shape: BAR_COLUMNS as float64, an ascending tz-naive DatetimeIndex named date."""
    assert list(frame.columns) == list(BAR_COLUMNS)
    assert (frame.dtypes == "float64").all()
    assert frame.index.name == "date"
    assert frame.index.tz is None
    assert frame.index.is_monotonic_increasing
    # `freq` is inferred by normalize() and is no part of the documented shape.
    pd.testing.assert_frame_equal(frame, conform_bars(frame), check_freq=False)
