"""Daily bars from Alpaca's market-data API through alpaca-py.

One `GET /v2/stocks/bars` call (the SDK follows `next_page_token` itself)
with `adjustment=all`, so o/h/l/c are split- and dividend-adjusted and the
close is also `adj_close`. Daily bar stamps mark the session's start, at
midnight New York time (`04:00Z`/`05:00Z`) or, in some feeds, midnight UTC.

The SDK sets no HTTP timeout and retries 429/504 itself with 3 s sleeps; the
client built here gets a per-request timeout and no SDK retries, because the
chain owns retries, backoff and rate limits for every provider alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from django.conf import settings

from marketdata.providers.base import PriceProvider, ProviderError, ProviderNotConfigured, conform_bars

DEFAULT_DATA_URL = "https://data.alpaca.markets"
FEEDS = ("iex", "sip")


class _TimeoutSession(requests.Session):
    """A requests session that applies a default timeout to every request.

    alpaca-py calls `self._session.request(method, url, headers=..., params=...)`
    without a timeout, which can block forever on a stalled connection.
    """

    def __init__(self, timeout_s: float):
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


class AlpacaProvider(PriceProvider):
    """Alpaca daily bars (all corporate actions adjusted) for many symbols per call.

    Options: `rate_limit_per_minute` (enforced by the chain), `data_url`
    (market-data base URL), `feed` ("iex", free, or "sip", paid), `timeout_s`
    (seconds per HTTP request, default 30), and `api_key` / `secret_key`
    (default: settings ALPACA_API_KEY / ALPACA_SECRET_KEY, read at fetch time).
    """

    name = "alpaca"

    def __init__(
        self,
        *,
        rate_limit_per_minute: int | None = None,
        data_url: str = DEFAULT_DATA_URL,
        feed: str = "iex",
        api_key: str | None = None,
        secret_key: str | None = None,
        timeout_s: float = 30.0,
    ):
        super().__init__(rate_limit_per_minute=rate_limit_per_minute)
        if feed not in FEEDS:
            raise ValueError(f"feed={feed!r} is invalid: expected one of {', '.join(FEEDS)}")
        self.data_url = data_url.rstrip("/")
        self.feed = feed
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._secret_key = secret_key

    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        """Bars per symbol from `start` to `end` (both inclusive); symbols with no bars are left out."""
        requested = list(dict.fromkeys(symbols))  # de-duplicated, order kept
        if not requested:
            return {}
        api_key, secret_key = self._credentials()
        client = self._client(api_key, secret_key)
        try:
            raw = self._get_bars(client, requested, start, end, secrets=(api_key, secret_key))
        finally:
            client._session.close()
        by_upper = {symbol.upper(): rows for symbol, rows in raw.items()}
        out: dict[str, pd.DataFrame] = {}
        for symbol in requested:
            rows = raw.get(symbol) or by_upper.get(symbol.upper())
            if rows:
                out[symbol] = bars_frame(rows)
        return out

    def _credentials(self) -> tuple[str, str]:
        """(api key, secret key); raises ProviderNotConfigured when either is empty."""
        api_key, secret_key = self._api_key, self._secret_key
        if api_key is None or secret_key is None:
            api_key = getattr(settings, "ALPACA_API_KEY", "") if api_key is None else api_key
            secret_key = getattr(settings, "ALPACA_SECRET_KEY", "") if secret_key is None else secret_key
        if not (api_key and secret_key):
            raise ProviderNotConfigured("ALPACA_API_KEY and ALPACA_SECRET_KEY are not set")
        return api_key, secret_key

    def _client(self, api_key: str, secret_key: str) -> StockHistoricalDataClient:
        """A StockHistoricalDataClient with a request timeout and the SDK's own retries off."""
        client = StockHistoricalDataClient(api_key, secret_key, url_override=self.data_url)
        for attribute in ("_session", "_retry"):
            # Private attributes of alpaca.common.rest.RESTClient: fail loudly if an upgrade renames them
            # rather than silently losing the timeout.
            if not hasattr(client, attribute):
                raise ProviderError(f"alpaca-py client has no {attribute}; cannot enforce timeouts", transient=False)
        client._session.close()
        client._session = _TimeoutSession(self.timeout_s)
        client._retry = 0
        return client

    def _get_bars(
        self, client: StockHistoricalDataClient, symbols: list[str], start: date, end: date, *, secrets: tuple[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        """{symbol: [bar dict]} for the whole date range, all pages; errors mapped to ProviderError."""
        request = StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TimeFrame.Day,
            # Whole UTC days: a bar stamped at midnight UTC or New York of either bound is inside.
            start=datetime.combine(start, time.min),
            end=datetime.combine(end, time.max),
            adjustment=Adjustment.ALL,
            feed=DataFeed(self.feed),
        )
        try:
            barset = client.get_stock_bars(request)
        except APIError as exc:
            raise _api_error(exc, secrets) from None
        except requests.Timeout as exc:
            raise ProviderError(f"Alpaca market data timed out after {self.timeout_s:g} s", transient=True) from exc
        except requests.RequestException as exc:
            message = _redact(f"Alpaca market data unreachable ({type(exc).__name__}): {exc}", secrets)
            raise ProviderError(message, transient=True) from None
        except ValueError as exc:
            # The SDK raises ValueError (pydantic included) for a 200 response it cannot parse.
            message = _redact(f"Alpaca market data sent an unexpected response: {exc}", secrets)
            raise ProviderError(message, transient=False) from None
        return {symbol: [bar.model_dump() for bar in bars] for symbol, bars in barset.data.items()}


def bars_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A bars frame (see `marketdata.providers.base`) from alpaca-py `Bar.model_dump()` dicts.

    Each row has `timestamp` (tz-aware datetime) and float `open`, `high`,
    `low`, `close`, `volume` (shares); `adj_close` is the close because the
    request asked for `adjustment=all`.
    """
    frame = pd.DataFrame.from_records(list(rows), columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame["adj_close"] = frame["close"]
    frame.index = trading_dates(frame.pop("timestamp"))
    return conform_bars(frame)


def trading_dates(stamps: pd.Series) -> pd.DatetimeIndex:
    """Naive midnight trading dates from daily-bar stamps.

    The NYSE session (09:30-16:00 New York) and New York midnight
    (04:00Z/05:00Z) both fall on the same UTC calendar date as the session, and
    so does a midnight-UTC stamp, which converting to New York would move to
    the previous evening. So the UTC date is the trading date for every stamp
    convention Alpaca uses.
    """
    utc = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))
    return utc.tz_localize(None).normalize().rename("date")


def _api_error(exc: APIError, secrets: tuple[str, str]) -> ProviderError:
    """Classifies an alpaca-py APIError: auth and other 4xx are permanent, 429 and 5xx transient."""
    status = exc.status_code
    reason = _redact(_server_message(exc), secrets)
    if status in (401, 403):
        return ProviderError(
            f"Alpaca market data: credentials rejected or not permitted (HTTP {status}: {reason}); "
            "check ALPACA_API_KEY, ALPACA_SECRET_KEY and the data feed subscription",
            transient=False,
        )
    transient = status is None or status == 429 or status >= 500
    return ProviderError(f"Alpaca market data error (HTTP {status}): {reason}", transient=transient)


def _server_message(exc: APIError) -> str:
    """The `message` of Alpaca's JSON error body, else the body text, shortened."""
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    return text.strip()[:200] or "no message"


def _redact(text: str, secrets: tuple[str, str]) -> str:
    """`text` with every occurrence of the key and secret blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
