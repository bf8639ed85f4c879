"""Strategies: properties on random universes, hand-checkable cases, edge cases, the registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.core import strategies
from optimization.core.constraints import Constraints, GroupLimit, compile_constraints
from optimization.core.engine import OptimizerSettings, optimize
from optimization.core.errors import ConfigurationError, InfeasibleConstraints, NoAssetBeatsRiskFree
from optimization.core.estimators import EstimatorSettings, estimate
from optimization.core.metrics import random_feasible_portfolios, risk_contributions
from optimization.core.strategies import STRATEGIES, StrategyInputs, StrategyParams, resolve_strategy

from .conftest import make_prices

ALL_STRATEGIES = tuple(STRATEGIES)
TOLERANCE = 1e-8
RISK_FREE = 0.02
RANDOM_PORTFOLIOS = 200


def _settings(strategy: str, constraints: Constraints | None = None, params: StrategyParams | None = None, **kwargs):
    return OptimizerSettings(
        strategy=strategy,
        fallbacks=(),
        estimators=kwargs.pop("estimators", EstimatorSettings(lookback_days=None)),
        params=params or StrategyParams(target_volatility=1.0, target_return=-1.0),
        constraints=constraints or Constraints(),
        **kwargs,
    )


def _inputs(prices: pd.DataFrame, constraints: Constraints | None = None, params: StrategyParams | None = None):
    estimates = estimate(prices, EstimatorSettings(lookback_days=None))
    compiled = compile_constraints(estimates.symbols, {}, constraints or Constraints())
    return StrategyInputs(estimates=estimates, constraints=compiled, params=params or StrategyParams())


def _assert_valid(weights: np.ndarray, lower: float = 0.0, upper: float = 1.0) -> None:
    assert np.isfinite(weights).all()
    assert abs(weights.sum() - 1) <= TOLERANCE
    assert weights.min() >= lower - TOLERANCE
    assert weights.max() <= upper + TOLERANCE


# -- properties on random universes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Universe:
    """A random but reproducible, always feasible problem: prices from a seed, bounds, a cap on the first assets."""

    size: int
    days: int
    seed: int
    low: float
    high: float
    count: int  # the capped group is the first ``count`` assets
    cap: float | None

    def prices(self) -> pd.DataFrame:
        return make_prices(self.size, self.days, seed=self.seed)

    def constraints(self) -> Constraints:
        symbols = ",".join(f"S{i:02d}" for i in range(self.count))
        groups = () if self.cap is None else (GroupLimit("symbols", symbols, max_weight=self.cap),)
        return Constraints(min_weight=self.low, max_weight=self.high, groups=groups)

    def random_portfolios(self, seed: int) -> np.ndarray:
        """Feasible random portfolios: the group's share drawn in its allowed range, each side spread at random."""
        rng = np.random.default_rng(seed)
        size, count, low, high = self.size, self.count, self.low, self.high
        if self.cap is None:
            return random_feasible_portfolios(np.full(size, low), np.full(size, high), RANDOM_PORTFOLIOS, rng)
        others = size - count
        least = max(count * low, 1 - others * high)
        most = min(self.cap, count * high, 1 - others * low)
        portfolios = np.empty((RANDOM_PORTFOLIOS, size))
        for row, share in enumerate(rng.uniform(least, most, RANDOM_PORTFOLIOS)):
            for columns, part in ((slice(0, count), share), (slice(count, size), 1 - share)):
                width = columns.stop - columns.start
                if part <= 0:
                    portfolios[row, columns] = 0.0
                    continue
                spread = random_feasible_portfolios(
                    np.full(width, min(low / part, 1 / width)), np.full(width, min(high / part, 1.0)), 1, rng
                )
                portfolios[row, columns] = part * spread[0]
        return portfolios

    def constraints_broken_by(self, portfolios: np.ndarray) -> list[str]:
        compiled = compile_constraints([f"S{i:02d}" for i in range(self.size)], {}, self.constraints())
        return [problem for weights in portfolios for problem in compiled.violations(weights, tolerance=1e-12)]


