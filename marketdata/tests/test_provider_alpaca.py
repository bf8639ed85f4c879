"""AlpacaProvider: the real alpaca-py client against the fake Alpaca server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import date, timedelta

import pandas as pd
import pytest
from django.conf import settings

from marketdata.providers.alpaca import AlpacaProvider
from marketdata.providers.base import ProviderError, ProviderNotConfigured
from marketdata.tests.factories import assert_bars_shape
from tests.fakes.alpaca_server import FakeAlpacaServer, daily_bar

KEY = "fake-key-id"
SECRET = "fake-secret-key"
SESSIONS = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5), date(2024, 1, 8)]


def provider_for(server: FakeAlpacaServer, **options: object) -> AlpacaProvider:
    """A provider pointed at the fake, with its credentials and a short timeout."""
    defaults: dict[str, object] = {"data_url": server.url, "api_key": KEY, "secret_key": SECRET, "timeout_s": 0.5}
    return AlpacaProvider(**{**defaults, **options})


def free_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_two_symbols_across_pages_map_to_bar_frames(fake_alpaca_server):
    fake_alpaca_server.page_size = 3  # 10 bars -> 4 pages
    for offset, symbol in ((0.0, "SPY"), (100.0, "AGG")):
        rows = [
            daily_bar(day, 400.0 + offset + i, open=399.0 + offset + i, high=401.5 + offset + i, low=398.0 + offset)
            for i, day in enumerate(SESSIONS)
        ]
        fake_alpaca_server.set_bars(symbol, rows)

    bars = provider_for(fake_alpaca_server).fetch_daily_bars(["SPY", "AGG"], SESSIONS[0], SESSIONS[-1])

    assert len(fake_alpaca_server.requests_to("/v2/stocks/bars")) == 4
    assert set(bars) == {"SPY", "AGG"}
    spy = bars["SPY"]
    assert_bars_shape(spy)
    assert list(spy.index) == [pd.Timestamp(day) for day in SESSIONS]
    assert spy["close"].tolist() == [400.0, 401.0, 402.0, 403.0, 404.0]
    assert spy["open"].tolist() == [399.0, 400.0, 401.0, 402.0, 403.0]
    assert spy["high"].tolist() == [401.5, 402.5, 403.5, 404.5, 405.5]
    assert spy["low"].tolist() == [398.0] * 5
    assert spy["volume"].tolist() == [1_000_000.0] * 5
    assert bars["AGG"]["close"].tolist() == [500.0, 501.0, 502.0, 503.0, 504.0]
    for frame in bars.values():
        assert frame["adj_close"].tolist() == frame["close"].tolist()


@pytest.mark.parametrize(
    ("stamp", "session"),
    [
        pytest.param("2024-01-02T05:00:00Z", date(2024, 1, 2), id="new-york-midnight-winter"),
        pytest.param("2024-07-01T04:00:00Z", date(2024, 7, 1), id="new-york-midnight-summer"),
        pytest.param("2024-07-01T00:00:00Z", date(2024, 7, 1), id="utc-midnight"),
        pytest.param("2024-03-11T13:30:00Z", date(2024, 3, 11), id="session-open"),
    ],
)
def test_bar_stamps_become_the_trading_date(fake_alpaca_server, stamp, session):
    fake_alpaca_server.set_bars("SPY", [daily_bar(session, 470.0, stamp=stamp)])

    bars = provider_for(fake_alpaca_server).fetch_daily_bars(["SPY"], session, session)

    assert list(bars["SPY"].index) == [pd.Timestamp(session)]


def test_start_and_end_dates_are_inclusive(fake_alpaca_server):
    days = [date(2023, 12, 28) + timedelta(days=i) for i in range(14)]
    fake_alpaca_server.set_bars("SPY", [daily_bar(day, 400.0 + i) for i, day in enumerate(days)])
    # A midnight-UTC stamp on the last day must still count as inside the range.
    fake_alpaca_server.set_bars("AGG", [daily_bar(date(2024, 1, 5), 98.0, stamp="2024-01-05T00:00:00Z")])

    bars = provider_for(fake_alpaca_server).fetch_daily_bars(["SPY", "AGG"], date(2024, 1, 2), date(2024, 1, 5))

    assert [day.date() for day in bars["SPY"].index] == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert [day.date() for day in bars["AGG"].index] == [date(2024, 1, 5)]


def test_prices_are_the_fully_adjusted_ones(fake_alpaca_server):
    # A 2:1 split on Jan 4: raw closes jump, adjusted ones do not.
    fake_alpaca_server.set_bars(
        "SPY", [daily_bar(SESSIONS[0], 200.0), daily_bar(SESSIONS[2], 201.0)], adjustments=("all",)
    )
    fake_alpaca_server.set_bars(
        "SPY", [daily_bar(SESSIONS[0], 400.0), daily_bar(SESSIONS[2], 201.0)], adjustments=("raw", "split", "dividend")
    )

    bars = provider_for(fake_alpaca_server).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[2])

    assert bars["SPY"]["adj_close"].tolist() == [200.0, 201.0]
    assert bars["SPY"]["close"].tolist() == [200.0, 201.0]


def test_unknown_symbol_is_absent(fake_alpaca_server):
    fake_alpaca_server.set_bars("SPY", [daily_bar(SESSIONS[0], 470.0)])

    bars = provider_for(fake_alpaca_server).fetch_daily_bars(["SPY", "NOPE"], SESSIONS[0], SESSIONS[0])

    assert list(bars) == ["SPY"]


def test_no_bars_at_all_is_an_empty_result(fake_alpaca_server):
    assert provider_for(fake_alpaca_server).fetch_daily_bars(["NOPE"], SESSIONS[0], SESSIONS[-1]) == {}


def test_rejected_credentials_are_permanent_and_never_echoed(fake_alpaca_server):
    provider = provider_for(fake_alpaca_server, api_key="wrong-key-AKXYZ", secret_key="wrong-secret-s3cr3t")

    with pytest.raises(ProviderError) as caught:
        provider.fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[-1])

    message = str(caught.value)
    assert caught.value.transient is False
    assert "credentials rejected" in message
    assert "401" in message
    assert "wrong-key-AKXYZ" not in message
    assert "wrong-secret-s3cr3t" not in message


def test_server_echoing_the_key_in_an_error_is_redacted(fake_alpaca_server):
    fake_alpaca_server.fail_next(1, 422, {"message": f"invalid key {KEY} with secret {SECRET}"})

    with pytest.raises(ProviderError) as caught:
        provider_for(fake_alpaca_server).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[-1])

    assert caught.value.transient is False
    assert KEY not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_feed_without_subscription_is_permanent_with_the_servers_reason(fake_alpaca_server):
    fake_alpaca_server.permitted_feeds = {"iex"}

    with pytest.raises(ProviderError) as caught:
        provider_for(fake_alpaca_server, feed="sip").fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[-1])

    assert caught.value.transient is False
    assert "403" in str(caught.value)
    assert "subscription does not permit querying recent SIP data" in str(caught.value)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_client_errors_are_permanent(fake_alpaca_server, status):
    fake_alpaca_server.fail_next(1, status, {"message": "invalid symbol: $$$"})

    with pytest.raises(ProviderError) as caught:
        provider_for(fake_alpaca_server).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[-1])

    assert caught.value.transient is False
    assert f"HTTP {status}" in str(caught.value)
    assert "invalid symbol: $$$" in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_errors_are_transient_and_not_retried_by_the_sdk(fake_alpaca_server, status):
    fake_alpaca_server.set_bars("SPY", [daily_bar(SESSIONS[0], 470.0)])
    fake_alpaca_server.fail_next(1, status)
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        provider_for(fake_alpaca_server).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[-1])

    # The SDK would sleep 3 s and retry 429/504 itself; the chain owns retries, so one quick failure.
    assert time.monotonic() - started < 2.0
    assert caught.value.transient is True
    assert f"HTTP {status}" in str(caught.value)


def test_failure_then_success_on_the_next_call(fake_alpaca_server):
    fake_alpaca_server.set_bars("SPY", [daily_bar(SESSIONS[0], 470.0)])
    fake_alpaca_server.fail_next(1, 500)
    provider = provider_for(fake_alpaca_server)

    with pytest.raises(ProviderError):
        provider.fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])
    bars = provider.fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])

    assert bars["SPY"]["close"].tolist() == [470.0]


def test_slow_server_times_out_as_a_transient_error(fake_alpaca_server):
    fake_alpaca_server.set_bars("SPY", [daily_bar(SESSIONS[0], 470.0)])
    fake_alpaca_server.delay_s = 2.0
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        provider_for(fake_alpaca_server, timeout_s=0.3).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])

    assert time.monotonic() - started < 1.5
    assert caught.value.transient is True
    assert "timed out" in str(caught.value)


def test_unreachable_server_is_a_transient_error():
    provider = AlpacaProvider(data_url=free_port_url(), api_key=KEY, secret_key=SECRET, timeout_s=0.5)

    with pytest.raises(ProviderError) as caught:
        provider.fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])

    assert caught.value.transient is True
    assert "unreachable" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_credentials_raise_not_configured_at_fetch_not_construction(settings):
    settings.ALPACA_API_KEY = ""
    settings.ALPACA_SECRET_KEY = ""
    provider = AlpacaProvider(data_url=free_port_url())

    with pytest.raises(ProviderNotConfigured) as caught:
        provider.fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])

    assert str(caught.value) == "ALPACA_API_KEY and ALPACA_SECRET_KEY are not set"
    assert caught.value.transient is False


def test_half_configured_credentials_are_not_configured(settings):
    settings.ALPACA_API_KEY = KEY
    settings.ALPACA_SECRET_KEY = ""

    with pytest.raises(ProviderNotConfigured):
        AlpacaProvider(data_url=free_port_url()).fetch_daily_bars(["SPY"], SESSIONS[0], SESSIONS[0])


def test_credentials_default_to_settings(settings, fake_alpaca_server):
    settings.ALPACA_API_KEY = KEY
    settings.ALPACA_SECRET_KEY = SECRET
    fake_alpaca_server.set_bars("SPY", [daily_bar(SESSIONS[0], 470.0)])

    bars = AlpacaProvider(data_url=fake_alpaca_server.url, timeout_s=0.5).fetch_daily_bars(
        ["SPY"], SESSIONS[0], SESSIONS[0]
    )

    assert bars["SPY"]["adj_close"].tolist() == [470.0]


def test_constructs_from_configured_options():
    options = settings.PRICE_PROVIDER_OPTIONS["alpaca"]

    provider = AlpacaProvider(**options)

    assert provider.name == "alpaca"
    assert provider.feed == options["feed"]
    assert provider.rate_limit_per_minute == options["rate_limit_per_minute"]


def test_unknown_feed_is_rejected_at_construction():
    with pytest.raises(ValueError, match="feed="):
        AlpacaProvider(feed="nasdaq")
