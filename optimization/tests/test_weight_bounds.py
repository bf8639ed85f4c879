"""Weight bounds and small portfolios: no default cap, closed-form glide path splits for 2 and 3 funds,
and a warning naming each bound that moves an asset away from what the glide path and optimizer chose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization.core.bound_warnings import BoundWarning
from optimization.core.constraints import (
    AssetInfo,
    Constraints,
    SettingNames,
    compile_constraints,
    parse_group_limit,
    percent,
)
from optimization.core.engine import GlidePathSettings, OptimizerSettings, optimize
from optimization.core.errors import InfeasibleConstraints
from optimization.core.feasibility import check_feasibility
from optimization.core.glidepath import GlidePath

from .conftest import make_prices

ASSETS = {"VTI": AssetInfo("equity"), "VXUS": AssetInfo("equity"), "BND": AssetInfo("bond")}
AGE = 41
AGGRESSIVE, SAFE = GlidePath().get_allocation_blend(AGE)  # 0.8865, 0.1135
SAFE_BONDS = 0.8  # the safe portfolio's bond share (SAFE_PORTFOLIO_BONDS)
BND_SHARE = SAFE * SAFE_BONDS  # the only bond fund holds the safe side's bonds: 9.08%
ASKED = "the glide path and optimizer asked"
PORTFOLIO_NAMES = SettingNames(
    min_weight="Minimum weight", max_weight="Maximum weight", weight_overrides="Weight overrides", groups="Group limits"
)


@pytest.fixture(scope="module")
def funds() -> pd.DataFrame:
    """VTI, VXUS and BND where VXUS's daily returns are VTI's in another order: the same mean,
    volatility and compounded return, so no strategy has a reason to prefer one of the two."""
    frame = make_prices(2, 200, seed=41, daily_means=[0.0008, 0.0002], daily_vols=[0.012, 0.004])
    vti = frame["S00"].pct_change().dropna().to_numpy()
    shuffled = vti[np.random.default_rng(7).permutation(len(vti))]
    vxus = 100.0 * np.concatenate([[1.0], np.cumprod(1 + shuffled)])
    return pd.DataFrame({"VTI": frame["S00"], "VXUS": vxus, "BND": frame["S01"]}, index=frame.index)


def targets(prices: pd.DataFrame, constraints: Constraints = Constraints(), **kwargs):
    settings = OptimizerSettings(constraints=constraints, glide=GlidePathSettings(age=AGE))
    return optimize(prices, ASSETS, settings, **kwargs)


def test_the_default_settings_cap_nothing():
    assert OptimizerSettings().constraints.max_weight == 1.0
    assert Constraints().min_weight == 0.0


def test_two_funds_hold_exactly_the_glide_path_split(funds):
    result = targets(funds[["VTI", "BND"]])
    assert result.equity_share == pytest.approx(0.8865)
    # Each sleeve has one fund: VTI = aggressive + the safe side's equities, BND = the safe side's bonds.
    assert result.weights_dict() == pytest.approx({"VTI": AGGRESSIVE + SAFE * (1 - SAFE_BONDS), "BND": BND_SHARE})
    assert result.weights_dict()["BND"] == pytest.approx(0.0908)
    assert result.warnings == ()


def test_three_funds_hold_the_glide_path_split_with_equal_equities(funds):
    result = targets(funds)
    weights = result.weights_dict()
    assert weights["BND"] == pytest.approx(BND_SHARE, abs=1e-9)
    # Identical statistics: the optimizer has no reason to prefer VTI over VXUS.
    assert weights["VTI"] == pytest.approx((1 - BND_SHARE) / 2, abs=1e-6)
    assert weights["VXUS"] == pytest.approx((1 - BND_SHARE) / 2, abs=1e-6)
    assert result.warnings == ()


def test_a_cap_that_does_not_bind_changes_nothing_and_warns_nothing(funds):
    free = targets(funds)
    capped = targets(funds, Constraints(max_weight=0.6))
    np.testing.assert_allclose(capped.weights, free.weights, atol=1e-6)
    assert capped.warnings == ()


def test_a_cap_on_three_funds_says_which_fund_it_held_and_what_was_asked(funds):
    result = targets(funds, Constraints(max_weight=0.4))
    assert result.weights_dict() == pytest.approx({"VTI": 0.4, "VXUS": 0.4, "BND": 0.2}, abs=1e-7)
    equity_asked = percent((1 - BND_SHARE) / 2)
    assert equity_asked == "45.46%"
    assert [w.message for w in result.warnings] == [
        f"VTI capped at 40% by the maximum weight ({ASKED} {equity_asked})",
        f"VXUS capped at 40% by the maximum weight ({ASKED} {equity_asked})",
        f"BND at 20%: it holds the weight taken from VTI, VXUS ({ASKED} 9.08%)",
    ]
    vti = result.warnings[0]
    assert (vti.subject, vti.setting, vti.weight) == ("VTI", "max_weight", pytest.approx(0.4))
    assert vti.asked == pytest.approx((1 - BND_SHARE) / 2, abs=1e-6)
    assert result.warnings[2].setting == ""


def test_a_capped_equity_fund_overflows_to_the_other_equity_before_the_bonds():
    # VTI is by far the better fund: the optimizer asks nearly all the equity share for it.
    prices = make_prices(3, 200, seed=5, daily_means=[0.0012, 0.0001, 0.0002], daily_vols=[0.01, 0.016, 0.004])
    prices.columns = ["VTI", "VXUS", "BND"]
    free = targets(prices)
    assert free.weights_dict()["VTI"] > 0.8 and free.weights_dict()["BND"] == pytest.approx(BND_SHARE, abs=1e-9)
    result = targets(prices, Constraints(max_weight=0.4))
    # The glide path's equity share as far as the caps allow (2 x 40%); the bonds take only the rest.
    assert result.weights_dict() == pytest.approx({"VTI": 0.4, "VXUS": 0.4, "BND": 0.2}, abs=1e-7)
    assert result.warnings[0].message.startswith("VTI capped at 40% by the maximum weight")


def test_an_override_cap_is_named_as_the_override(funds):
    result = targets(funds, Constraints(weight_overrides={"VTI": (None, 0.3)}))
    weights = result.weights_dict()
    assert weights["VTI"] == pytest.approx(0.3, abs=1e-7)
    assert weights["BND"] == pytest.approx(BND_SHARE, abs=1e-6)  # the equities' cap moves equities only
    first = result.warnings[0]
    assert (first.subject, first.setting) == ("VTI", "weight_overrides")
    assert first.message == f"VTI capped at 30% by its per-asset override ({ASKED} 45.46%)"
    assert (
        result.warnings[1].message
        == f"VXUS at {percent(weights['VXUS'])}: it holds the weight taken from VTI ({ASKED} 45.46%)"
    )


def test_a_minimum_weight_raises_the_bond_fund_and_says_so(funds):
    result = targets(funds, Constraints(min_weight=0.2))
    assert result.weights_dict() == pytest.approx({"VTI": 0.4, "VXUS": 0.4, "BND": 0.2}, abs=1e-6)
    assert result.warnings[0] == BoundWarning(
        "BND",
        "min_weight",
        pytest.approx(0.2),
        pytest.approx(BND_SHARE),
        f"BND raised to 20% by the minimum weight ({ASKED} 9.08%)",
    )
    assert {w.subject: w.message for w in result.warnings[1:]} == {
        "VTI": f"VTI at 40%: it gave up weight to make room for BND ({ASKED} 45.46%)",
        "VXUS": f"VXUS at 40%: it gave up weight to make room for BND ({ASKED} 45.46%)",
    }


def test_a_group_floor_is_named_with_its_limit(funds):
    result = targets(funds, Constraints(groups=(parse_group_limit("bonds >= 30%"),)))
    assert result.weights_dict()["BND"] == pytest.approx(0.3, abs=1e-6)
    group = result.warnings[0]
    assert (group.subject, group.setting) == ("group bond", "groups")
    assert group.message == f"group bond raised to 30% by the group limit bond >= 30% ({ASKED} 9.08%)"


def test_to_dict_carries_the_warnings(funds):
    result = targets(funds, Constraints(max_weight=0.4))
    assert result.to_dict()["warnings"][0] == {
        "subject": "VTI",
        "setting": "max_weight",
        "weight": pytest.approx(0.4),
        "asked": pytest.approx((1 - BND_SHARE) / 2, abs=1e-6),
        "message": f"VTI capped at 40% by the maximum weight ({ASKED} 45.46%)",
    }


# -- settings no weights can meet, named as the environment or the portfolio names them -------------------------------


def explain(symbols, constraints: Constraints, names: SettingNames | None = None) -> InfeasibleConstraints:
    with pytest.raises(InfeasibleConstraints) as caught:
        check_feasibility(compile_constraints(tuple(symbols), ASSETS, constraints), names)
    return caught.value


def test_a_cap_two_funds_cannot_meet_says_the_cap_that_would(funds):
    error = explain(["VTI", "BND"], Constraints(max_weight=0.4))
    assert error.setting == "max_weight"
    assert str(error) == "MAX_WEIGHT: 2 assets at most 40% each add up to 80%; raise it to at least 50% or add assets"
    named = explain(["VTI", "BND"], Constraints(max_weight=0.4), PORTFOLIO_NAMES)
    assert str(named) == (
        "Maximum weight: 2 assets at most 40% each add up to 80%; raise it to at least 50% or add assets"
    )
    with pytest.raises(InfeasibleConstraints, match=r"^MAX_WEIGHT: 2 assets at most 40%"):
        targets(funds[["VTI", "BND"]], Constraints(max_weight=0.4))


def test_the_suggested_cap_rounds_up_to_a_value_that_works():
    error = explain(["VTI", "VXUS", "BND"], Constraints(max_weight=0.3), PORTFOLIO_NAMES)
    assert str(error) == (
        "Maximum weight: 3 assets at most 30% each add up to 90%; raise it to at least 33.34% or add assets"
    )
    check_feasibility(compile_constraints(("VTI", "VXUS", "BND"), ASSETS, Constraints(max_weight=0.3334)))


def test_caps_with_an_override_suggest_the_uniform_cap_that_fills_the_rest():
    constraints = Constraints(max_weight=0.3, weight_overrides={"BND": (None, 0.2)})
    error = explain(["VTI", "VXUS", "BND"], constraints, PORTFOLIO_NAMES)
    assert (error.setting, str(error)) == (
        "max_weight",
        "Maximum weight: 2 assets at most 30% each and the overrides' BND 20% add up to 80%; raise it to at least "
        "40% or add assets",
    )


def test_override_maximums_below_one_name_the_overrides():
    constraints = Constraints(weight_overrides={"VTI": (None, 0.5), "BND": (None, 0.3)})
    error = explain(["VTI", "BND"], constraints, PORTFOLIO_NAMES)
    assert (error.setting, str(error)) == (
        "weight_overrides",
        "Weight overrides: the overrides' maximums add up to 80% (VTI 50% + BND 30%); raise them or add assets",
    )


def test_minimums_above_one_name_the_minimum_weight():
    error = explain(["VTI", "VXUS", "BND"], Constraints(min_weight=0.4), PORTFOLIO_NAMES)
    assert (error.setting, str(error)) == (
        "min_weight",
        "Minimum weight: 3 assets at least 40% each add up to 120%; lower it to at most 33.33% or remove assets",
    )


def test_override_minimums_above_one_name_the_overrides():
    constraints = Constraints(weight_overrides={"VTI": (0.7, None), "BND": (0.5, None)})
    error = explain(["VTI", "VXUS", "BND"], constraints, PORTFOLIO_NAMES)
    assert (error.setting, str(error)) == (
        "weight_overrides",
        "Weight overrides: the overrides' minimums add up to 120% (VTI 70% + BND 50%); lower them",
    )


def test_an_override_minimum_above_the_cap_names_both():
    constraints = Constraints(max_weight=0.4, weight_overrides={"VTI": (0.5, None)})
    error = explain(["VTI", "VXUS", "BND"], constraints, PORTFOLIO_NAMES)
    assert (error.setting, str(error)) == (
        "weight_overrides",
        "Weight overrides: VTI's minimum 50% (its override) is above its maximum 40% (Maximum weight); "
        "change its override",
    )


def test_a_group_limit_no_asset_meets_names_the_group_limits():
    error = explain(["VTI", "VXUS"], Constraints(groups=(parse_group_limit("bonds >= 20%"),)), PORTFOLIO_NAMES)
    assert error.setting == "groups"
    assert str(error).startswith("Group limits: group bond >= 0.2 cannot be met: no asset in the universe belongs")
