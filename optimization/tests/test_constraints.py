"""Constraints: group-limit parsing, compilation, feasibility explanations, and every strategy obeying them."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.core.constraints import (
    AssetInfo,
    Constraints,
    GroupLimit,
    compile_constraints,
    parse_group_limit,
)
from optimization.core.engine import OptimizerSettings, optimize
from optimization.core.errors import ConfigurationError, InfeasibleConstraints
from optimization.core.feasibility import check_feasibility
from optimization.core.strategies import STRATEGIES, StrategyParams

from .conftest import make_prices

# Every built-in strategy, with the parameters the targeted ones need (loose enough to be reachable).
ALL_STRATEGIES = tuple(STRATEGIES)
LOOSE_PARAMS = StrategyParams(target_volatility=0.5, target_return=0.0)
TOLERANCE = 1e-8


def _explanation(symbols, assets, constraints: Constraints) -> str:
    with pytest.raises(InfeasibleConstraints) as caught:
        check_feasibility(compile_constraints(symbols, assets, constraints))
    assert caught.value.explanation == str(caught.value)
    return caught.value.explanation


def _symbols(count: int) -> list[str]:
    return [f"S{i:02d}" for i in range(count)]


# -- parsing group limits -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("technology <= 30%", GroupLimit("sector", "technology", None, 0.3)),
        ("bonds >= 0.2", GroupLimit("asset_class", "bond", 0.2, None)),
        ("sector:Energy <= 10%", GroupLimit("sector", "Energy", None, 0.1)),
        ("asset_class:bond = 40%", GroupLimit("asset_class", "bond", 0.4, 0.4)),
        ("  Health Care<=15 %  ", GroupLimit("sector", "Health Care", None, 0.15)),
        ("class:equities >= 50%", GroupLimit("asset_class", "equity", 0.5, None)),
        ("Real Estate <= .1", GroupLimit("asset_class", "real_estate", None, 0.1)),
        ("symbols:AAPL,MSFT <= 25%", GroupLimit("symbols", "AAPL,MSFT", None, 0.25)),
    ],
)
def test_parse_group_limit_forms(text, expected):
    assert parse_group_limit(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected NAME <= PERCENT"),
        ("technology", "expected NAME <= PERCENT"),
        ("technology < 30%", "expected NAME <= PERCENT"),
        ("technology <= lots", "expected NAME <= PERCENT"),
        ("<= 30%", "expected NAME <= PERCENT"),
        ("asset_class:spaceships <= 10%", "'spaceships' is not an asset class"),
        ("technology <= 130%", "outside [0, 1]"),
    ],
)
def test_parse_group_limit_rejects_garbage(text, message):
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_group_limit(text)


def test_group_limit_validation_and_label():
    assert parse_group_limit("technology <= 30%").label == "technology <= 30%"
    assert parse_group_limit("asset_class:bond = 40%").label == "bond >= 40% and bond <= 40%"
    assert GroupLimit("sector", "Energy", max_weight=0.125).label == "Energy <= 0.125"
    with pytest.raises(ConfigurationError, match="give a minimum, a maximum or both"):
        GroupLimit("sector", "Energy")
    with pytest.raises(ConfigurationError, match=r"minimum 0\.5 is above maximum 0\.2"):
        GroupLimit("sector", "Energy", 0.5, 0.2)
    with pytest.raises(ConfigurationError, match="not sector, asset_class or symbols"):
        GroupLimit("industry", "Banks", max_weight=0.2)


def test_group_members_match_case_insensitively():
    assets = {"A": AssetInfo(sector="Technology"), "B": AssetInfo(sector="energy"), "C": AssetInfo("bond")}
    assert parse_group_limit("TECHNOLOGY <= 30%").members(["A", "B", "C", "D"], assets) == [0]
    assert parse_group_limit("bonds >= 10%").members(["A", "B", "C", "D"], assets) == [2]
    # Unknown assets are equities without a sector.
    assert parse_group_limit("equities >= 10%").members(["A", "B", "C", "D"], assets) == [0, 1, 3]
    assert parse_group_limit("symbols: a , c <= 50%").members(["A", "B", "C", "D"], assets) == [0, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_weight": -0.1}, "min_weight: -0.1 is negative"),
        ({"max_weight": 0.0}, r"max_weight: 0.0 is outside \(0, 1\]"),
        ({"max_weight": 1.5}, r"max_weight: 1.5 is outside \(0, 1\]"),
        ({"min_weight": 0.3, "max_weight": 0.2}, "min_weight: 0.3 is above max_weight 0.2"),
        ({"l2_gamma": -1.0}, "l2_gamma"),
        ({"esg_mode": "strict"}, "esg_mode"),
        ({"min_weight": float("nan")}, "min_weight: must be a finite number"),
        ({"weight_overrides": {"AAPL": (0.5, 0.2)}}, r"weight_overrides\[AAPL\]: minimum 0.5 is above maximum 0.2"),
        ({"weight_overrides": {"AAPL": (None, 1.2)}}, r"weight_overrides\[AAPL\]: bound 1.2"),
    ],
)
def test_constraints_reject_bad_settings(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        Constraints(**kwargs)


# -- compiling -------------------------------------------------------------------------------------------------------


def test_compile_constraints_arrays():
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    assets = {
        "AAA": AssetInfo(sector="Technology", esg_score=8),
        "BBB": AssetInfo(sector="Technology"),
        "CCC": AssetInfo("bond", esg_score=5),
    }
    compiled = compile_constraints(
        symbols,
        assets,
        Constraints(
            min_weight=0.05,
            max_weight=0.6,
            weight_overrides={"bbb": (None, 0.1), "ZZZ": (0.5, 0.5)},
            groups=(parse_group_limit("technology <= 30%"), parse_group_limit("bonds >= 20%")),
            esg_floor=4.0,
            l2_gamma=0.5,
        ),
    )
    np.testing.assert_array_equal(compiled.lower, [0.05] * 4)
    np.testing.assert_array_equal(compiled.upper, [0.6, 0.1, 0.6, 0.6])  # overrides match any case; unknown ignored
    np.testing.assert_array_equal(compiled.a_max, [[1, 1, 0, 0]])
    np.testing.assert_array_equal(compiled.b_max, [0.3])
    np.testing.assert_array_equal(compiled.a_min, [[0, 0, 1, 0], [8, 0, 5, 0]])  # unknown ESG scores count as 0
    np.testing.assert_array_equal(compiled.b_min, [0.2, 4.0])
    assert compiled.min_labels == ("group bond >= 0.2", "portfolio ESG score >= 4")
    assert compiled.max_labels == ("group technology <= 0.3",)
    assert compiled.shape_key == (4, 2, 1)
    assert compiled.l2_gamma == 0.5
    assert compiled.violations(np.array([0.25, 0.05, 0.6, 0.1])) == []
    # Technology 0.3 + 0.1 = 0.4 > 0.3; ESG 8 x 0.3 + 5 x 0.3 = 3.9 < 4.
    assert compiled.violations(np.array([0.3, 0.1, 0.3, 0.3])) == [
        "portfolio ESG score >= 4: 3.9000000000 < 4",
        "group technology <= 0.3: 0.4000000000 > 0.3",
    ]


def test_violations_lists_every_broken_constraint():
    compiled = compile_constraints(
        ["A", "B", "C"],
        {"A": AssetInfo(sector="Tech")},
        Constraints(max_weight=0.5, groups=(parse_group_limit("Tech <= 20%"),)),
    )
    assert compiled.violations(np.array([0.7, 0.2, 0.2])) == [
        "weights add up to 1.1000000000, not 1",
        "A 0.7000000000 is above its maximum 0.5",
        "group Tech <= 0.2: 0.7000000000 > 0.2",
    ]
    assert compiled.violations(np.array([0.2, 0.4, 0.4])) == []


# -- feasibility explanations ------------------------------------------------------------------------------------------

SECTORS = {
    **{f"S{i:02d}": AssetInfo(sector="Information Technology") for i in range(3)},
    **{f"S{i:02d}": AssetInfo(sector="Energy") for i in range(3, 10)},
}


def test_explains_minimums_adding_up_to_more_than_one():
    assert _explanation(_symbols(20), {}, Constraints(min_weight=0.06)) == (
        "MIN_WEIGHT: 20 assets at least 6% each add up to 120%; lower it to at most 5% or remove assets"
    )


def test_explains_minimums_with_overrides():
    explanation = _explanation(_symbols(10), {}, Constraints(min_weight=0.09, weight_overrides={"S03": (0.2, None)}))
    assert explanation == (
        "MIN_WEIGHT: 9 assets at least 9% each and the overrides' S03 20% add up to 101%; lower it to at most "
        "8.88% or remove assets"
    )


def test_explains_maximums_adding_up_to_less_than_one():
    assert _explanation(_symbols(5), {}, Constraints(max_weight=0.1)) == (
        "MAX_WEIGHT: 5 assets at most 10% each add up to 50%; raise it to at least 20% or add assets"
    )


def test_explains_an_override_minimum_above_its_maximum():
    assert _explanation(_symbols(5), {}, Constraints(min_weight=0.1, weight_overrides={"S01": (None, 0.05)})) == (
        "weight_overrides: S01's minimum 10% (MIN_WEIGHT) is above its maximum 5% (its override); change its override"
    )


def test_explains_a_group_floor_its_members_cannot_reach():
    constraints = Constraints(max_weight=0.2, groups=(parse_group_limit("Information Technology >= 70%"),))
    assert _explanation(_symbols(10), SECTORS, constraints) == (
        "GROUP_LIMITS: group Information Technology >= 0.7 cannot be met: its 3 assets can hold at most 0.60 "
        "(3 assets x 0.2); raise their maximum weights, add assets to the group or lower the floor"
    )


def test_explains_a_group_cap_below_its_members_minimums():
    constraints = Constraints(min_weight=0.05, groups=(parse_group_limit("Information Technology <= 10%"),))
    assert _explanation(_symbols(10), SECTORS, constraints) == (
        "GROUP_LIMITS: group Information Technology <= 0.1 cannot be met: its 3 assets must hold at least 0.15 "
        "(3 assets x 0.05); lower MIN_WEIGHT or raise the cap"
    )


def test_explains_an_esg_floor_above_the_best_achievable_score():
    assets = {symbol: AssetInfo(esg_score=float(i)) for i, symbol in enumerate(_symbols(10))}
    # Best: 0.5 in the 9-rated asset and 0.5 in the 8-rated one = 8.5.
    assert _explanation(_symbols(10), assets, Constraints(max_weight=0.5, esg_floor=9)) == (
        "the ESG floor 9 cannot be met: the highest portfolio ESG score the weight bounds allow is 8.50; "
        "lower the floor or add higher-rated assets"
    )


@pytest.mark.parametrize("name", ["Health Care", "utilities"])
def test_explains_a_floor_group_with_no_members(name):
    assert _explanation(_symbols(10), SECTORS, Constraints(groups=(parse_group_limit(f"{name} >= 10%"),))) == (
        f"GROUP_LIMITS: group {name} >= 0.1 cannot be met: no asset in the universe belongs to {name!r}; "
        "add such assets or remove the limit"
    )


def test_explains_jointly_infeasible_limits():
    groups = (parse_group_limit("Information Technology >= 60%"), parse_group_limit("Energy >= 50%"))
    assert _explanation(_symbols(10), SECTORS, Constraints(groups=groups)) == (
        "the weight bounds and limits cannot all hold together (group Information Technology >= 0.6; "
        "group Energy >= 0.5; every asset between 0 and 1); relax one of them"
    )


def test_explains_every_asset_excluded():
    with pytest.raises(InfeasibleConstraints) as caught:
        Constraints(excluded=frozenset({"s00", "S01"})).universe(("S00", "S01"), {})
    assert caught.value.explanation == (
        "every asset is excluded (by the exclusion list or the ESG floor); allow at least one asset"
    )


def test_feasible_constraints_raise_nothing():
    groups = (parse_group_limit("Information Technology <= 30%"), parse_group_limit("Energy >= 50%"))
    check_feasibility(
        compile_constraints(_symbols(10), SECTORS, Constraints(min_weight=0.01, max_weight=0.2, groups=groups))
    )


def test_optimize_raises_the_explanation_before_solving():
    prices = make_prices(20, 60, seed=1)
    with pytest.raises(InfeasibleConstraints, match=r"^MIN_WEIGHT: 20 assets at least 6% each add up to 120%"):
        optimize(prices, None, OptimizerSettings(constraints=Constraints(min_weight=0.06)))


# -- targets out of reach ----------------------------------------------------------------------------------------------


def test_efficient_risk_below_the_minimum_volatility_is_explained_and_falls_back(prices_5):
    params = StrategyParams(target_volatility=0.01)
    with pytest.raises(InfeasibleConstraints) as caught:
        optimize(prices_5, None, OptimizerSettings(strategy="efficient_risk", fallbacks=(), params=params))
    lowest = optimize(prices_5, None, OptimizerSettings(strategy="min_volatility", fallbacks=())).metrics.volatility
    reason = (
        f"target volatility 1.00% is below {lowest:.2%}, the lowest volatility the constraints allow; raise the target"
    )
    assert caught.value.explanation == f"every strategy failed (efficient_risk: {reason})"

    result = optimize(prices_5, None, OptimizerSettings(strategy="efficient_risk", params=params))
    assert result.strategy == "min_volatility"
    assert result.requested_strategy == "efficient_risk"
    assert [step.to_dict() for step in result.fallbacks] == [
        {"strategy": "efficient_risk", "reason": reason, "error": "InfeasibleConstraints"}
    ]


def test_efficient_return_above_the_maximum_return_is_explained_and_falls_back(prices_5):
    params = StrategyParams(target_return=0.9)
    constraints = Constraints(max_weight=0.5)
    with pytest.raises(InfeasibleConstraints) as caught:
        optimize(
            prices_5,
            None,
            OptimizerSettings(strategy="efficient_return", fallbacks=(), params=params, constraints=constraints),
        )
    assert "target return 90.00% is above" in caught.value.explanation
    assert "the highest expected return the constraints allow; lower the target" in caught.value.explanation

    result = optimize(
        prices_5, None, OptimizerSettings(strategy="efficient_return", params=params, constraints=constraints)
    )
    assert result.strategy == "min_volatility"
    assert result.fallbacks[0].error == "InfeasibleConstraints"
    assert result.fallbacks[0].reason.startswith("target return 90.00% is above")


# -- every strategy obeys the constraints ----------------------------------------------------------------------------

UNIVERSE = ("TECH1", "TECH2", "TECH3", "BOND1", "BOND2", "OIL1")
UNIVERSE_ASSETS = {
    "TECH1": AssetInfo(sector="Technology", esg_score=3),
    "TECH2": AssetInfo(sector="Technology", esg_score=9),
    "TECH3": AssetInfo(sector="Technology"),  # unrated: counts as 0
    "BOND1": AssetInfo("bond", esg_score=7),
    "BOND2": AssetInfo("bond", esg_score=6),
    "OIL1": AssetInfo(sector="Energy", esg_score=1),
}


@pytest.fixture
def universe_prices():
    # Technology returns most, so the caps bind; bonds return least, so the floors bind.
    return make_prices(6, 260, seed=3, daily_means=[0.0012, 0.0011, 0.001, 0.0002, 0.00015, 0.0004], symbols=UNIVERSE)


def _weights(result) -> dict[str, float]:
    weights = result.weights_dict()
    assert abs(sum(weights.values()) - 1) <= TOLERANCE
    return weights


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_group_caps_floors_and_esg_floor_hold_for_every_strategy(universe_prices, strategy):
    constraints = Constraints(
        max_weight=0.6,
        groups=(parse_group_limit("technology <= 30%"), parse_group_limit("bonds >= 40%")),
        esg_floor=5.0,
    )
    settings = OptimizerSettings(strategy=strategy, fallbacks=(), params=LOOSE_PARAMS, constraints=constraints)
    result = optimize(universe_prices, UNIVERSE_ASSETS, settings)
    weights = _weights(result)
    assert result.strategy == strategy
    assert all(-TOLERANCE <= w <= 0.6 + TOLERANCE for w in weights.values())
    assert weights["TECH1"] + weights["TECH2"] + weights["TECH3"] <= 0.3 + TOLERANCE
    assert weights["BOND1"] + weights["BOND2"] >= 0.4 - TOLERANCE
    esg = sum(weight * (UNIVERSE_ASSETS[symbol].esg_score or 0) for symbol, weight in weights.items())
    assert esg >= 5.0 - TOLERANCE


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_exact_group_share_holds_for_every_strategy(universe_prices, strategy):
    constraints = Constraints(
        groups=(parse_group_limit("asset_class:bond = 40%"), parse_group_limit("sector:Energy <= 10%"))
    )
    settings = OptimizerSettings(strategy=strategy, fallbacks=(), params=LOOSE_PARAMS, constraints=constraints)
    weights = _weights(optimize(universe_prices, UNIVERSE_ASSETS, settings))
    assert weights["BOND1"] + weights["BOND2"] == pytest.approx(0.4, abs=TOLERANCE)
    assert weights["OIL1"] <= 0.1 + TOLERANCE


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_esg_exclude_mode_drops_low_and_unrated_assets(universe_prices, strategy):
    constraints = Constraints(esg_floor=5, esg_mode="exclude")
    settings = OptimizerSettings(strategy=strategy, fallbacks=(), params=LOOSE_PARAMS, constraints=constraints)
    result = optimize(universe_prices, UNIVERSE_ASSETS, settings)
    weights = _weights(result)
    assert result.universe == ("TECH2", "BOND1", "BOND2")
    assert weights["TECH1"] == weights["TECH3"] == weights["OIL1"] == 0.0
    assert "excluded for an ESG score below 5: TECH1, TECH3, OIL1" in result.notes


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_excluded_symbols_get_zero_and_a_note(universe_prices, strategy):
    constraints = Constraints(excluded=frozenset({"tech1", "OIL1", "NOT_HELD"}))
    settings = OptimizerSettings(strategy=strategy, fallbacks=(), params=LOOSE_PARAMS, constraints=constraints)
    result = optimize(universe_prices, UNIVERSE_ASSETS, settings)
    weights = _weights(result)
    assert weights["TECH1"] == weights["OIL1"] == 0.0
    assert result.symbols == UNIVERSE
    assert result.universe == ("TECH2", "TECH3", "BOND1", "BOND2")
    assert result.notes == ("excluded by settings: OIL1, TECH1",)
    assert len(result.metrics.risk_contributions) == 4


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_per_asset_overrides_hold_for_every_strategy(universe_prices, strategy):
    constraints = Constraints(max_weight=0.5, weight_overrides={"BOND1": (0.25, 0.3), "tech1": (None, 0.0)})
    settings = OptimizerSettings(strategy=strategy, fallbacks=(), params=LOOSE_PARAMS, constraints=constraints)
    result = optimize(universe_prices, UNIVERSE_ASSETS, settings)
    weights = _weights(result)
    assert result.strategy == strategy
    assert 0.25 - TOLERANCE <= weights["BOND1"] <= 0.3 + TOLERANCE
    assert weights["TECH1"] == 0.0
    assert all(w <= 0.5 + TOLERANCE for w in weights.values())


@pytest.mark.parametrize("strategy", ["max_sharpe", "min_volatility", "max_quadratic_utility"])
def test_l2_regularisation_spreads_the_weights(universe_prices, strategy):
    def effective(gamma: float) -> float:
        settings = OptimizerSettings(strategy=strategy, fallbacks=(), constraints=Constraints(l2_gamma=gamma))
        return optimize(universe_prices, UNIVERSE_ASSETS, settings).metrics.effective_assets

    plain, some, strong = effective(0.0), effective(0.1), effective(2.0)
    assert plain < some < strong
