"""Return and risk estimators: PyPortfolioOpt's numbers on real files, windows, missing data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from optimization.core import estimators
from optimization.core.errors import ConfigurationError, InsufficientData
from optimization.core.estimators import EstimatorSettings, estimate

from .conftest import make_prices

TOLERANCE = 1e-10


def _reference(name: str, prices: pd.DataFrame) -> np.ndarray:
    """PyPortfolioOpt's figure for ``prices``; its PSD-repair and 'not a dataframe' warnings stay local."""
    expected_returns = pytest.importorskip("pypfopt.expected_returns")
    risk_models = pytest.importorskip("pypfopt.risk_models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "mean":
            value = expected_returns.mean_historical_return(prices, compounding=False)
        elif name == "compounded":
            value = expected_returns.mean_historical_return(prices, compounding=True)
        elif name == "ema":
            value = expected_returns.ema_historical_return(prices)
        elif name == "sample":
            value = risk_models.sample_cov(prices)
        elif name == "ledoit_wolf":
            value = risk_models.CovarianceShrinkage(prices).ledoit_wolf()
        else:
            value = risk_models.exp_cov(prices)
    return np.asarray(value, dtype=float)


OURS = {
    "mean": estimators.mean_return,
    "compounded": estimators.compounded_return,
    "ema": estimators.ema_return,
    "sample": estimators.sample_cov,
    "ledoit_wolf": estimators.ledoit_wolf_cov,
    "exp": estimators.exp_cov,
}


@pytest.mark.realdata
@pytest.mark.parametrize("method", list(OURS))
def test_estimator_matches_pypfopt_on_real_files(real_prices, method):
    name, prices = real_prices
    ours = np.asarray(OURS[method](estimators.daily_returns(prices)), dtype=float)
    theirs = _reference(method, prices)
    assert ours.shape == theirs.shape
    assert np.isfinite(ours).all(), name
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE, err_msg=f"{method} on {name}")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("returns_method", "cov_method", "reference_mu", "reference_cov"),
    [
        ("mean", "sample", "mean", "sample"),
        ("compounded", "ledoit_wolf", "compounded", "ledoit_wolf"),
        ("ema", "exp", "ema", "exp"),
    ],
)
def test_estimate_matches_pypfopt_with_leading_nans(
    pypfopt_prices, returns_method, cov_method, reference_mu, reference_cov
):
    # FB, BABA, GM, MA, ... start years after 1989: each asset uses its own history.
    assert pypfopt_prices.iloc[0].isna().any()
    settings = EstimatorSettings(returns_method=returns_method, cov_method=cov_method, lookback_days=None)
    result = estimate(pypfopt_prices, settings)
    assert result.symbols == tuple(pypfopt_prices.columns)
    np.testing.assert_allclose(result.mu, _reference(reference_mu, pypfopt_prices), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(result.cov, _reference(reference_cov, pypfopt_prices), rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(result.observations, pypfopt_prices.pct_change(fill_method=None).count())
    assert result.last_date == pd.Timestamp("2018-04-11")


@pytest.mark.realdata
def test_lookback_window_on_real_file_matches_pypfopt_on_the_last_rows(etf_prices):
    result = estimate(etf_prices, EstimatorSettings(lookback_days=252))
    tail = etf_prices.iloc[-253:]
    assert result.returns.shape == (252, 30)
    np.testing.assert_allclose(result.mu, _reference("compounded", tail), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(result.cov, _reference("sample", tail), rtol=0, atol=TOLERANCE)


# -- synthetic data ----------------------------------------------------------------------------------------------------


def test_lookback_days_takes_the_last_n_returns():
    prices = make_prices(4, 400, seed=1)
    result = estimate(prices, EstimatorSettings(lookback_days=100))
    expected_returns_frame = prices.pct_change(fill_method=None).iloc[-100:]
    assert result.returns.shape == (100, 4)
    np.testing.assert_allclose(result.returns, expected_returns_frame.to_numpy(), rtol=0, atol=0)
    np.testing.assert_array_equal(result.observations, [100] * 4)
    same = estimate(prices.iloc[-101:], EstimatorSettings(lookback_days=None))
    np.testing.assert_allclose(result.mu, same.mu, rtol=0, atol=0)
    np.testing.assert_allclose(result.cov, same.cov, rtol=0, atol=0)


def test_lookback_longer_than_history_keeps_everything():
    prices = make_prices(3, 50, seed=2)
    assert estimate(prices, EstimatorSettings(lookback_days=1000)).returns.shape == (49, 3)


def test_unsorted_dates_are_sorted_first():
    prices = make_prices(3, 80, seed=3)
    shuffled = prices.sample(frac=1.0, random_state=7)
    np.testing.assert_allclose(estimate(shuffled).mu, estimate(prices).mu, rtol=0, atol=0)


def test_mean_return_is_exact_on_known_returns():
    returns = pd.DataFrame({"A": [0.01, -0.01, 0.02, 0.0], "B": [0.0, 0.0, 0.0, 0.004]})
    np.testing.assert_allclose(estimators.mean_return(returns), [0.005 * 252, 0.001 * 252])
    # CAGR: (1.01 x 0.99 x 1.02 x 1.0) ** (252 / 4) - 1
    np.testing.assert_allclose(estimators.compounded_return(returns)["A"], (1.01 * 0.99 * 1.02) ** 63 - 1)


def test_sample_cov_fast_path_equals_pandas():
    returns = estimators.daily_returns(make_prices(6, 120, seed=4))
    np.testing.assert_allclose(estimators.sample_cov(returns), returns.cov().to_numpy() * 252, rtol=1e-13, atol=1e-16)


def test_exp_cov_equals_pairwise_ewm_with_gaps():
    prices = make_prices(3, 150, seed=5)
    prices.iloc[:40, 1] = np.nan  # a late listing
    prices.iloc[-10:, 2] = np.nan  # a delisting
    returns = estimators.daily_returns(prices)
    expected = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            x, y = returns.iloc[:, i], returns.iloc[:, j]
            expected[i, j] = ((x - x.mean()) * (y - y.mean())).ewm(span=30).mean().iloc[-1] * 252
    np.testing.assert_allclose(estimators.exp_cov(returns, span_days=30), expected, rtol=1e-12, atol=1e-16)


def test_ledoit_wolf_matches_scikit_learn():
    covariance = pytest.importorskip("sklearn.covariance")
    returns = estimators.daily_returns(make_prices(8, 60, seed=6))
    shrunk, _ = covariance.ledoit_wolf(returns.to_numpy())
    np.testing.assert_allclose(estimators.ledoit_wolf_cov(returns), shrunk * 252, rtol=1e-12, atol=1e-16)


def test_ledoit_wolf_of_one_asset_is_its_variance():
    returns = estimators.daily_returns(make_prices(1, 60, seed=6))
    np.testing.assert_allclose(estimators.ledoit_wolf_cov(returns), [[returns.iloc[:, 0].var(ddof=0) * 252]])


def test_make_psd_repairs_an_indefinite_matrix_and_keeps_a_psd_one():
    indefinite = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    assert np.linalg.eigvalsh(indefinite).min() < 0
    repaired = estimators.make_psd(indefinite)
    assert np.linalg.eigvalsh(repaired).min() > -1e-12
    np.testing.assert_allclose(repaired, repaired.T)
    good = np.array([[0.04, 0.01], [0.01, 0.09]])
    assert estimators.make_psd(good) is good


def test_pairwise_covariance_of_different_histories_is_repaired_to_psd():
    prices = make_prices(4, 200, seed=7)
    prices.iloc[:80, 0] = np.nan
    prices.iloc[150:, 1] = np.nan
    prices.iloc[:60, 2] = np.nan
    result = estimate(prices, EstimatorSettings(lookback_days=None))
    assert np.linalg.eigvalsh(result.cov).min() > -1e-12


def test_nan_columns_with_shorter_histories_work():
    prices = make_prices(4, 260, seed=8)
    prices.iloc[:200, 2] = np.nan  # listed recently: 59 returns
    prices.iloc[:30, 3] = np.nan
    result = estimate(prices, EstimatorSettings(lookback_days=None))
    np.testing.assert_array_equal(result.observations, [259, 259, 59, 229])
    assert np.isfinite(result.mu).all() and np.isfinite(result.cov).all()
    # The young asset's mean uses only its own days.
    young = prices.iloc[:, 2].dropna().pct_change().dropna()
    assert result.mu[2] == pytest.approx((1 + young).prod() ** (252 / 59) - 1, rel=1e-12)


def test_asset_with_five_observations_is_insufficient_and_named():
    prices = make_prices(3, 100, seed=9, symbols=["AAA", "NEWCO", "CCC"])
    prices.iloc[:-6, 1] = np.nan  # six prices, five returns
    with pytest.raises(InsufficientData) as caught:
        estimate(prices, EstimatorSettings(lookback_days=None))
    assert "NEWCO (5)" in str(caught.value)
    assert "AAA" not in str(caught.value)
    assert "at least 20" in str(caught.value)


def test_all_nan_column_is_insufficient_and_named():
    prices = make_prices(3, 100, seed=10, symbols=["AAA", "BBB", "GHOST"])
    prices["GHOST"] = np.nan
    with pytest.raises(InsufficientData, match=r"no prices in the lookback window for GHOST"):
        estimate(prices)


def test_asset_outside_the_lookback_window_is_named():
    prices = make_prices(3, 300, seed=11, symbols=["AAA", "OLD", "CCC"])
    prices.iloc[-100:, 1] = np.nan  # delisted 100 days ago
    with pytest.raises(InsufficientData, match="OLD"):
        estimate(prices, EstimatorSettings(lookback_days=50))


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_non_positive_price_is_rejected_with_the_column(bad):
    prices = make_prices(3, 50, seed=12, symbols=["AAA", "BAD", "CCC"])
    prices.iloc[10, 1] = bad
    with pytest.raises(InsufficientData, match="BAD: prices must be positive"):
        estimate(prices)


def test_no_columns_and_a_single_row_are_insufficient():
    with pytest.raises(InsufficientData, match="no assets"):
        estimate(pd.DataFrame(index=pd.bdate_range("2021-01-04", periods=5)))
    with pytest.raises(InsufficientData, match="fewer than two price rows"):
        estimate(make_prices(2, 30).iloc[:1])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"returns_method": "median"}, "returns_method"),
        ({"cov_method": "robust"}, "cov_method"),
        ({"lookback_days": 1}, "lookback_days"),
        ({"min_observations": 1}, "min_observations"),
        ({"ema_cov_span_days": 0}, "ema_cov_span_days"),
        ({"frequency": 0}, "frequency"),
    ],
)
def test_estimator_settings_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigurationError, match=f"^{field}:"):
        EstimatorSettings(**kwargs)


