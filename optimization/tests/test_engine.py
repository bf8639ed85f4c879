"""The engine: fallback chain and plug-ins, glide-path blend, cached problems, optimize_many, hashes, frontier, JSON."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from optimization.core import problems, strategies
from optimization.core.constraints import AssetInfo, Constraints, parse_group_limit
from optimization.core.engine import (
    GlidePathSettings,
    OptimizationResult,
    OptimizerSettings,
    efficient_frontier,
    input_hash,
    optimize,
    optimize_many,
    run_chain,
)
from optimization.core.errors import ConfigurationError, InfeasibleConstraints, NoAssetBeatsRiskFree, OptimizationError
from optimization.core.estimators import EstimatorSettings, estimate
from optimization.core.glidepath import GlidePath
from optimization.core.strategies import StrategyInputs, StrategyParams

from .conftest import make_prices

TOLERANCE = 1e-8
NO_LOOKBACK = EstimatorSettings(lookback_days=None)

# -- plug-in strategies (named by dotted path below) ---------------------------------------------------------------


def overweight_first(inputs: StrategyInputs) -> np.ndarray:
    """A well-behaved plug-in: half in the first asset, the rest spread evenly (then made feasible)."""
    size = inputs.constraints.size
    raw = np.full(size, 0.5 / (size - 1)) if size > 1 else np.ones(1)
    raw[0] = 0.5 if size > 1 else 1.0
    return strategies.nearest_feasible(raw, inputs.constraints)


def raises_runtime_error(inputs: StrategyInputs) -> np.ndarray:
    raise RuntimeError("the plug-in's data feed is down")


def returns_weights_summing_to_two(inputs: StrategyInputs) -> np.ndarray:
    return np.full(inputs.constraints.size, 2.0 / inputs.constraints.size)


def returns_too_few_weights(inputs: StrategyInputs) -> np.ndarray:
    return np.ones(1)


def returns_nan(inputs: StrategyInputs) -> list[float]:
    return [math.nan] * inputs.constraints.size


HERE = __name__
PLUGIN = f"{HERE}.overweight_first"


def _settings(**kwargs) -> OptimizerSettings:
    kwargs.setdefault("estimators", NO_LOOKBACK)
    return OptimizerSettings(**kwargs)


@pytest.fixture
def losing_prices() -> pd.DataFrame:
    """Every expected return below the 2 % risk-free rate: max-Sharpe is undefined."""
    return make_prices(4, 200, seed=41, daily_means=[-0.0004, -0.0002, -0.0001, 0.0], daily_vols=0.01)


# -- fallback chain ---------------------------------------------------------------------------------------------------


def test_first_strategy_that_works_is_used_and_nothing_recorded(prices_5):
    result = optimize(prices_5, None, _settings())
    assert result.strategy == result.requested_strategy == "max_sharpe"
    assert result.fallbacks == ()


def test_configurable_fallbacks_record_each_failing_step(losing_prices):
    settings = _settings(
        strategy="max_sharpe",
        fallbacks=("efficient_return", "risk_parity", "equal_weight"),
        params=StrategyParams(target_return=0.5),
    )
    result = optimize(losing_prices, None, settings)
    assert result.strategy == "risk_parity"
    assert result.requested_strategy == "max_sharpe"
    assert [(step.strategy, step.error) for step in result.fallbacks] == [
        ("max_sharpe", "NoAssetBeatsRiskFree"),
        ("efficient_return", "InfeasibleConstraints"),
    ]
    assert result.fallbacks[0].reason.startswith("no portfolio beats the risk-free rate 2.00%")
    assert result.fallbacks[1].reason.startswith("target return 50.00% is above")
    expected = optimize(losing_prices, None, _settings(strategy="risk_parity", fallbacks=()))
    # Exponential-cone solves agree to about 1e-6 between a first (compiling) and a later solve.
    np.testing.assert_allclose(result.weights, expected.weights, atol=1e-5)


def test_every_step_failing_lists_every_reason(losing_prices):
    settings = _settings(
        strategy="max_sharpe",
        fallbacks=("efficient_return", f"{HERE}.raises_runtime_error"),
        params=StrategyParams(target_return=0.5),
    )
    with pytest.raises(OptimizationError) as caught:
        optimize(losing_prices, None, settings)
    message = str(caught.value)
    assert message.startswith("every strategy failed (max_sharpe: no portfolio beats the risk-free rate 2.00%")
    assert "; efficient_return: target return 50.00% is above" in message
    assert message.endswith(f"; {HERE}.raises_runtime_error: the plug-in's data feed is down)")


def test_the_error_type_of_the_last_failure_is_kept(losing_prices):
    with pytest.raises(NoAssetBeatsRiskFree, match=r"^every strategy failed \(max_sharpe: "):
        optimize(losing_prices, None, _settings(fallbacks=()))


def test_a_repeated_strategy_is_tried_once(losing_prices):
    settings = _settings(fallbacks=("max_sharpe", "min_volatility", "max_sharpe"))
    result = optimize(losing_prices, None, settings)
    assert result.strategy == "min_volatility"
    assert len(result.fallbacks) == 1


def test_plugin_strategy_by_dotted_path(prices_5):
    result = optimize(prices_5, None, _settings(strategy=PLUGIN, fallbacks=()))
    assert result.strategy == result.requested_strategy == PLUGIN
    np.testing.assert_allclose(result.weights, [0.5, 0.125, 0.125, 0.125, 0.125])
    capped = optimize(prices_5, None, _settings(strategy=PLUGIN, constraints=Constraints(max_weight=0.4)))
    assert capped.strategy == PLUGIN
    assert capped.weights.max() <= 0.4 + TOLERANCE


@pytest.mark.parametrize(
    ("plugin", "error", "reason"),
    [
        ("raises_runtime_error", "RuntimeError", "the plug-in's data feed is down"),
        (
            "returns_weights_summing_to_two",
            "OptimizationError",
            "returns_weights_summing_to_two returned weights that break the constraints: "
            "weights add up to 2.0000000000, not 1",
        ),
        ("returns_too_few_weights", "OptimizationError", "returns_too_few_weights returned 1 weights for 5 assets"),
        ("returns_nan", "OptimizationError", "returns_nan returned 5 weights for 5 assets or non-finite"),
    ],
)
def test_a_failing_plugin_falls_back(prices_5, plugin, error, reason):
    path = f"{HERE}.{plugin}"
    result = optimize(prices_5, None, _settings(strategy=path))
    assert result.strategy == "min_volatility"
    assert result.requested_strategy == path
    (step,) = result.fallbacks
    assert step.strategy == path
    assert step.error == error
    assert reason in step.reason
    assert abs(result.weights.sum() - 1) <= TOLERANCE


def test_a_plugin_path_that_does_not_import_falls_back(prices_5):
    result = optimize(prices_5, None, _settings(strategy="no_such_package.strategy"))
    assert result.strategy == "min_volatility"
    assert result.fallbacks[0].error == "ConfigurationError"
    assert "cannot import 'no_such_package.strategy'" in result.fallbacks[0].reason


def test_run_chain_labels_steps(losing_prices):
    estimates = estimate(losing_prices, NO_LOOKBACK)
    from optimization.core.constraints import compile_constraints

    compiled = compile_constraints(estimates.symbols, {}, Constraints())
    weights, used, failures = run_chain(
        ("max_sharpe", "equal_weight"), estimates, compiled, StrategyParams(), label="sleeve: "
    )
    assert used == "equal_weight"
    np.testing.assert_array_equal(weights, np.full(4, 0.25))
    assert failures[0].strategy == "sleeve: max_sharpe"
    assert failures[0].to_dict()["error"] == "NoAssetBeatsRiskFree"


# -- glide path ------------------------------------------------------------------------------------------------------

GLIDE_SYMBOLS = ["EQ1", "EQ2", "EQ3", "BND1", "BND2", "CASH"]
GLIDE_ASSETS = {
    "EQ1": AssetInfo("equity"),
    "EQ2": AssetInfo("equity"),
    "EQ3": AssetInfo("equity"),
    "BND1": AssetInfo("bond"),
    "BND2": AssetInfo("bond"),
    "CASH": AssetInfo("cash"),
}
DEFENSIVE = ["BND1", "BND2", "CASH"]


@pytest.fixture
def glide_prices() -> pd.DataFrame:
    return make_prices(
        6,
        260,
        seed=8,
        daily_means=[0.0008, 0.0009, 0.0007, 0.0002, 0.00025, 0.0001],
        daily_vols=[0.012, 0.015, 0.011, 0.004, 0.005, 0.001],
        symbols=GLIDE_SYMBOLS,
    )


@pytest.mark.parametrize("age", [25, 45, 55, 63.5, 70, 90])
@pytest.mark.parametrize("safe_bond_share", [0.8, 0.5])
def test_glide_path_bond_weight_follows_the_formula(glide_prices, age, safe_bond_share):
    glide = GlidePathSettings(age=age, safe_bond_share=safe_bond_share)
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=glide))
    aggressive, safe = GlidePath().get_allocation_blend(age)
    assert result.equity_share == aggressive
    weights = result.weights_dict()
    # The aggressive sleeve holds the growth assets only, so it contributes no bonds.
    bonds_in_aggressive = 0.0
    expected = aggressive * bonds_in_aggressive + safe * safe_bond_share
    assert sum(weights[s] for s in DEFENSIVE) == pytest.approx(expected, abs=1e-9)
    assert abs(sum(weights.values()) - 1) <= 1e-12
    assert min(weights.values()) >= 0
    assert result.strategy == "max_sharpe"
    assert result.notes[0] == f"glide path at age {age:g}: {aggressive:.1%} aggressive, {safe:.1%} safe"


def test_glide_path_aggressive_sleeve_is_the_strategy_over_growth_assets(glide_prices):
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=30, safe_bond_share=1.0)))
    growth_only = optimize(glide_prices[["EQ1", "EQ2", "EQ3"]], GLIDE_ASSETS, _settings())
    # Safe side is all bonds, so the equities are exactly the aggressive share x the plain max-Sharpe weights.
    share = GlidePath().equity_share(30)
    np.testing.assert_allclose(result.weights[:3], share * growth_only.weights, atol=1e-9)


def test_glide_path_with_custom_knots_and_retirement_age(glide_prices):
    glide = GlidePathSettings(age=50, knots=((40, 1.0), (60, 0.2)), retirement_age=70)
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=glide))
    # Retiring at 70 moves the curve 5 years right: age 50 reads the knots at 45, 1.0 - 0.25 x 0.8 = 0.8.
    assert result.equity_share == pytest.approx(0.8)
    assert sum(result.weights_dict()[s] for s in DEFENSIVE) == pytest.approx(0.2 * 0.8, abs=1e-9)


def test_glide_sleeves_carry_scaled_minimums_so_the_blend_needs_no_projection(glide_prices):
    constraints = Constraints(min_weight=0.05)
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=55), constraints=constraints))
    weights = result.weights
    assert abs(weights.sum() - 1) <= TOLERANCE
    assert weights.min() >= 0.05 - TOLERANCE
    assert not [note for note in result.notes if note.startswith("the straight blend broke")]


def test_glide_blend_breaking_a_group_limit_is_projected_with_a_note(glide_prices):
    constraints = Constraints(groups=(parse_group_limit("bonds >= 40%"),))
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=80), constraints=constraints))
    bonds = sum(w for s, w in result.weights_dict().items() if GLIDE_ASSETS[s].asset_class == "bond")
    assert bonds >= 0.40 - TOLERANCE
    assert abs(result.weights.sum() - 1) <= TOLERANCE
    projection_notes = [note for note in result.notes if note.startswith("the straight blend broke")]
    assert len(projection_notes) == 1
    assert "group bond >= 0.4" in projection_notes[0]
    assert "moved to the nearest allowed weights (total change" in projection_notes[0]


def test_glide_blend_respects_group_limits(glide_prices):
    constraints = Constraints(max_weight=0.5, groups=(parse_group_limit("cash <= 5%"),))
    result = optimize(glide_prices, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=80), constraints=constraints))
    weights = result.weights_dict()
    assert weights["CASH"] <= 0.05 + TOLERANCE
    assert max(weights.values()) <= 0.5 + TOLERANCE
    assert abs(sum(weights.values()) - 1) <= TOLERANCE


def test_glide_path_without_bonds(glide_prices):
    equities = glide_prices[["EQ1", "EQ2", "EQ3"]]
    result = optimize(equities, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=60)))
    assert "no bond or cash assets in the universe: the safe side is min-volatility over equities" in result.notes
    aggressive, safe = GlidePath().get_allocation_blend(60)
    plain = optimize(equities, None, _settings()).weights
    lowest = optimize(equities, None, _settings(strategy="min_volatility")).weights
    np.testing.assert_allclose(result.weights, aggressive * plain + safe * lowest, atol=1e-9)
    assert result.equity_share == aggressive


def test_glide_path_without_equities(glide_prices):
    defensive = glide_prices[DEFENSIVE]
    result = optimize(defensive, GLIDE_ASSETS, _settings(glide=GlidePathSettings(age=60)))
    assert "no growth assets in the universe: the aggressive side uses the bond and cash assets" in result.notes
    assert abs(result.weights.sum() - 1) <= TOLERANCE
    assert result.weights.min() >= 0


def test_glide_settings_are_validated():
    with pytest.raises(ConfigurationError, match="age: 130"):
        GlidePathSettings(age=130)
    with pytest.raises(ConfigurationError, match="safe_bond_share"):
        GlidePathSettings(age=40, safe_bond_share=1.5)


# -- parametrised problems and optimize_many --------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["max_sharpe", "min_volatility", "risk_parity", "max_quadratic_utility"])
def test_same_shape_with_new_data_does_not_recompile(strategy):
    first = make_prices(7, 150, seed=51)
    second = make_prices(7, 220, seed=52)
    result_first = optimize(first, None, _settings(strategy=strategy, fallbacks=()))
    compiled = problems.compile_count
    result_second = optimize(second, None, _settings(strategy=strategy, fallbacks=()))
    assert problems.compile_count == compiled
    assert not np.allclose(result_first.weights, result_second.weights)
    # The re-solved problem gives the same answer as a freshly compiled one would.
    problems.clear_cache()
    fresh = optimize(second, None, _settings(strategy=strategy, fallbacks=()))
    assert problems.compile_count > compiled
    np.testing.assert_allclose(result_second.weights, fresh.weights, atol=1e-9)


def test_a_new_shape_compiles_once():
    problems.clear_cache()
    before = problems.compile_count
    optimize(make_prices(9, 100, seed=53), None, _settings(strategy="min_volatility", fallbacks=()))
    assert problems.compile_count == before + 1
    optimize(make_prices(9, 100, seed=54), None, _settings(strategy="min_volatility", fallbacks=()))
    optimize(make_prices(9, 100, seed=55), None, _settings(strategy="min_volatility", fallbacks=()))
    assert problems.compile_count == before + 1


def _distinct_settings() -> list[OptimizerSettings]:
    return [
        _settings(strategy="max_sharpe", params=StrategyParams(risk_free_rate=0.0)),
        _settings(strategy="max_sharpe", params=StrategyParams(risk_free_rate=0.02)),
        _settings(strategy="min_volatility"),
        _settings(strategy="max_quadratic_utility", params=StrategyParams(risk_aversion=3.0)),
        _settings(strategy="min_volatility", constraints=Constraints(max_weight=0.3)),
    ]


def test_optimize_many_computes_each_distinct_settings_once(prices_5, monkeypatch):
    solves = []
    real_solve = problems.solve

    def counting_solve(kind, compiled, **data):
        solves.append(kind)
        return real_solve(kind, compiled, **data)

    monkeypatch.setattr(problems, "solve", counting_solve)
    rng = np.random.default_rng(61)
    picks = rng.integers(0, 5, size=200)
    # Fresh (equal, not identical) settings objects each time, as 200 portfolios would bring.
    settings_list = [_distinct_settings()[i] for i in picks]
    results = optimize_many(prices_5, None, settings_list)

    assert len(results) == 200
    # Five settings, and the capped one solved once more without its cap (to name what the cap moved).
    assert len(solves) == 6
    assert all(isinstance(result, OptimizationResult) for result in results)
    for i in range(5):
        same = [result for result, pick in zip(results, picks, strict=True) if pick == i]
        assert all(result is same[0] for result in same)
    assert len({id(result) for result in results}) == 5
    for i, settings in enumerate(_distinct_settings()):
        alone = optimize(prices_5, None, settings)
        shared = results[int(np.flatnonzero(picks == i)[0])]
        np.testing.assert_allclose(shared.weights, alone.weights, rtol=0, atol=1e-12)
        assert shared.input_hash == alone.input_hash


def test_optimize_many_returns_errors_in_place(prices_5):
    impossible = _settings(constraints=Constraints(min_weight=0.3))
    results = optimize_many(prices_5, None, [_settings(), impossible, _settings()])
    assert isinstance(results[0], OptimizationResult)
    assert isinstance(results[1], InfeasibleConstraints)
    assert str(results[1]).startswith("MIN_WEIGHT: 5 assets at least 30% each add up to 150%")
    assert results[2] is results[0]


# -- input hash -----------------------------------------------------------------------------------------------------


def test_input_hash_is_stable_and_sensitive(prices_5):
    assets = {"S00": AssetInfo(sector="Technology"), "S01": AssetInfo("bond")}
    settings = OptimizerSettings(estimators=EstimatorSettings(lookback_days=100))
    base = input_hash(prices_5, assets, settings)
    assert len(base) == 64
    assert (
        input_hash(prices_5.copy(), dict(assets), OptimizerSettings(estimators=EstimatorSettings(lookback_days=100)))
        == base
    )
    assert optimize(prices_5, assets, settings).input_hash == base

    changed_price = prices_5.copy()
    changed_price.iloc[-1, 2] *= 1.0001
    assert input_hash(changed_price, assets, settings) != base

    old_price = prices_5.copy()
    old_price.iloc[0, 2] *= 1.5  # outside the 100-day window: the optimization cannot see it
    assert input_hash(old_price, assets, settings) == base

    changed_setting = dataclasses.replace(settings, params=StrategyParams(risk_free_rate=0.03))
    assert input_hash(prices_5, assets, changed_setting) != base
    changed_constraint = dataclasses.replace(settings, constraints=Constraints(max_weight=0.5))
    assert input_hash(prices_5, assets, changed_constraint) != base
    changed_estimator = dataclasses.replace(settings, estimators=EstimatorSettings(lookback_days=100, cov_method="exp"))
    assert input_hash(prices_5, assets, changed_estimator) != base

    changed_asset = {**assets, "S00": AssetInfo(sector="Energy")}
    assert input_hash(prices_5, changed_asset, settings) != base
    rated = {**assets, "S03": AssetInfo(esg_score=7.0)}
    assert input_hash(prices_5, rated, settings) != base
    unrelated = {**assets, "NOT_IN_PRICES": AssetInfo("bond")}
    assert input_hash(prices_5, unrelated, settings) == base


def test_fingerprint_ignores_set_order():
    first = OptimizerSettings(constraints=Constraints(excluded=frozenset({"A", "B", "C"})))
    second = OptimizerSettings(constraints=Constraints(excluded=frozenset({"C", "B", "A"})))
    assert first.fingerprint() == second.fingerprint()
    overrides_a = Constraints(weight_overrides={"A": (0.1, None), "B": (None, 0.2)})
    overrides_b = Constraints(weight_overrides={"B": (None, 0.2), "A": (0.1, None)})
    assert (
        OptimizerSettings(constraints=overrides_a).fingerprint()
        == OptimizerSettings(constraints=overrides_b).fingerprint()
    )


def test_equal_settings_have_one_fingerprint_whatever_the_number_types(prices_5):
    ints = OptimizerSettings(
        constraints=Constraints(min_weight=0, max_weight=1), params=StrategyParams(risk_aversion=2)
    )
    floats = OptimizerSettings(
        constraints=Constraints(min_weight=0.0, max_weight=np.float64(1.0)), params=StrategyParams(risk_aversion=2.0)
    )
    assert ints == floats
    assert ints.fingerprint() == floats.fingerprint()
    assert input_hash(prices_5, {}, ints) == input_hash(prices_5, {}, floats)
    first, second = optimize_many(prices_5, None, [ints, floats])
    assert first is second


# -- efficient frontier --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_weight", [1.0, 0.3])
def test_efficient_frontier_is_ordered_and_within_bounds(max_weight):
    prices = make_prices(6, 300, seed=71, daily_means=[0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0012])
    settings = _settings(constraints=Constraints(max_weight=max_weight))
    frontier = efficient_frontier(prices, None, settings)
    assert len(frontier) >= 30
    returns = np.array([point.expected_return for point in frontier])
    volatilities = np.array([point.volatility for point in frontier])
    assert (np.diff(returns) > 0).all()
    assert (np.diff(volatilities) >= -1e-9).all()
    for point in frontier:
        assert point.sharpe == pytest.approx((point.expected_return - 0.02) / point.volatility)

    lowest = optimize(
        prices, None, _settings(strategy="min_volatility", constraints=Constraints(max_weight=max_weight))
    )
    assert frontier[0].volatility == pytest.approx(lowest.metrics.volatility, abs=1e-9)
    assert frontier[0].expected_return == pytest.approx(lowest.metrics.expected_return, abs=1e-9)
    # The top end is the highest return the bounds allow: fill the best assets up to the cap.
    mu = np.sort(estimate(prices, NO_LOOKBACK).mu)[::-1]
    best, room = 0.0, 1.0
    for value in mu:
        take = min(max_weight, room)
        best, room = best + take * value, room - take
    assert returns[-1] == pytest.approx(best, abs=1e-9)
    assert returns.min() >= lowest.metrics.expected_return - 1e-9
    # Every point is on the frontier: the efficient-return portfolio for its return has the same volatility.
    for point in frontier[1:-1:7]:
        on_frontier = optimize(
            prices,
            None,
            _settings(
                strategy="efficient_return",
                fallbacks=(),
                params=StrategyParams(target_return=point.expected_return),
                constraints=Constraints(max_weight=max_weight),
            ),
        )
        assert on_frontier.metrics.volatility == pytest.approx(point.volatility, abs=1e-8)


def test_efficient_frontier_points_setting():
    prices = make_prices(4, 200, seed=72)
    assert len(efficient_frontier(prices, None, _settings(), points=45)) == 45
    with pytest.raises(ConfigurationError, match="points"):
        efficient_frontier(prices, None, _settings(), points=1)


# -- results as JSON -------------------------------------------------------------------------------------------------


def test_to_dict_is_json_serialisable_with_the_cli_keys(losing_prices):
    result = optimize(losing_prices, None, OptimizerSettings())  # falls back, so fallbacks are not empty
    payload = json.loads(json.dumps(result.to_dict()))
    assert {"strategy", "weights", "performance", "fallbacks"} <= payload.keys()
    assert payload["strategy"] == "min_volatility"
    assert payload["weights"] == result.weights_dict()
    assert payload["performance"] == pytest.approx(
        {
            "expected_return": result.metrics.expected_return,
            "volatility": result.metrics.volatility,
            "sharpe": result.metrics.sharpe,
        }
    )
    assert set(payload["performance"]) == {"expected_return", "volatility", "sharpe"}
    assert payload["fallbacks"] == [
        {"strategy": "max_sharpe", "reason": result.fallbacks[0].reason, "error": "NoAssetBeatsRiskFree"}
    ]
    assert payload["as_of"] == str(losing_prices.index[-1].date())
    assert payload["input_hash"] == result.input_hash
    assert set(payload["metrics"]["risk_contributions"]) == set(losing_prices.columns)


def test_to_dict_with_glide_path_exclusions_and_nan(glide_prices):
    settings = _settings(glide=GlidePathSettings(age=50), constraints=Constraints(excluded=frozenset({"EQ3"})))
    payload = json.loads(json.dumps(optimize(glide_prices, GLIDE_ASSETS, settings).to_dict()))
    assert payload["weights"]["EQ3"] == 0.0
    assert payload["equity_share"] == GlidePath().equity_share(50)
    assert "excluded by settings: EQ3" in payload["notes"]
    assert set(payload["metrics"]["risk_contributions"]) == set(GLIDE_SYMBOLS) - {"EQ3"}

    flat = make_prices(1, 30, seed=73)
    flat.iloc[:, 0] = 100.0  # no volatility: Sharpe is undefined and becomes null, not NaN
    text = json.dumps(optimize(flat, None, _settings(strategy="min_volatility")).to_dict(), allow_nan=False)
    assert json.loads(text)["performance"]["sharpe"] is None
