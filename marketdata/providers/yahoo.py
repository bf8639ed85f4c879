"""Daily bars from Yahoo Finance through the `yfinance` package.

`yf.download(..., auto_adjust=True, group_by="column")` returns one frame for
all symbols: columns `MultiIndex(Price, Ticker)` with Price in Close, High,
Low, Open, Volume (plus "Adj Close", all NaN, for a ticker that failed), a
tz-naive `DatetimeIndex` named "Date", one row per session any symbol traded.
With `auto_adjust=True` the Close column is already split- and
dividend-adjusted, so it is both `close` and `adj_close` here.

yfinance swallows per-symbol failures (unknown symbol, rate limit on one
ticker) and returns NaN or empty columns for them; this provider reports what
came back and leaves completeness checks to the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from marketdata.providers.base import BAR_COLUMNS, PriceProvider, ProviderError, conform_bars

#: yfinance's Price level names -> bar columns. "Adj Close" is deliberately absent:
#: with auto_adjust it only appears, all NaN, in the placeholder yfinance builds for a failed ticker.
_PRICE_TO_BAR = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}

DownloadFn = Callable[..., pd.DataFrame | None]


def _default_download() -> DownloadFn:
    # Imported on first use: yfinance is slow to import and only needed when this provider runs.
    import yfinance

    return yfinance.download


class YFinanceProvider(PriceProvider):
    """Yahoo Finance daily bars (adjusted OHLC), many symbols per call.

    Options: `rate_limit_per_minute` (enforced by the chain), `timeout_s`
    (seconds per HTTP request yfinance makes, default 30) and `download`
    (a stand-in for `yfinance.download`, for tests).
    """

    name = "yfinance"

    def __init__(
        self,
        *,
        rate_limit_per_minute: int | None = None,
        timeout_s: float = 30.0,
        download: DownloadFn | None = None,
    ):
        super().__init__(rate_limit_per_minute=rate_limit_per_minute)
        self.timeout_s = timeout_s
        self._download = download

    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        """Bars per symbol from `start` to `end` (both inclusive); symbols with no rows are left out."""
        requested = list(dict.fromkeys(symbols))  # de-duplicated, order kept
        if not requested:
            return {}
        raw = self._call_download(requested, start, end)
        if raw is None or raw.empty:
            return {}
        by_ticker = _split_by_ticker(raw, requested)
        out: dict[str, pd.DataFrame] = {}
        for symbol in requested:
            # yfinance upper-cases tickers before fetching, so its columns may not match the caller's case.
            frame = by_ticker.get(symbol, by_ticker.get(symbol.upper()))
            if frame is None:
                continue
            bars = conform_bars(frame).dropna(how="all")
            if not bars.empty:
                out[symbol] = bars
        return out

    def _call_download(self, symbols: list[str], start: date, end: date) -> pd.DataFrame | None:
        """Runs one `yf.download` call; any exception becomes a transient ProviderError."""
        download = self._download or _default_download()
        try:
            return download(**self._download_kwargs(symbols, start, end))
        except Exception as exc:
            raise ProviderError(_describe_failure(exc), transient=True) from exc

    def _download_kwargs(self, symbols: list[str], start: date, end: date) -> dict[str, Any]:
        """Keyword arguments for `yf.download`: `end` is exclusive there, hence the extra day."""
        return {
            "tickers": symbols,
            "start": start.isoformat(),
            "end": (end + timedelta(days=1)).isoformat(),
            "auto_adjust": True,
            "group_by": "column",
            "progress": False,
            # Threads would fan out one request per ticker at once, defeating the chain's rate limit.
            "threads": False,
            "timeout": self.timeout_s,
            # Keeps (Price, Ticker) columns for a single ticker too, so one code path reads both.
            "multi_level_index": True,
        }


def _describe_failure(exc: Exception) -> str:
    """A one-line reason for a whole-call failure, naming rate limits explicitly."""
    kind = type(exc).__name__
    if kind == "YFRateLimitError" or "Too Many Requests" in str(exc):
        return f"yfinance was rate-limited by Yahoo (HTTP 429): {exc}"
    return f"yfinance download failed ({kind}): {exc}"


def _split_by_ticker(raw: pd.DataFrame, requested: list[str]) -> dict[str, pd.DataFrame]:
    """{ticker: frame with bar-named columns} from a yf.download result.

    Accepts (Price, Ticker) or (Ticker, Price) MultiIndex columns, and flat
    Price columns, which only make sense when one symbol was requested.
    """
    columns = raw.columns
    if not isinstance(columns, pd.MultiIndex):
        if len(requested) != 1:
            raise ProviderError(
                f"yfinance returned flat columns {list(columns)} for {len(requested)} symbols", transient=False
            )
        return {requested[0]: _rename_prices(raw)}
    price_level = _price_level(columns)
    ticker_level = 1 - price_level
    return {
        str(ticker): _rename_prices(raw.xs(ticker, axis=1, level=ticker_level))
        for ticker in columns.get_level_values(ticker_level).unique()
    }


def _price_level(columns: pd.MultiIndex) -> int:
    """Which of the two column levels holds the price names (0 with group_by="column")."""
    if columns.nlevels != 2:
        raise ProviderError(f"yfinance returned {columns.nlevels} column levels, expected 2", transient=False)
    for level in (0, 1):
        if set(columns.get_level_values(level)) & set(_PRICE_TO_BAR):
            return level
    raise ProviderError(f"yfinance returned no price columns: {list(columns)[:6]}", transient=False)


def _rename_prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Bar-named columns from yfinance's: Close feeds both close and adj_close (auto_adjust)."""
    renamed = frame[[c for c in frame.columns if c in _PRICE_TO_BAR]].rename(columns=_PRICE_TO_BAR)
    if "close" in renamed:
        renamed["adj_close"] = renamed["close"]
    return renamed.reindex(columns=list(BAR_COLUMNS))
