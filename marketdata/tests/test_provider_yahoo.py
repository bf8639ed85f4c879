"""YFinanceProvider against frames shaped exactly like yfinance 1.7's `yf.download` output."""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance
from django.conf import settings
from yfinance.exceptions import YFRateLimitError

from marketdata.providers.base import ProviderError
from marketdata.providers.yahoo import YFinanceProvider
from marketdata.tests.factories import assert_bars_shape

JAN_2_TO_4 = ["2024-01-02", "2024-01-03", "2024-01-04"]


def ticker_history(days: list[str], closes: list[float], *, volume: int = 1000) -> pd.DataFrame:
    """One ticker's `Ticker.history(auto_adjust=True)` frame: Open/High/Low/Close/Volume, tz-aware "Date"."""
    closes_arr = np.array(closes, dtype=float)
    return pd.DataFrame(
        {
            "Open": closes_arr - 1,
            "High": closes_arr + 2,
            "Low": closes_arr - 2,
            "Close": closes_arr,
            "Volume": np.full(len(days), volume, dtype="int64"),
        },
        index=pd.DatetimeIndex(days, name="Date").tz_localize("America/New_York"),
    )


def failed_history() -> pd.DataFrame:
    """What yfinance stores for a ticker it could not fetch (`yfinance.utils.empty_df()`)."""
    return pd.DataFrame(
        {"Open": [], "High": [], "Low": [], "Close": [], "Adj Close": [], "Volume": []},
        index=pd.DatetimeIndex([], name="Date"),
        dtype="float64",
    )


