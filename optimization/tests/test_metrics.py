"""Portfolio metrics against hand-computed numbers, and random feasible portfolios."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from optimization.core.metrics import (
    PortfolioMetrics,
    effective_assets,
    portfolio_metrics,
    random_feasible_portfolios,
    risk_contributions,
)

# Two assets: volatilities 20 % and 10 %, correlation 0.5, so the covariance is 0.5 x 0.2 x 0.1 = 0.01.
TWO_COV = np.array([[0.04, 0.01], [0.01, 0.01]])
TWO_MU = np.array([0.08, 0.03])
TWO_WEIGHTS = np.array([0.6, 0.4])
RISK_FREE = 0.02
# -0.10, -0.09, ..., 0.89: a hundred evenly spaced daily returns.
LADDER = np.round(np.arange(100) * 0.01 - 0.10, 10)


def metrics_of(weights, returns, *, mu=None, cov=None, risk_free_rate=RISK_FREE) -> PortfolioMetrics:
    """Metrics with a neutral model view when the test is about the historical one."""
    assets = len(weights)
    mu = np.zeros(assets) if mu is None else mu
    cov = np.eye(assets) * 0.04 if cov is None else cov
    return portfolio_metrics(weights, mu, cov, returns, risk_free_rate=risk_free_rate)


# --- model view: hand-computed two-asset example --------------------------------------------------------------------


def test_two_asset_example_by_hand():
    metrics = portfolio_metrics(TWO_WEIGHTS, TWO_MU, TWO_COV, np.zeros((10, 2)), risk_free_rate=RISK_FREE)

    # w' S w = 0.36 x 0.04 + 0.16 x 0.01 + 2 x 0.6 x 0.4 x 0.01 = 0.0144 + 0.0016 + 0.0048
    variance = 0.0208
    assert metrics.expected_return == pytest.approx(0.6 * 0.08 + 0.4 * 0.03)  # 0.06
    assert metrics.volatility == pytest.approx(math.sqrt(variance))  # 0.1442
    assert metrics.sharpe == pytest.approx((0.06 - 0.02) / math.sqrt(variance))  # 0.2774
    # S w = (0.6 x 0.04 + 0.4 x 0.01, 0.6 x 0.01 + 0.4 x 0.01) = (0.028, 0.010)
    assert metrics.risk_contributions == pytest.approx((0.6 * 0.028 / variance, 0.4 * 0.010 / variance))
    assert metrics.risk_contributions == pytest.approx((0.8077, 0.1923), abs=1e-4)
    # Weighted average volatility 0.6 x 0.2 + 0.4 x 0.1 = 0.16 over the portfolio's.
    assert metrics.diversification_ratio == pytest.approx(0.16 / math.sqrt(variance))
    assert metrics.effective_assets == pytest.approx(1 / (0.36 + 0.16))


def test_zero_variance_portfolio_has_no_sharpe_and_no_risk_shares():
    metrics = portfolio_metrics([0.5, 0.5], [0.03, 0.03], np.zeros((2, 2)), np.zeros((5, 2)), risk_free_rate=0.01)
    assert metrics.volatility == 0.0
    assert math.isnan(metrics.sharpe)
    assert math.isnan(metrics.diversification_ratio)
    assert metrics.risk_contributions == (0.0, 0.0)


def test_a_perfect_hedge_has_zero_variance():
    # Two perfectly correlated assets held long and short in equal size cancel out.
    cov = np.full((2, 2), 0.04)
    metrics = portfolio_metrics([1.0, -1.0], [0.05, 0.05], cov, np.zeros((5, 2)), risk_free_rate=0.0)
    assert metrics.volatility == 0.0
    assert metrics.risk_contributions == (0.0, 0.0)


def test_risk_contributions_of_uncorrelated_equal_risk_assets_are_equal():
    np.testing.assert_allclose(risk_contributions([0.25] * 4, np.eye(4) * 0.09), [0.25] * 4)


def test_risk_contributions_can_be_negative_for_a_hedge():
    cov = np.array([[0.04, -0.015], [-0.015, 0.01]])
    shares = risk_contributions([0.8, 0.2], cov)
    assert shares[1] < 0 < 1 < shares[0]
    assert shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("assets", [1, 2, 3, 7, 50])
def test_effective_assets_of_equal_weights_is_their_count(assets):
    assert effective_assets(np.full(assets, 1 / assets)) == pytest.approx(assets)


def test_effective_assets_of_a_single_holding_is_one_and_of_nothing_is_nan():
    assert effective_assets([0.0, 1.0, 0.0]) == 1.0
    assert math.isnan(effective_assets([0.0, 0.0]))


# --- historical view -------------------------------------------------------------------------------------------------


def test_var_and_cvar_of_a_known_series():
    shuffled = np.random.default_rng(7).permutation(LADDER)  # order does not matter to VaR and CVaR
    metrics = metrics_of([1.0], shuffled.reshape(-1, 1))

    # numpy's linear quantile: position 0.05 x 99 = 4.95, between the 5th (-0.06) and 6th (-0.05) smallest.
    assert metrics.var_95_1d == pytest.approx(-(-0.06 + 0.95 * 0.01))  # 0.0505
    # The returns at or below -0.0505 are -0.10 ... -0.06, averaging -0.08.
    assert metrics.cvar_95_1d == pytest.approx(0.08)
    assert metrics.var_95_annual == pytest.approx(0.0505 * math.sqrt(252))
    assert metrics.cvar_95_annual == pytest.approx(0.08 * math.sqrt(252))
    assert metrics.observations == 100


def test_var_is_computed_on_the_portfolio_series_not_per_asset():
    # The two assets' losses fall on different days: held half and half, no day loses more than 5 %.
    returns = np.zeros((100, 2))
    returns[:10, 0] = -0.10
    returns[10:20, 1] = -0.10
    metrics = metrics_of([0.5, 0.5], returns)
    assert metrics.var_95_1d == pytest.approx(0.05)
    assert metrics.cvar_95_1d == pytest.approx(0.05)


def test_annual_scaling_uses_the_frequency():
    metrics = portfolio_metrics([1.0], [0.0], [[0.04]], LADDER.reshape(-1, 1), risk_free_rate=0.0, frequency=52)
    assert metrics.var_95_annual == pytest.approx(metrics.var_95_1d * math.sqrt(52))


@pytest.mark.parametrize(
    ("daily", "drawdown"),
    [
        ([0.10, -0.20, 0.05], 0.20),  # 1 -> 1.1 -> 0.88 -> 0.924: 0.88 / 1.1 - 1
        ([-0.10, 0.05], 0.10),  # the starting wealth is the first peak
        ([0.10, -0.10, 0.30, -0.50], 0.50),  # the later, higher peak counts
        ([0.01, 0.02, 0.0], 0.0),  # never below the peak
        ([-0.5, -0.5, 1.0], 0.75),  # 1 -> 0.5 -> 0.25 -> 0.5
    ],
)
def test_max_drawdown_of_known_paths(daily, drawdown):
    metrics = metrics_of([1.0], np.array(daily).reshape(-1, 1))
    assert metrics.max_drawdown == pytest.approx(drawdown)


def test_nan_in_an_asset_not_held_is_ignored():
    returns = np.column_stack([LADDER, np.full(100, 0.01), np.full(100, 0.02)])
    returns[:60, 2] = np.nan  # a young asset the portfolio does not hold
    metrics = metrics_of([1.0, 0.0, 0.0], returns)
    assert metrics.observations == 100
    assert metrics.var_95_1d == pytest.approx(0.0505)


def test_days_without_a_held_assets_value_are_dropped():
    returns = np.column_stack([LADDER, np.zeros(100)])
    returns[95:, 0] = np.nan  # the five best days of the first asset are missing
    returns[0, 1] = np.nan  # and the second asset's first day
    metrics = metrics_of([0.5, 0.5], returns)

    kept = 0.5 * LADDER[1:95]  # -0.045 ... 0.42, 94 days
    assert metrics.observations == 94
    assert metrics.var_95_1d == pytest.approx(-np.quantile(kept, 0.05))
    assert metrics.cvar_95_1d == pytest.approx(-kept[kept <= np.quantile(kept, 0.05)].mean())


def test_returns_may_be_a_data_frame():
    frame = pd.DataFrame({"SPY": LADDER, "BND": np.nan})
    metrics = portfolio_metrics(
        [1.0, 0.0], [0.07, 0.03], pd.DataFrame(np.eye(2) * 0.04), frame, risk_free_rate=RISK_FREE
    )
    assert metrics.observations == 100
    assert metrics.var_95_1d == pytest.approx(0.0505)


@pytest.mark.parametrize("complete_days", [0, 1])
def test_too_few_days_leave_the_historical_measures_undefined(complete_days):
    returns = np.full((10, 2), np.nan)
    returns[:complete_days] = 0.01
    metrics = metrics_of([0.5, 0.5], returns)
    assert metrics.observations == complete_days
    for value in (metrics.var_95_1d, metrics.cvar_95_1d, metrics.var_95_annual, metrics.cvar_95_annual):
        assert math.isnan(value)
    assert math.isnan(metrics.max_drawdown)
    assert metrics.volatility == pytest.approx(math.sqrt(0.02))  # the model view does not need history


def test_no_returns_at_all():
    metrics = metrics_of([0.5, 0.5], np.empty((0, 2)))
    assert metrics.observations == 0
    assert math.isnan(metrics.var_95_1d)


# --- validation ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"weights": np.ones((3, 1))}, r"^weights: expected a 1-D array, got shape \(3, 1\)$"),
        ({"mu": np.zeros(2)}, r"^mu: expected shape \(3,\), got \(2,\)$"),
        ({"cov": np.eye(2)}, r"^cov: expected shape \(3, 3\), got \(2, 2\)$"),
        ({"returns": np.zeros((10, 2))}, r"^returns: expected shape \(T, 3\), got \(10, 2\)$"),
        ({"returns": np.zeros(10)}, r"^returns: expected shape \(T, 3\), got \(10,\)$"),
        ({"weights": [0.5, np.nan, 0.5]}, r"^weights: contains NaN or infinite values$"),
        ({"mu": [0.1, np.inf, 0.1]}, r"^mu: contains NaN or infinite values$"),
        ({"cov": np.where(np.eye(3) > 0, np.nan, 0.0)}, r"^cov: contains NaN or infinite values$"),
        ({"cov": -np.eye(3)}, r"^cov: negative variance on the diagonal$"),
        (
            # Correlation 2: the long-short portfolio's "variance" is 0.25 + 0.25 - 2 x 0.25 x 2 = -0.5.
            {"cov": np.array([[1.0, 2, 0], [2, 1, 0], [0, 0, 1]]), "weights": np.array([0.5, -0.5, 0.0])},
            r"^cov: not positive semi-definite \(portfolio variance -0\.5\)$",
        ),
        ({"returns": np.full((10, 3), np.inf)}, r"^returns: contains infinite values"),
        ({"risk_free_rate": math.nan}, r"^risk_free_rate: nan is not a finite number$"),
        ({"frequency": 0}, r"^frequency: 0 is not a positive number"),
    ],
)
def test_bad_inputs_are_rejected_naming_the_argument(arguments, message):
    valid = {
        "weights": np.array([0.5, 0.5, 0.0]),
        "mu": np.zeros(3),
        "cov": np.eye(3),
        "returns": np.zeros((10, 3)),
        "risk_free_rate": 0.0,
    }
    with pytest.raises(ValueError, match=message):
        portfolio_metrics(**(valid | arguments))


# --- to_dict ---------------------------------------------------------------------------------------------------------


def test_to_dict_is_json_ready_with_nan_as_none():
    metrics = metrics_of([0.6, 0.4], np.zeros((1, 2)), mu=TWO_MU, cov=TWO_COV)
    result = metrics.to_dict()

    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["var_95_1d"] is None
    assert result["max_drawdown"] is None
    assert result["observations"] == 1
    assert result["volatility"] == pytest.approx(math.sqrt(0.0208))
    assert result["risk_contributions"] == pytest.approx([0.8077, 0.1923], abs=1e-4)
    assert set(result) == {
        "expected_return",
        "volatility",
        "sharpe",
        "var_95_1d",
        "cvar_95_1d",
        "var_95_annual",
        "cvar_95_annual",
        "max_drawdown",
        "diversification_ratio",
        "effective_assets",
        "risk_contributions",
        "observations",
    }


def test_to_dict_uses_plain_python_numbers():
    result = metrics_of([np.float32(1.0)], LADDER.reshape(-1, 1)).to_dict(["SPY"])
    for key, value in result.items():
        if key == "risk_contributions":
            assert all(type(share) is float for share in value.values())
        else:
            assert type(value) is (int if key == "observations" else float), key


def test_to_dict_keys_risk_contributions_by_symbol():
    metrics = metrics_of([0.6, 0.4], np.zeros((5, 2)), mu=TWO_MU, cov=TWO_COV)
    result = metrics.to_dict(["VTI", "BND"])
    assert list(result["risk_contributions"]) == ["VTI", "BND"]
    assert result["risk_contributions"]["VTI"] == pytest.approx(0.8077, abs=1e-4)
    json.dumps(result, allow_nan=False)


def test_to_dict_rejects_the_wrong_number_of_symbols():
    metrics = metrics_of([0.6, 0.4], np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"^symbols: expected 2 symbols, got 1$"):
        metrics.to_dict(["VTI"])


# --- properties of the model view ------------------------------------------------------------------------------------

UNIT = st.floats(min_value=-1, max_value=1, allow_nan=False)


@st.composite
def covariance_and_long_only_weights(draw) -> tuple[np.ndarray, np.ndarray]:
    """A random PSD covariance (factor loadings times their transpose, plus a small ridge) and long-only weights."""
    assets = draw(st.integers(min_value=1, max_value=8))
    factors = draw(st.integers(min_value=1, max_value=4))
    loadings = np.array(draw(st.lists(UNIT, min_size=assets * factors, max_size=assets * factors)))
    loadings = loadings.reshape(assets, factors)
    ridge = draw(st.floats(min_value=1e-3, max_value=0.1))
    cov = loadings @ loadings.T + ridge * np.eye(assets)
    raw = np.array(draw(st.lists(st.floats(min_value=0, max_value=1), min_size=assets, max_size=assets)))
    assume(raw.sum() > 1e-3)
    return cov, raw / raw.sum()


@settings(max_examples=200, deadline=None)
@given(case=covariance_and_long_only_weights())
def test_risk_contributions_sum_to_one(case):
    cov, weights = case
    shares = risk_contributions(weights, cov)
    assert shares.sum() == pytest.approx(1.0, abs=1e-9)
    assert (shares[weights == 0] == 0).all()


@settings(max_examples=200, deadline=None)
@given(case=covariance_and_long_only_weights())
def test_model_view_is_consistent(case):
    cov, weights = case
    metrics = portfolio_metrics(weights, np.zeros(len(weights)), cov, np.zeros((3, len(weights))), risk_free_rate=0.0)
    assert metrics.volatility**2 == pytest.approx(weights @ cov @ weights)
    assert sum(metrics.risk_contributions) == pytest.approx(1.0, abs=1e-9)
    # Long-only: between one asset and all of them, and diversification never makes risk exceed the average.
    assert 1.0 - 1e-12 <= metrics.effective_assets <= len(weights) * (1 + 1e-12)
    assert metrics.diversification_ratio >= 1.0 - 1e-9


# --- random feasible portfolios --------------------------------------------------------------------------------------


@st.composite
def feasible_bounds(draw) -> tuple[np.ndarray, np.ndarray]:
    """Per-asset bounds with 0 <= lower <= upper and sum(lower) <= 1 <= sum(upper), tight cases included."""
    assets = draw(st.integers(min_value=1, max_value=15))
    fractions = st.floats(min_value=0, max_value=1)
    raw_lower = np.array(draw(st.lists(fractions, min_size=assets, max_size=assets)))
    lower_total = draw(st.sampled_from([0.0, 1.0]) | fractions)
    lower = raw_lower / raw_lower.sum() * lower_total if raw_lower.sum() > 0 else raw_lower
    gaps = np.array(draw(st.lists(fractions, min_size=assets, max_size=assets)))
    needed = 1.0 - lower.sum()
    if gaps.sum() < needed:
        gaps = gaps / gaps.sum() * needed if gaps.sum() > 0 else np.full(assets, needed / assets)
    upper = lower + gaps
    assume(lower.sum() <= 1.0 <= upper.sum())
    return lower, upper


@settings(max_examples=200, deadline=None)
@given(bounds=feasible_bounds(), count=st.integers(min_value=1, max_value=20), seed=st.integers(0, 2**32 - 1))
def test_random_feasible_portfolios_sum_to_one_within_bounds(bounds, count, seed):
    lower, upper = bounds
    portfolios = random_feasible_portfolios(lower, upper, count, np.random.default_rng(seed))
    assert portfolios.shape == (count, len(lower))
    np.testing.assert_allclose(portfolios.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (portfolios >= lower - 1e-12).all()
    assert (portfolios <= upper + 1e-12).all()


def test_random_feasible_portfolios_spread_over_the_simplex():
    portfolios = random_feasible_portfolios(np.zeros(4), np.ones(4), 2000, np.random.default_rng(1))
    assert len(np.unique(portfolios.round(6), axis=0)) == 2000
    np.testing.assert_allclose(portfolios.mean(axis=0), 0.25, atol=0.02)  # Dirichlet(1, 1, 1, 1) is symmetric
    assert portfolios.max() > 0.8  # near-concentrated portfolios occur too


def test_random_feasible_portfolios_respect_tight_bounds():
    lower, upper = np.array([0.1, 0.2, 0.0]), np.array([0.3, 0.5, 0.3])  # upper sums to 1.1: little room
    portfolios = random_feasible_portfolios(lower, upper, 500, np.random.default_rng(2))
    assert (portfolios >= lower).all()
    assert (portfolios <= upper).all()
    np.testing.assert_allclose(portfolios.sum(axis=1), 1.0, atol=1e-12)


def test_random_feasible_portfolios_with_a_single_feasible_point():
    lower = np.array([0.1, 0.2, 0.7])  # sums to 1.0000000000000002: rounding, still feasible
    portfolios = random_feasible_portfolios(lower, lower + 0.1, 3, np.random.default_rng(3))
    np.testing.assert_allclose(portfolios, np.tile(lower, (3, 1)), atol=1e-15)
    upper = np.array([0.5, 0.3, 0.2])  # upper sums to exactly 1: only the upper bounds fit
    np.testing.assert_allclose(random_feasible_portfolios(np.zeros(3), upper, 3, np.random.default_rng(3)), [upper] * 3)


def test_random_feasible_portfolios_are_reproducible_from_the_generator():
    first = random_feasible_portfolios(np.zeros(5), np.full(5, 0.4), 10, np.random.default_rng(42))
    second = random_feasible_portfolios(np.zeros(5), np.full(5, 0.4), 10, np.random.default_rng(42))
    np.testing.assert_array_equal(first, second)
    assert random_feasible_portfolios(np.zeros(5), np.ones(5), 0, np.random.default_rng(0)).shape == (0, 5)


@pytest.mark.parametrize(
    ("lower", "upper", "message"),
    [
        ([0.6, 0.6], [1.0, 1.0], r"^lower, upper: no portfolio sums to 1 \(lower sums to 1\.2, upper to 2\)$"),
        ([0.0, 0.0], [0.4, 0.4], r"^lower, upper: no portfolio sums to 1 \(lower sums to 0, upper to 0\.8\)$"),
        ([0.5, 0.0], [0.4, 1.0], r"^lower, upper: expected 0 <= lower <= upper for every asset$"),
        ([-0.1, 0.0], [1.0, 1.0], r"^lower, upper: expected 0 <= lower <= upper for every asset$"),
        ([0.0, 0.0], [1.0], r"^upper: expected shape \(2,\), got \(1,\)$"),
        ([], [], r"^lower: expected a non-empty 1-D array, got shape \(0,\)$"),
        ([0.0, np.nan], [1.0, 1.0], r"^lower: contains NaN or infinite values$"),
    ],
)
def test_random_feasible_portfolios_reject_bad_bounds(lower, upper, message):
    with pytest.raises(ValueError, match=message):
        random_feasible_portfolios(lower, upper, 5, np.random.default_rng(0))
