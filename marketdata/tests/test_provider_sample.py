"""The synthetic sample provider and the instrument reference table it draws on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.calendar import calendar_last_session, sessions_index
from marketdata.providers.base import BAR_COLUMNS, conform_bars
from marketdata.providers.sample import EPOCH, SampleProvider
from marketdata.reference import ASSET_CLASSES, KNOWN_INSTRUMENTS, REGIONS, InstrumentInfo, lookup

EQUITY_ETFS = ["SPY", "VTI", "QQQ", "EFA", "EEM", "IWM", "VEA", "VWO"]
BOND_ETFS = ["BND", "AGG", "TLT", "IEF", "SHY", "LQD", "HYG", "TIP"]
DECADE = (date(2010, 1, 1), date(2019, 12, 31))


@pytest.fixture(scope="module")
def provider() -> SampleProvider:
    return import_string(settings.PRICE_PROVIDER_REGISTRY["sample"])(**settings.PRICE_PROVIDER_OPTIONS["sample"])


@pytest.fixture(scope="module")
def decade(provider) -> pd.DataFrame:
    """Daily log returns over 2010-2019 of a mix of classes, one column per symbol."""
    symbols = [*EQUITY_ETFS, *BOND_ETFS, "BIL", "GLD", "DBC", "VNQ", "AAPL", "XYZ", "MSFT"]
    bars = provider.fetch_daily_bars(symbols, *DECADE)
    closes = pd.DataFrame({symbol: bars[symbol]["adj_close"] for symbol in symbols})
    return np.log(closes).diff().dropna()


def annual_vol(log_returns: pd.Series) -> float:
    return float(log_returns.std() * np.sqrt(252))


def annual_drift(log_returns: pd.Series) -> float:
    """Mean daily simple return times 252: the arithmetic drift the profiles target."""
    return float(np.expm1(log_returns).mean() * 252)


def pairwise(corr: pd.DataFrame, left: list[str], right: list[str]) -> list[float]:
    return [corr.loc[a, b] for a in left for b in right if a != b]


# --- Provider basics ----------------------------------------------------------------


def test_is_registered_and_marked_synthetic(provider):
    assert isinstance(provider, SampleProvider)
    assert provider.name == "sample"
    assert provider.synthetic is True


def test_bars_have_the_documented_shape(provider):
    bars = provider.fetch_daily_bars(["SPY", "XYZ"], date(2024, 1, 1), date(2024, 3, 31))

    assert list(bars) == ["SPY", "XYZ"]
    for frame in bars.values():
        assert list(frame.columns) == list(BAR_COLUMNS)
        assert frame.index.name == "date"
        assert (frame.dtypes == "float64").all()
        pd.testing.assert_frame_equal(frame, conform_bars(frame), check_freq=False)


def test_only_sessions_are_returned(provider):
    start, end = date(2024, 12, 16), date(2025, 1, 3)

    frame = provider.fetch_daily_bars(["SPY"], start, end)["SPY"]

    assert list(frame.index) == list(sessions_index(start, end))
    assert pd.Timestamp("2024-12-25") not in frame.index
    assert pd.Timestamp("2025-01-01") not in frame.index
    assert pd.Timestamp("2024-12-24") in frame.index
    assert (frame.index.day_of_week < 5).all()


def test_end_past_the_calendar_is_clamped_not_an_error(provider):
    last = calendar_last_session()

    frame = provider.fetch_daily_bars(["SPY"], date(last.year, 1, 1), date(2100, 1, 1))["SPY"]

    assert frame.index[-1].date() == last


def test_history_starts_at_the_epoch(provider):
    frame = provider.fetch_daily_bars(["SPY"], date(1990, 1, 1), date(2000, 1, 31))["SPY"]

    assert frame.index[0].date() == EPOCH
    assert provider.fetch_daily_bars(["SPY"], date(1990, 1, 1), date(1999, 12, 31))["SPY"].empty


def test_empty_range_gives_empty_frames(provider):
    bars = provider.fetch_daily_bars(["SPY"], date(2024, 2, 1), date(2024, 1, 1))

    assert bars["SPY"].empty
    assert list(bars["SPY"].columns) == list(BAR_COLUMNS)
    weekend = provider.fetch_daily_bars(["SPY"], date(2024, 1, 6), date(2024, 1, 7))
    assert weekend["SPY"].empty


def test_invalid_symbols_are_left_out_and_duplicates_collapsed(provider):
    bars = provider.fetch_daily_bars(
        ["SPY", "not a symbol", "SPY", "^GSPC", "BRK.B"], date(2024, 1, 2), date(2024, 1, 5)
    )

    assert list(bars) == ["SPY", "^GSPC", "BRK.B"]


# --- Determinism --------------------------------------------------------------------


def test_same_date_same_bar_whatever_the_range(provider):
    full = provider.fetch_daily_bars(["SPY", "BND", "XYZ"], date(2015, 1, 1), date(2020, 12, 31))
    part = provider.fetch_daily_bars(["SPY", "BND", "XYZ"], date(2018, 3, 1), date(2018, 6, 30))

    for symbol, frame in part.items():
        assert len(frame) == 85  # March to June 2018 less Good Friday and Memorial Day
        pd.testing.assert_frame_equal(frame, full[symbol].loc["2018-03-01":"2018-06-30"], check_freq=False)


def test_incremental_fetches_agree_with_a_full_one(provider):
    full = provider.fetch_daily_bars(["VTI"], date(2019, 6, 1), date(2021, 6, 30))["VTI"]
    first = provider.fetch_daily_bars(["VTI"], date(2019, 6, 1), date(2020, 2, 14))["VTI"]
    rest = provider.fetch_daily_bars(["VTI"], date(2020, 2, 15), date(2021, 6, 30))["VTI"]

    pd.testing.assert_frame_equal(pd.concat([first, rest]), full, check_freq=False)


def test_a_symbol_does_not_depend_on_the_other_symbols_asked(provider):
    alone = provider.fetch_daily_bars(["QQQ"], date(2022, 1, 1), date(2022, 12, 31))["QQQ"]
    together = provider.fetch_daily_bars(["AGG", "QQQ", "ZZZZ", "GLD"], date(2022, 1, 1), date(2022, 12, 31))["QQQ"]

    pd.testing.assert_frame_equal(alone, together)


def test_same_bars_from_a_new_instance(provider):
    again = SampleProvider().fetch_daily_bars(["TLT"], date(2023, 1, 1), date(2023, 1, 31))["TLT"]

    pd.testing.assert_frame_equal(provider.fetch_daily_bars(["TLT"], date(2023, 1, 1), date(2023, 1, 31))["TLT"], again)


def test_same_bars_in_another_process_with_another_hash_seed(provider):
    # Python salts str hashes per process: a seed derived from hash() would differ here.
    script = (
        "import django; django.setup()\n"
        "from datetime import date\n"
        "from marketdata.providers.sample import SampleProvider\n"
        "bars = SampleProvider().fetch_daily_bars(['SPY', 'XYZ'], date(2021, 3, 1), date(2021, 3, 5))\n"
        "print(repr(bars['SPY']['close'].iloc[-1]), repr(bars['XYZ']['volume'].iloc[0]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "DJANGO_SETTINGS_MODULE": "rebalancer_site.settings"}
    root = Path(__file__).resolve().parents[2]

    output = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, check=True
    ).stdout

    bars = provider.fetch_daily_bars(["SPY", "XYZ"], date(2021, 3, 1), date(2021, 3, 5))
    assert output.split() == [repr(bars["SPY"]["close"].iloc[-1]), repr(bars["XYZ"]["volume"].iloc[0])]


# --- Prices and volumes -------------------------------------------------------------


def test_ohlc_is_consistent_and_positive(provider):
    bars = provider.fetch_daily_bars(["SPY", "BIL", "XYZ", "GLD"], date(2000, 1, 1), date(2024, 12, 31))

    for frame in bars.values():
        assert (frame[["open", "high", "low", "close"]] > 0).all().all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert frame["close"].equals(frame["adj_close"])
        assert frame.notna().all().all()


def test_volume_is_whole_positive_shares(provider):
    volume = provider.fetch_daily_bars(["SPY", "XYZ"], date(2020, 1, 1), date(2020, 12, 31))

    for frame in volume.values():
        assert (frame["volume"] > 0).all()
        assert (frame["volume"] == frame["volume"].round()).all()
        assert 5e4 < frame["volume"].median() < 1e8


def test_recent_price_levels_look_like_real_etfs(provider):
    symbols = [*EQUITY_ETFS, *BOND_ETFS, "XYZ", "ABC"]
    bars = provider.fetch_daily_bars(symbols, date(2025, 1, 2), date(2025, 1, 2))

    levels = [frame["close"].iloc[0] for frame in bars.values()]
    # Expected at [50, 300] on 2025-01-02; 25 years of random returns spread that by a few times at most.
    assert all(10 < price < 1500 for price in levels)
    assert len({round(price, 6) for price in levels}) == len(levels)
    bonds = [bars[s]["close"].iloc[0] for s in BOND_ETFS]
    assert all(30 < price < 450 for price in bonds)


# --- Statistics ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "vol_range", "drift_range"),
    [
        (EQUITY_ETFS, (0.14, 0.19), (0.0, 0.17)),
        (BOND_ETFS, (0.035, 0.065), (-0.01, 0.07)),
        (["BIL"], (0.003, 0.007), (0.015, 0.025)),
        (["GLD", "DBC"], (0.13, 0.17), (-0.06, 0.14)),
        (["VNQ"], (0.18, 0.22), (-0.10, 0.22)),
        (["AAPL", "MSFT", "XYZ"], (0.21, 0.29), (-0.10, 0.26)),
    ],
    ids=["equity", "bond", "cash", "commodity", "real_estate", "single_stock"],
)
def test_realised_volatility_and_drift_per_class_over_a_decade(decade, symbols, vol_range, drift_range):
    for symbol in symbols:
        assert vol_range[0] < annual_vol(decade[symbol]) < vol_range[1], symbol
        assert drift_range[0] < annual_drift(decade[symbol]) < drift_range[1], symbol


def test_average_equity_drift_beats_bonds_beats_cash(decade):
    equity = np.mean([annual_drift(decade[s]) for s in EQUITY_ETFS])
    bonds = np.mean([annual_drift(decade[s]) for s in BOND_ETFS])

    assert 0.06 < equity < 0.12
    assert 0.015 < bonds < 0.05
    assert equity > bonds > annual_drift(decade["BIL"]) - 0.01


def test_correlation_structure(decade):
    corr = decade.corr()

    equity_pairs = pairwise(corr, EQUITY_ETFS, EQUITY_ETFS)
    bond_pairs = pairwise(corr, BOND_ETFS, BOND_ETFS)
    cross_pairs = pairwise(corr, EQUITY_ETFS, BOND_ETFS)
    assert 0.7 < min(equity_pairs) <= max(equity_pairs) < 0.9
    assert 0.6 < min(bond_pairs) <= max(bond_pairs) < 0.8
    assert 0.0 < min(cross_pairs) <= max(cross_pairs) < 0.3
    # Single stocks follow the market, more loosely than funds do.
    assert 0.4 < corr.loc["XYZ", "SPY"] < 0.7
    assert abs(corr.loc["BIL", "SPY"]) < 0.1


def test_500_symbols_for_a_year_in_under_a_second(provider):
    symbols = [f"S{i:03d}" for i in range(500)]
    provider.fetch_daily_bars(["SPY"], date(2023, 1, 1), date(2023, 1, 31))  # the calendar loads once, untimed

    started = time.perf_counter()
    bars = provider.fetch_daily_bars(symbols, date(2023, 1, 1), date(2023, 12, 31))
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0, f"500 symbols took {elapsed:.2f} s"
    assert len(bars) == 500
    assert {len(frame) for frame in bars.values()} == {250}


# --- Reference table ------------------------------------------------------------------


def test_reference_table_covers_the_core_universe():
    core = {
        *("SPY", "QQQ", "VTI", "VXUS", "BND", "VOO", "AGG", "TLT", "IEF", "GLD", "VNQ", "EFA", "EEM", "IWM", "IVV"),
        *("VEA", "VWO", "BNDX", "SHY", "BIL", "LQD", "TIP", "HYG", "MUB", "DBC", "VTV", "VUG", "VB", "VO", "DIA"),
        "^GSPC",
    }

    assert core <= set(KNOWN_INSTRUMENTS)
    for symbol, info in KNOWN_INSTRUMENTS.items():
        assert info.symbol == symbol
        assert info.asset_class in ASSET_CLASSES
        assert info.region in REGIONS
        assert info.name


@pytest.mark.parametrize(
    ("symbol", "asset_class", "region"),
    [
        ("SPY", "equity", "US"),
        ("VXUS", "equity", "International"),
        ("EEM", "equity", "Emerging"),
        ("BND", "bond", "US"),
        ("SHY", "bond", "US"),
        ("BIL", "cash", "US"),
        ("GLD", "commodity", "Global"),
        ("DBC", "commodity", "Global"),
        ("VNQ", "real_estate", "US"),
    ],
)
def test_reference_asset_classes(symbol, asset_class, region):
    info = lookup(symbol)

    assert (info.asset_class, info.region, info.fractionable) == (asset_class, region, True)


def test_reference_index_and_unknown_symbols():
    gspc = lookup("^GSPC")
    assert (gspc.name, gspc.asset_class, gspc.fractionable) == ("S&P 500 index", "equity", False)
    assert lookup(" spy ") is KNOWN_INSTRUMENTS["SPY"]
    assert lookup("xyz") == InstrumentInfo("XYZ", "XYZ", "other", "", "US", fractionable=None)  # not known
    with pytest.raises(ValueError, match="asset_class"):
        InstrumentInfo("X", "X", "stocks", "", "US", fractionable=True)