def download_frame(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Assembles per-ticker histories the way `yfinance.multi.download` does with group_by="column".

    Indexes made tz-naive (ignore_tz for daily data), reindexed to the union
    of dates (so failed tickers become all-NaN columns), concatenated under
    (Ticker, Price), then swapped to (Price, Ticker) and sorted.
    """
    frames = {ticker: frame.copy() for ticker, frame in histories.items()}
    union = None
    for frame in frames.values():
        if not frame.empty:
            frame.index = frame.index.tz_localize(None)
            union = frame.index if union is None else union.union(frame.index)
    union = pd.DatetimeIndex([]) if union is None else union
    frames = {ticker: frame.reindex(union) for ticker, frame in frames.items()}
    data = pd.concat(frames.values(), axis=1, sort=True, keys=frames.keys(), names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


class FakeDownload:
    """Stands in for `yf.download`: checks the call is valid for the installed yfinance, returns a frame."""

    def __init__(self, result: pd.DataFrame | None = None, *, raises: Exception | None = None):
        self.result = result
        self.raises = raises
        self.kwargs: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame | None:
        # Binding to the real signature makes an unknown keyword fail here as it would in production.
        inspect.signature(yfinance.download).bind(*args, **kwargs)
        self.kwargs = kwargs
        if self.raises is not None:
            raise self.raises
        return self.result


def fetch(download: FakeDownload, symbols: list[str], start: date, end: date) -> dict[str, pd.DataFrame]:
    return YFinanceProvider(download=download).fetch_daily_bars(symbols, start, end)


def test_two_symbols_map_to_bar_frames_with_close_as_adjusted_close():
    raw = download_frame(
        {
            "SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0]),
            "AGG": ticker_history(JAN_2_TO_4, [98.0, 98.2, 98.1]),
        }
    )
    download = FakeDownload(raw)

    bars = fetch(download, ["SPY", "AGG"], date(2024, 1, 2), date(2024, 1, 4))

    assert set(bars) == {"SPY", "AGG"}
    spy = bars["SPY"]
    assert_bars_shape(spy)
    assert list(spy.index) == [pd.Timestamp(day) for day in JAN_2_TO_4]
    assert spy["close"].tolist() == [470.0, 468.5, 467.0]
    assert spy["adj_close"].tolist() == [470.0, 468.5, 467.0]
    assert spy["open"].tolist() == [469.0, 467.5, 466.0]
    assert spy["high"].tolist() == [472.0, 470.5, 469.0]
    assert spy["low"].tolist() == [468.0, 466.5, 465.0]
    assert spy["volume"].tolist() == [1000.0, 1000.0, 1000.0]
    assert bars["AGG"]["adj_close"].tolist() == [98.0, 98.2, 98.1]


def test_end_is_made_exclusive_by_adding_a_day_and_call_is_sequential_and_quiet():
    download = FakeDownload(download_frame({"SPY": ticker_history(JAN_2_TO_4, [1.0, 2.0, 3.0])}))

    fetch(download, ["SPY"], date(2023, 12, 29), date(2024, 1, 4))

    assert download.kwargs["start"] == "2023-12-29"
    assert download.kwargs["end"] == "2024-01-05"
    assert download.kwargs["auto_adjust"] is True
    assert download.kwargs["group_by"] == "column"
    assert download.kwargs["threads"] is False
    assert download.kwargs["progress"] is False
    assert download.kwargs["timeout"] == 30.0


def test_unknown_symbol_all_nan_columns_are_left_out():
    # A failed ticker comes back as all-NaN columns, including an "Adj Close" that auto_adjust never fills.
    raw = download_frame({"SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0]), "NOPE": failed_history()})
    assert ("Adj Close", "NOPE") in raw.columns

    bars = fetch(FakeDownload(raw), ["SPY", "NOPE"], date(2024, 1, 2), date(2024, 1, 4))

    assert list(bars) == ["SPY"]
    assert bars["SPY"]["adj_close"].tolist() == [470.0, 468.5, 467.0]


def test_symbol_missing_from_the_answer_is_absent():
    raw = download_frame({"SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0])})

    bars = fetch(FakeDownload(raw), ["SPY", "VXUS"], date(2024, 1, 2), date(2024, 1, 4))

    assert list(bars) == ["SPY"]


def test_rows_another_ticker_traded_are_dropped_when_all_nan():
    # VXUS has no Jan 3 bar; the union index gives it an all-NaN Jan 3 row, which is not a bar.
    raw = download_frame(
        {
            "SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0]),
            "VXUS": ticker_history(["2024-01-02", "2024-01-04"], [57.0, 57.5]),
        }
    )

    bars = fetch(FakeDownload(raw), ["SPY", "VXUS"], date(2024, 1, 2), date(2024, 1, 4))

    assert list(bars["VXUS"].index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-04")]
    assert bars["VXUS"]["adj_close"].tolist() == [57.0, 57.5]
    assert len(bars["SPY"]) == 3


def test_partially_missing_row_is_kept_with_nan():
    history = ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0])
    history.loc[history.index[1], "Close"] = np.nan

    bars = fetch(FakeDownload(download_frame({"SPY": history})), ["SPY"], date(2024, 1, 2), date(2024, 1, 4))

    assert len(bars["SPY"]) == 3
    assert np.isnan(bars["SPY"]["adj_close"].iloc[1])
    assert bars["SPY"]["open"].iloc[1] == 467.5


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(download_frame({"NOPE": failed_history()}), id="every-ticker-failed"),
        pytest.param(pd.DataFrame(), id="no-columns"),
        pytest.param(None, id="none"),
    ],
)
def test_entirely_empty_answer_is_an_empty_result_not_an_error(raw):
    assert fetch(FakeDownload(raw), ["NOPE"], date(2024, 1, 2), date(2024, 1, 4)) == {}


def test_lower_case_symbol_is_answered_under_the_callers_spelling():
    # yfinance upper-cases tickers before fetching, so its column is "SPY".
    raw = download_frame({"SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0])})

    bars = fetch(FakeDownload(raw), ["spy"], date(2024, 1, 2), date(2024, 1, 4))

    assert list(bars) == ["spy"]
    assert bars["spy"]["close"].iloc[0] == 470.0


def test_flat_columns_for_a_single_symbol_are_accepted():
    raw = ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0])
    raw.index = raw.index.tz_localize(None)

    bars = fetch(FakeDownload(raw), ["SPY"], date(2024, 1, 2), date(2024, 1, 4))

    assert bars["SPY"]["adj_close"].tolist() == [470.0, 468.5, 467.0]


def test_ticker_first_column_order_is_accepted():
    raw = download_frame({"SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0])})
    raw.columns = raw.columns.swaplevel(0, 1)

    bars = fetch(FakeDownload(raw), ["SPY"], date(2024, 1, 2), date(2024, 1, 4))

    assert bars["SPY"]["close"].tolist() == [470.0, 468.5, 467.0]


def test_exception_from_yfinance_is_a_transient_provider_error():
    download = FakeDownload(raises=ConnectionError("Failed to resolve 'query2.finance.yahoo.com'"))

    with pytest.raises(ProviderError) as caught:
        fetch(download, ["SPY"], date(2024, 1, 2), date(2024, 1, 4))

    assert caught.value.transient is True
    assert "ConnectionError" in str(caught.value)
    assert "query2.finance.yahoo.com" in str(caught.value)


def test_rate_limit_is_a_transient_provider_error_naming_the_rate_limit():
    with pytest.raises(ProviderError) as caught:
        fetch(FakeDownload(raises=YFRateLimitError()), ["SPY"], date(2024, 1, 2), date(2024, 1, 4))

    assert caught.value.transient is True
    assert "rate-limited" in str(caught.value)


def test_no_symbols_means_no_call():
    download = FakeDownload(raises=AssertionError("must not be called"))

    assert fetch(download, [], date(2024, 1, 2), date(2024, 1, 4)) == {}


def test_constructs_from_configured_options():
    provider = YFinanceProvider(**settings.PRICE_PROVIDER_OPTIONS["yfinance"])

    assert provider.name == "yfinance"
    assert provider.rate_limit_per_minute == settings.PRICE_PROVIDER_OPTIONS["yfinance"]["rate_limit_per_minute"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fixture_shape_matches_real_yf_download_assembly(monkeypatch):
    """The real `yf.download` fed canned per-ticker histories builds the same frame as `download_frame`.

    Only the per-ticker fetch (`yfinance.multi.Ticker`) is replaced, so no
    request leaves the process; if a yfinance upgrade moves it, this test
    says so instead of the fixtures silently drifting from the real shape.
    """
    import yfinance.multi

    if not hasattr(yfinance.multi, "Ticker"):
        pytest.skip("yfinance.multi.Ticker moved; re-check download_frame against the installed yfinance")
    histories = {"SPY": ticker_history(JAN_2_TO_4, [470.0, 468.5, 467.0]), "NOPE": failed_history()}

    class CannedTicker:
        def __init__(self, ticker: str):
            self.ticker = ticker
            self._price_history = None

        def history(self, **_kwargs: Any) -> pd.DataFrame:
            return histories[self.ticker].copy()

    monkeypatch.setattr(yfinance.multi, "Ticker", CannedTicker)

    real = yfinance.download(
        ["SPY", "NOPE"],
        start="2024-01-02",
        end="2024-01-05",
        auto_adjust=True,
        group_by="column",
        progress=False,
        threads=False,
    )
    expected = download_frame(histories)

    assert list(real.columns) == list(expected.columns)
    assert real.columns.names == expected.columns.names
    assert list(real.index) == list(expected.index)
    assert real.index.name == expected.index.name
    pd.testing.assert_frame_equal(real, expected, check_dtype=False, check_index_type=False)
    bars = YFinanceProvider(download=yfinance.download).fetch_daily_bars(
        ["SPY", "NOPE"], date(2024, 1, 2), date(2024, 1, 4)
    )
    assert list(bars) == ["SPY"]
    assert bars["SPY"]["adj_close"].tolist() == [470.0, 468.5, 467.0]
