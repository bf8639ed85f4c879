"""Fixtures for the optimization core: synthetic price frames with a fixed seed, and the real files."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PYPFOPT_FILE = "pyportfolioopt/pyportfolioopt__tests_resources__stock_prices.csv"
ETF_FILE = (
    "portopt_katrinajames_etfs_2016-2021/portopt_katrinajames_etfs_adj_close_wide_2016-04-28_2021-04-27.derived.csv"
)
SP500_FILE = "pooksoft_sp500_alphavantage/pooksoft_sp500_adjusted_close_wide_2014-01-02_2021-04-21.derived.csv"
SP500_COLUMNS = 60
SP500_ROWS = 500


def make_prices(
    n_assets: int,
    n_days: int = 260,
    seed: int = 0,
    *,
    daily_means: Sequence[float] | float | None = None,
    daily_vols: Sequence[float] | float | None = None,
    market_share: float = 0.5,
    symbols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Business-day prices whose daily simple returns have exactly the given means and volatilities.

    Shocks are one common factor (weight ``market_share``) plus independent noise, standardised per
    column, so the arithmetic mean of each asset's returns is exactly ``daily_means`` and its
    sample standard deviation exactly ``daily_vols``: tests can state which asset beats what.
    """
    rng = np.random.default_rng(seed)
    means = (
        rng.uniform(0.0002, 0.0012, n_assets)
        if daily_means is None
        else np.broadcast_to(np.asarray(daily_means, dtype=float), (n_assets,))
    )
    vols = (
        rng.uniform(0.006, 0.02, n_assets)
        if daily_vols is None
        else np.broadcast_to(np.asarray(daily_vols, dtype=float), (n_assets,))
    )
    returns_count = n_days - 1
    common = rng.standard_normal((returns_count, 1))
    shocks = market_share * common + (1 - market_share) * rng.standard_normal((returns_count, n_assets))
    shocks = (shocks - shocks.mean(axis=0)) / shocks.std(axis=0, ddof=1)
    returns = means + vols * shocks
    growth = np.vstack([np.ones((1, n_assets)), np.cumprod(1 + returns, axis=0)])
    names = list(symbols) if symbols is not None else [f"S{i:02d}" for i in range(n_assets)]
    index = pd.bdate_range("2021-01-04", periods=n_days, name="date")
    return pd.DataFrame(100.0 * growth, index=index, columns=names)


@pytest.fixture(scope="session")
def price_factory():
    """`make_prices` as a fixture (session-scoped, so hypothesis tests may use it)."""
    return make_prices


@pytest.fixture
def prices_5() -> pd.DataFrame:
    """Five assets, a year of days, every expected return well above a 2 % risk-free rate."""
    return make_prices(5, 260, seed=5, daily_means=[0.0004, 0.0006, 0.0008, 0.0005, 0.0009])


# -- real files ------------------------------------------------------------------------------------------------------


@functools.cache
def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0, parse_dates=True)


def read_sp500_subset(path: Path) -> pd.DataFrame:
    """The first 60 columns that are complete over the last 500 rows (a fast, still realistic universe)."""
    frame = _read(path).iloc[-SP500_ROWS:]
    return frame.loc[:, frame.notna().all()].iloc[:, :SP500_COLUMNS]


@pytest.fixture
def pypfopt_prices(shared_data: Path) -> pd.DataFrame:
    """PyPortfolioOpt's own test file: 20 stocks 1989-2018 with leading NaNs (late listings)."""
    return _read(shared_data / PYPFOPT_FILE).copy()


@pytest.fixture
def etf_prices(shared_data: Path) -> pd.DataFrame:
    """30 ETFs 2016-2021, complete."""
    return _read(shared_data / ETF_FILE).copy()


@pytest.fixture
def sp500_prices(shared_data: Path) -> pd.DataFrame:
    """60 complete S&P 500 stocks over the last 500 rows of 2014-2021."""
    return read_sp500_subset(shared_data / SP500_FILE).copy()


REAL_FILES = ("pypfopt", "etf", "sp500")


@pytest.fixture(params=REAL_FILES)
def real_prices(request, shared_data: Path) -> tuple[str, pd.DataFrame]:
    """(name, prices) for each real file in turn."""
    name = request.param
    if name == "pypfopt":
        frame = _read(shared_data / PYPFOPT_FILE)
    elif name == "etf":
        frame = _read(shared_data / ETF_FILE)
    else:
        frame = read_sp500_subset(shared_data / SP500_FILE)
    return name, frame.copy()
