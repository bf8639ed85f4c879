"""Our strategies against PyPortfolioOpt's EfficientFrontier on the real price files.

Both sides start from the same prices: PyPortfolioOpt estimates with its own functions (equal to ours
to 1e-16, see test_estimators), we go through `optimize()`. Both weight vectors are then scored with
the same mu and covariance, and (expected return, volatility, Sharpe) must agree to 1e-6.

The reference is solved with Clarabel at tight tolerances (PyPortfolioOpt's default OSQP stops at
about 1e-5 and may leave bounds broken by 3e-6); when that is not 'optimal' it is retried with
Clarabel's defaults, and a case where even that is inaccurate or breaks the bounds is skipped.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from optimization.core.constraints import Constraints
from optimization.core.engine import OptimizerSettings, optimize
from optimization.core.estimators import EstimatorSettings, estimate
from optimization.core.strategies import StrategyParams

pytest.importorskip("pypfopt")
from pypfopt import EfficientFrontier, expected_returns, risk_models

pytestmark = pytest.mark.realdata

RISK_FREE = 0.02
RISK_AVERSION = 3.0
TOLERANCE = 1e-6
REFERENCE_SOLVES = (
    {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12},
    {},  # Clarabel's defaults
)
STRATEGY_NAMES = ("max_sharpe", "min_volatility", "efficient_risk", "efficient_return", "max_quadratic_utility")
BOUNDS = {
    "pypfopt": ((0.0, 1.0), (0.02, 0.2), (0.0, 0.3)),
    "etf": ((0.0, 1.0), (0.02, 0.2), (0.0, 0.3)),
    # 60 assets x 0.02 = 1.2 > 1: the S&P subset gets a 1 % floor instead.
    "sp500": ((0.0, 1.0), (0.01, 0.2), (0.0, 0.3)),
}


def _reference_inputs(prices: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return expected_returns.mean_historical_return(prices), risk_models.sample_cov(prices)


def _reference_weights(mu, cov, bounds, solve) -> np.ndarray:
    """PyPortfolioOpt's weights, or a skip saying why there is no trustworthy reference."""
    statuses = []
    for options in REFERENCE_SOLVES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frontier = EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL", solver_options=options)
            solve(frontier)
        status = frontier._opt.status
        statuses.append(status)
        if status == "optimal":
            break
    else:
        pytest.skip(f"PyPortfolioOpt's solver returned {' then '.join(statuses)}: no reliable reference")
    weights = np.asarray(frontier.weights, dtype=float)
    broken = max(bounds[0] - weights.min(), weights.max() - bounds[1], abs(weights.sum() - 1))
    if broken > 1e-8:
        pytest.skip(f"PyPortfolioOpt's weights break the bounds {bounds} by {broken:.1e}: no reliable reference")
    return weights


def _performance(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    expected = float(weights @ mu)
    volatility = float(np.sqrt(weights @ cov @ weights))
    return np.array([expected, volatility, (expected - RISK_FREE) / volatility])


def _targets(mu: np.ndarray, cov: np.ndarray, bounds, lowest: np.ndarray) -> tuple[float, float]:
    """Targets halfway between the minimum-volatility portfolio and the highest-return one the bounds allow."""
    low, high = bounds
    top = np.full(len(mu), low)
    room = 1 - top.sum()
    for i in np.argsort(-mu):
        take = min(high - low, room)
        top[i] += take
        room -= take
    low_return, low_volatility = _performance(lowest, mu, cov)[:2]
    top_return, top_volatility = _performance(top, mu, cov)[:2]
    return (low_volatility + top_volatility) / 2, (low_return + top_return) / 2


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize("bounds_index", [0, 1, 2], ids=["long_only", "floor_and_cap", "cap"])
def test_strategy_matches_pypfopt(real_prices, strategy, bounds_index):
    name, prices = real_prices
    bounds = BOUNDS[name][bounds_index]
    mu, cov = _reference_inputs(prices)
    ours_estimates = estimate(prices, EstimatorSettings(lookback_days=None))
    np.testing.assert_allclose(ours_estimates.mu, mu.to_numpy(), rtol=0, atol=1e-12)
    mu_values, cov_values = ours_estimates.mu, ours_estimates.cov

    lowest = _reference_weights(mu, cov, bounds, lambda frontier: frontier.min_volatility())
    target_volatility, target_return = _targets(mu_values, cov_values, bounds, lowest)
    calls = {
        "max_sharpe": lambda frontier: frontier.max_sharpe(risk_free_rate=RISK_FREE),
        "min_volatility": lambda frontier: frontier.min_volatility(),
        "efficient_risk": lambda frontier: frontier.efficient_risk(target_volatility),
        "efficient_return": lambda frontier: frontier.efficient_return(target_return),
        "max_quadratic_utility": lambda frontier: frontier.max_quadratic_utility(risk_aversion=RISK_AVERSION),
    }
    reference = lowest if strategy == "min_volatility" else _reference_weights(mu, cov, bounds, calls[strategy])

    settings = OptimizerSettings(
        strategy=strategy,
        fallbacks=(),
        estimators=EstimatorSettings(lookback_days=None),
        params=StrategyParams(
            risk_free_rate=RISK_FREE,
            target_volatility=target_volatility,
            target_return=target_return,
            risk_aversion=RISK_AVERSION,
        ),
        constraints=Constraints(min_weight=bounds[0], max_weight=bounds[1]),
    )
    result = optimize(prices, None, settings)
    assert result.strategy == strategy
    assert result.weights.min() >= bounds[0] - 1e-8
    assert result.weights.max() <= bounds[1] + 1e-8

    ours = np.array([result.performance[key] for key in ("expected_return", "volatility", "sharpe")])
    np.testing.assert_allclose(ours, _performance(result.weights, mu_values, cov_values), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        ours,
        _performance(reference, mu_values, cov_values),
        rtol=0,
        atol=TOLERANCE,
        err_msg=f"{strategy} on {name} with bounds {bounds}: (return, volatility, Sharpe)",
    )