@st.composite
def universes(draw) -> Universe:
    size = draw(st.integers(min_value=2, max_value=8))
    low = draw(st.floats(min_value=0.0, max_value=0.8 / size))
    high = draw(st.floats(min_value=min(1.0, 1.2 / size), max_value=1.0))
    count = draw(st.integers(min_value=1, max_value=size - 1))
    # The cap must leave room for the members' minimums and let the others' maximums fill the rest.
    least = max(count * low, 1 - (size - count) * high) + 0.02
    cap = draw(st.none() | st.floats(min_value=least, max_value=1.0)) if least < 1 else None
    return Universe(
        size=size,
        days=draw(st.integers(min_value=60, max_value=300)),
        seed=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        low=low,
        high=high,
        count=count,
        cap=cap,
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(universe=universes())
def test_every_strategy_gives_weights_within_bounds_and_caps(universe):
    prices, constraints = universe.prices(), universe.constraints()
    low, high, count, cap = universe.low, universe.high, universe.count, universe.cap
    lowest = optimize(prices, None, _settings("min_volatility", constraints))
    highest_return = float(np.max(lowest.metrics.expected_return))
    reachable = estimate(prices, EstimatorSettings(lookback_days=None)).mu
    params = StrategyParams(
        target_volatility=lowest.metrics.volatility * 1.2,
        target_return=(highest_return + float(np.max(reachable))) / 2 if cap is None else highest_return,
        risk_aversion=2.0,
    )
    for name in ALL_STRATEGIES:
        try:
            result = optimize(prices, None, _settings(name, constraints, params))
        except NoAssetBeatsRiskFree:
            assert name == "max_sharpe"
            continue
        except InfeasibleConstraints as error:
            # Only a target beyond what the bounds allow may fail, and it must say so.
            assert name == "efficient_return", error
            assert "the highest expected return the constraints allow" in str(error)
            continue
        weights = result.weights
        assert result.strategy == name
        _assert_valid(weights, low, high)
        if cap is not None:
            assert weights[:count].sum() <= cap + TOLERANCE, name


@settings(max_examples=40, deadline=None, derandomize=True)
@given(universe=universes(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_min_volatility_beats_every_random_feasible_portfolio(universe, seed):
    prices = universe.prices()
    result = optimize(prices, None, _settings("min_volatility", universe.constraints()))
    cov = estimate(prices, EstimatorSettings(lookback_days=None)).cov
    portfolios = universe.random_portfolios(seed)
    assert not universe.constraints_broken_by(portfolios)
    volatilities = np.sqrt(np.einsum("ij,jk,ik->i", portfolios, cov, portfolios))
    assert result.metrics.volatility <= volatilities.min() + 1e-9


@settings(max_examples=40, deadline=None, derandomize=True)
@given(universe=universes(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_max_sharpe_beats_every_random_feasible_portfolio(universe, seed):
    prices = universe.prices()
    estimates = estimate(prices, EstimatorSettings(lookback_days=None))
    portfolios = universe.random_portfolios(seed)
    assert not universe.constraints_broken_by(portfolios)
    returns = portfolios @ estimates.mu
    try:
        result = optimize(prices, None, _settings("max_sharpe", universe.constraints()))
    except NoAssetBeatsRiskFree:
        # Only when no feasible portfolio earns more than the risk-free rate.
        assert returns.max() <= RISK_FREE + 1e-9
        return
    assert float(np.max(estimates.mu)) > RISK_FREE
    volatilities = np.sqrt(np.einsum("ij,jk,ik->i", portfolios, estimates.cov, portfolios))
    sharpes = (returns - RISK_FREE) / volatilities
    assert result.metrics.sharpe >= sharpes.max() - 1e-9


# -- hand-checkable answers -----------------------------------------------------------------------------------------


def test_min_volatility_of_two_uncorrelated_assets_is_inverse_variance():
    prices = make_prices(2, 400, seed=21, daily_vols=[0.01, 0.02], market_share=0.0)
    inputs = _inputs(prices)
    cov = inputs.estimates.cov
    inverse = np.linalg.solve(cov, np.ones(2))
    np.testing.assert_allclose(strategies.min_volatility(inputs), inverse / inverse.sum(), atol=1e-6)


def test_max_sharpe_without_binding_bounds_is_the_tangency_portfolio():
    prices = make_prices(4, 400, seed=22, daily_means=[0.0006, 0.0007, 0.0008, 0.0009], market_share=0.2)
    inputs = _inputs(prices)
    excess = inputs.estimates.mu - RISK_FREE
    tangency = np.linalg.solve(inputs.estimates.cov, excess)
    assert (tangency > 0).all()  # long-only bounds do not bind
    np.testing.assert_allclose(strategies.max_sharpe(inputs), tangency / tangency.sum(), atol=1e-6)


def test_max_quadratic_utility_without_binding_bounds_is_closed_form():
    prices = make_prices(3, 400, seed=23, daily_means=[0.0004, 0.0005, 0.0006], market_share=0.2)
    aversion = 20.0
    inputs = _inputs(prices, params=StrategyParams(risk_aversion=aversion))
    mu, cov = inputs.estimates.mu, inputs.estimates.cov
    # maximise w'mu - d/2 w'Sw subject to 1'w = 1: w = S^-1 (mu - lambda 1) / d with lambda fixing the sum.
    inverse_mu, inverse_ones = np.linalg.solve(cov, mu), np.linalg.solve(cov, np.ones(3))
    lam = (inverse_mu.sum() - aversion) / inverse_ones.sum()
    expected = (inverse_mu - lam * inverse_ones) / aversion
    assert (expected > 0).all()
    np.testing.assert_allclose(strategies.max_quadratic_utility(inputs), expected, atol=1e-6)


def test_risk_parity_equalises_risk_contributions():
    prices = make_prices(5, 300, seed=24)
    inputs = _inputs(prices)
    weights = strategies.risk_parity(inputs)
    _assert_valid(weights)
    # Exponential-cone interior point: contributions equal to about 1e-6, weights to about 1e-5.
    np.testing.assert_allclose(risk_contributions(weights, inputs.estimates.cov), np.full(5, 0.2), atol=1e-5)


def test_inverse_volatility_is_proportional_to_one_over_volatility():
    prices = make_prices(4, 300, seed=25, daily_vols=[0.01, 0.02, 0.03, 0.04])
    weights = strategies.inverse_volatility(_inputs(prices))
    inverse = 1 / np.sqrt(np.diag(_inputs(prices).estimates.cov))
    np.testing.assert_allclose(weights, inverse / inverse.sum(), rtol=1e-12)
    # Under a cap the answer moves to the nearest allowed weights.
    capped = strategies.inverse_volatility(_inputs(prices, Constraints(max_weight=0.4)))
    _assert_valid(capped, upper=0.4)
    assert capped[0] == pytest.approx(0.4, abs=1e-8)


def test_equal_weight_is_one_over_n_and_projects_onto_overrides():
    prices = make_prices(4, 100, seed=26)
    np.testing.assert_array_equal(strategies.equal_weight(_inputs(prices)), np.full(4, 0.25))
    moved = strategies.equal_weight(_inputs(prices, Constraints(weight_overrides={"S00": (0.4, None)})))
    np.testing.assert_allclose(moved, [0.4, 0.2, 0.2, 0.2], atol=1e-8)


def test_efficient_risk_and_return_meet_their_targets(prices_5):
    lowest = optimize(prices_5, None, _settings("min_volatility"))
    estimates = estimate(prices_5, EstimatorSettings(lookback_days=None))
    riskiest = float(np.sqrt(estimates.cov[np.argmax(estimates.mu)][np.argmax(estimates.mu)]))  # the max-return asset
    target_volatility = (lowest.metrics.volatility + riskiest) / 2
    risk = optimize(
        prices_5, None, _settings("efficient_risk", params=StrategyParams(target_volatility=target_volatility))
    )
    assert risk.metrics.volatility == pytest.approx(target_volatility, abs=1e-6)
    assert risk.metrics.expected_return > lowest.metrics.expected_return
    target_return = (lowest.metrics.expected_return + float(estimates.mu.max())) / 2
    markowitz = optimize(
        prices_5, None, _settings("efficient_return", params=StrategyParams(target_return=target_return))
    )
    assert markowitz.metrics.expected_return == pytest.approx(target_return, abs=1e-7)
    assert markowitz.metrics.volatility > lowest.metrics.volatility


def test_efficient_risk_and_return_need_their_targets():
    inputs = _inputs(make_prices(3, 100, seed=27))
    with pytest.raises(ConfigurationError, match=r"^target_volatility"):
        strategies.efficient_risk(inputs)
    with pytest.raises(ConfigurationError, match=r"^target_return"):
        strategies.efficient_return(inputs)
    with pytest.raises(ConfigurationError, match=r"^target_volatility"):
        OptimizerSettings(strategy="efficient_risk")
    with pytest.raises(ConfigurationError, match=r"^target_return"):
        OptimizerSettings(strategy="efficient_return")


# -- edge cases ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_one_asset_gets_everything(strategy):
    prices = make_prices(1, 120, seed=31, daily_means=0.0008)
    result = optimize(prices, None, _settings(strategy))
    assert result.strategy == strategy
    np.testing.assert_array_equal(result.weights, [1.0])


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
@pytest.mark.parametrize("leverage", [1.0, 2.0])
def test_two_perfectly_correlated_assets(strategy, leverage):
    base = make_prices(1, 200, seed=32, daily_means=0.0008)
    returns = base.iloc[:, 0].pct_change().fillna(0.0)
    prices = pd.DataFrame({"A": base.iloc[:, 0], "B": 50 * np.cumprod(1 + leverage * returns)}, index=base.index)
    assert np.corrcoef(prices.pct_change().dropna().to_numpy().T)[0, 1] == pytest.approx(1.0)
    result = optimize(prices, None, _settings(strategy))
    assert result.strategy == strategy
    _assert_valid(result.weights)


@pytest.mark.parametrize("strategy", ["max_sharpe", "min_volatility"])
def test_singular_covariance_more_assets_than_days(strategy):
    prices = make_prices(30, 16, seed=33, daily_means=0.002)  # 15 returns for 30 assets
    estimators = EstimatorSettings(lookback_days=None, min_observations=10)
    assert np.linalg.matrix_rank(estimate(prices, estimators).cov) <= 15
    result = optimize(prices, None, _settings(strategy, estimators=estimators))
    assert result.strategy == strategy
    _assert_valid(result.weights)
    assert result.metrics.volatility >= 0


def test_every_return_below_the_risk_free_rate():
    prices = make_prices(
        4, 200, seed=34, daily_means=[-0.0004, -0.0002, 0.0, 0.00005], daily_vols=0.01, symbols=list("ABCD")
    )
    inputs = _inputs(prices)
    assert inputs.estimates.mu.max() < RISK_FREE
    with pytest.raises(NoAssetBeatsRiskFree) as caught:
        strategies.max_sharpe(inputs)
    best = inputs.estimates.mu.max()
    assert str(caught.value) == (
        f"no portfolio beats the risk-free rate 2.00%: the best expected return the constraints allow is {best:.2%} "
        f"(best asset D at {best:.2%}); max-Sharpe is undefined"
    )

    result = optimize(prices, None, OptimizerSettings(estimators=EstimatorSettings(lookback_days=None)))
    assert result.strategy == "min_volatility"
    assert result.requested_strategy == "max_sharpe"
    assert len(result.fallbacks) == 1
    assert result.fallbacks[0].strategy == "max_sharpe"
    assert result.fallbacks[0].error == "NoAssetBeatsRiskFree"
    assert result.fallbacks[0].reason == str(caught.value)
    expected = optimize(prices, None, _settings("min_volatility"))
    np.testing.assert_allclose(result.weights, expected.weights, atol=1e-12)


def test_an_asset_beats_rf_but_the_bounds_keep_every_portfolio_below_it():
    prices = make_prices(3, 200, seed=35, daily_means=[0.0008, -0.0004, -0.0004], symbols=list("ABC"))
    # Best allowed: 10 % in A, 45 % in each of the losers.
    inputs = _inputs(prices, Constraints(max_weight=0.45, weight_overrides={"A": (None, 0.1)}))
    assert inputs.estimates.mu[0] > RISK_FREE
    with pytest.raises(NoAssetBeatsRiskFree, match=r"best asset A at"):
        strategies.max_sharpe(inputs)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_bounds_that_allow_only_equal_weights(strategy):
    size = 7
    prices = make_prices(size, 200, seed=36, daily_means=0.0008)
    constraints = Constraints(min_weight=1 / size, max_weight=1 / size)
    params = StrategyParams(target_volatility=1.0, target_return=0.0)
    result = optimize(prices, None, _settings(strategy, constraints, params))
    assert result.strategy == strategy
    np.testing.assert_array_equal(result.weights, np.full(size, 1 / size))


# -- registry and parameters ------------------------------------------------------------------------------------------


def double_first(inputs: StrategyInputs) -> np.ndarray:  # a plug-in for the resolver tests
    return strategies.equal_weight(inputs)


NOT_CALLABLE = 42


def test_resolve_strategy_by_name_and_dotted_path():
    for name in ALL_STRATEGIES:
        assert resolve_strategy(name) is getattr(strategies, name)
    assert resolve_strategy(f"{__name__}.double_first") is double_first


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sharpest", "'sharpest' is not one of max_sharpe"),
        ("no_such_module_xyz.strategy", "cannot import 'no_such_module_xyz.strategy'"),
        (f"{__name__}.missing", f"cannot import '{__name__}.missing'"),
        (f"{__name__}.NOT_CALLABLE", "is not callable"),
    ],
)
def test_resolve_strategy_errors_name_the_problem(name, message):
    with pytest.raises(ConfigurationError, match=f"^strategy: .*{message}"):
        resolve_strategy(name)


def test_optimizer_settings_reject_unknown_strategy_names():
    with pytest.raises(ConfigurationError, match="'sharpest' is not one of"):
        OptimizerSettings(strategy="sharpest")
    with pytest.raises(ConfigurationError, match="'nope' is not one of"):
        OptimizerSettings(fallbacks=("nope",))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"risk_free_rate": 1.5}, "risk_free_rate"),
        ({"risk_free_rate": float("nan")}, "risk_free_rate"),
        ({"target_volatility": 0.0}, "target_volatility"),
        ({"target_volatility": -0.1}, "target_volatility"),
        ({"target_return": float("inf")}, "target_return"),
        ({"risk_aversion": 0.0}, "risk_aversion"),
    ],
)
def test_strategy_params_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigurationError, match=f"^{field}:"):
        StrategyParams(**kwargs)