def test_lookback_window_rejects_zero():
    with pytest.raises(ConfigurationError, match="lookback_days"):
        estimators.lookback_window(make_prices(2, 10), 0)


def test_risk_factor_reproduces_the_covariance_even_when_singular():
    result = estimate(make_prices(30, 16, seed=13), EstimatorSettings(lookback_days=None, min_observations=5))
    assert np.linalg.matrix_rank(result.cov) < 30
    factor = result.risk_factor()
    np.testing.assert_allclose(factor.T @ factor, result.cov, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(factor, np.triu(factor))
    assert result.risk_factor() is factor  # computed once


def test_subset_keeps_the_order_given():
    result = estimate(make_prices(4, 60, seed=14))
    part = result.subset(("S03", "S01"))
    assert part.symbols == ("S03", "S01")
    np.testing.assert_array_equal(part.mu, result.mu[[3, 1]])
    np.testing.assert_array_equal(part.cov, result.cov[np.ix_([3, 1], [3, 1])])
    np.testing.assert_array_equal(part.returns, result.returns[:, [3, 1]])


def test_assets_whose_histories_never_overlap_are_named() -> None:
    days = pd.bdate_range("2024-01-01", periods=80)
    rng = np.random.default_rng(3)
    prices = pd.DataFrame(
        100 * np.cumprod(1 + rng.normal(0, 0.01, (80, 3)), axis=0), index=days, columns=["OLD", "NEW", "ALL"]
    )
    prices.loc[days[40] :, "OLD"] = np.nan
    prices.loc[: days[40], "NEW"] = np.nan
    with pytest.raises(InsufficientData, match="price histories do not overlap: OLD and NEW"):
        estimate(prices, EstimatorSettings(lookback_days=None))
