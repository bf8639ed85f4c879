"""What a result keeps for the run report: the glide path's sleeves (core), and the stored
analysis (mu, covariance, efficient frontier, sleeves, glide path), computed once per result."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from marketdata.models import Instrument
from marketdata.services import prices_fetch
from optimization.core.constraints import AssetInfo, Constraints
from optimization.core.engine import (
    GlidePathSettings,
    OptimizerSettings,
    efficient_frontier,
    frontier_points,
    optimize,
    prepare,
)
from optimization.core.errors import SolverFailed
from optimization.core.estimators import EstimatorSettings, estimate
from optimization.core.glidepath import GlidePath
from optimization.models import OptimizationResult
from optimization.services import analysis as analysis_service
from optimization.services import targets_compute, targets_compute_many
from optimization.services.inputs import price_window
from optimization.services.settings import optimizer_settings_for
from portfolios.models import Portfolio

from .conftest import make_prices

AS_OF = date(2025, 6, 30)
SYMBOLS = ["SPY", "QQQ", "VXUS", "BND", "AGG", "GLD"]
ASSETS = {
    "EQ1": AssetInfo("equity"),
    "EQ2": AssetInfo("equity"),
    "EQ3": AssetInfo("equity"),
    "BND1": AssetInfo("bond"),
    "BND2": AssetInfo("bond"),
}
NO_LOOKBACK = EstimatorSettings(lookback_days=None)


@pytest.fixture
def core_prices():
    return make_prices(
        5,
        260,
        seed=11,
        daily_means=[0.0008, 0.0009, 0.0006, 0.0002, 0.00025],
        daily_vols=[0.012, 0.015, 0.011, 0.004, 0.005],
        symbols=list(ASSETS),
    )


# -- core: the sleeves of the blend ----------------------------------------------------------------


@pytest.mark.parametrize("age", [30, 55, 70])
def test_the_blend_is_the_shares_times_the_sleeves(core_prices, age) -> None:
    settings = OptimizerSettings(estimators=NO_LOOKBACK, glide=GlidePathSettings(age=age))
    result = optimize(core_prices, ASSETS, settings)
    aggressive, safe = result.sleeves
    assert (aggressive.name, safe.name) == ("aggressive", "safe")
    share, rest = GlidePath().get_allocation_blend(age)
    assert (aggressive.share, safe.share) == (share, rest) and result.equity_share == share
    for sleeve in (aggressive, safe):
        assert sleeve.weights.sum() == pytest.approx(1, abs=1e-9)
        assert sleeve.weights.min() >= -1e-9
    # The aggressive sleeve holds the growth assets only; the safe one 80% bonds.
    assert aggressive.weights[3:].sum() == pytest.approx(0, abs=1e-9)
    assert safe.weights[3:].sum() == pytest.approx(0.8, abs=1e-9)
    blend = aggressive.share * aggressive.weights + safe.share * safe.weights
    np.testing.assert_allclose(result.weights, blend, atol=1e-6)


def test_without_an_age_there_are_no_sleeves_and_the_public_answer_is_unchanged(core_prices) -> None:
    settings = OptimizerSettings(estimators=NO_LOOKBACK)
    result = optimize(core_prices, ASSETS, settings)
    assert result.sleeves == () and result.equity_share is None
    assert result.estimates.symbols == result.universe and result.constraints.symbols == result.universe
    assert set(result.to_dict()) == {
        "strategy",
        "weights",
        "performance",
        "fallbacks",
        "requested_strategy",
        "risk_free_rate",
        "equity_share",
        "notes",
        "warnings",
        "metrics",
        "as_of",
        "input_hash",
    }


def test_frontier_points_from_a_results_estimates_equal_the_efficient_frontier(core_prices) -> None:
    settings = OptimizerSettings(estimators=NO_LOOKBACK, constraints=Constraints(max_weight=0.5))
    _, _, estimates, compiled = prepare(core_prices, ASSETS, settings)
    direct = frontier_points(estimates, compiled, 0.02, 12)
    expected = efficient_frontier(core_prices, ASSETS, settings, points=12)
    assert len(direct) == len(expected) == 12
    for point, other in zip(direct, expected, strict=True):
        assert point.expected_return == pytest.approx(other.expected_return, abs=1e-9)
        assert point.volatility == pytest.approx(other.volatility, abs=1e-9)


# -- services: the stored analysis -----------------------------------------------------------------


@pytest.fixture
def prices() -> None:
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"], start=date(2024, 1, 2), end=AS_OF)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("alice", password="pw-not-used-123")


def make_portfolio(owner, name: str = "Retirement", **policy) -> Portfolio:
    portfolio = Portfolio.objects.create(owner=owner, name=name, **policy)
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=SYMBOLS))
    return portfolio


@pytest.mark.django_db
def test_a_stored_result_keeps_mu_cov_frontier_sleeves_and_glide_path(prices, owner) -> None:
    portfolio = make_portfolio(owner, age=55, max_weight=Decimal("0.5"))
    result = targets_compute(portfolio=portfolio, as_of=AS_OF).result
    analysis = OptimizationResult.objects.get(pk=result.pk).analysis
    symbols = analysis["symbols"]
    assert sorted(symbols) == sorted(SYMBOLS)

    # mu and cov are the optimizer's estimates (annualised), in the order of `symbols`.
    settings = optimizer_settings_for(portfolio, on=AS_OF)
    window = price_window(symbols, as_of=AS_OF, lookback_days=settings.estimators.lookback_days)
    estimates = estimate(window, settings.estimators)
    np.testing.assert_allclose(analysis["mu"], estimates.mu, rtol=1e-6)
    cov = np.array(analysis["cov"])
    np.testing.assert_allclose(cov, estimates.cov, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(cov, cov.T)

    # About 30 frontier points, from minimum volatility up, never losing return.
    frontier = np.array(analysis["frontier"])
    assert frontier.shape == (30, 2)
    assert (np.diff(frontier[:, 1]) >= -1e-7).all()
    assert frontier[-1, 1] > frontier[0, 1]
    assert frontier[:, 0].min() == pytest.approx(frontier[0, 0], rel=1e-6)
    assert frontier[0, 0] <= float(result.volatility) + 1e-9

    # Target weights = aggressive share x aggressive sleeve + safe share x safe sleeve.
    sleeves = analysis["sleeves"]
    aggressive, safe = sleeves["aggressive"], sleeves["safe"]
    assert aggressive["share"] == pytest.approx(float(result.equity_share)) == pytest.approx(0.69)
    assert aggressive["share"] + safe["share"] == pytest.approx(1)
    for sleeve in (aggressive, safe):
        assert sum(sleeve["weights"].values()) == pytest.approx(1, abs=1e-5)
        w = np.array([sleeve["weights"].get(s, 0.0) for s in symbols])
        assert sleeve["expected_return"] == pytest.approx(float(w @ estimates.mu), rel=1e-5)
        assert sleeve["volatility"] == pytest.approx(float(np.sqrt(w @ estimates.cov @ w)), rel=1e-5)
    weights = result.weights()
    for symbol in symbols:
        blend = aggressive["share"] * aggressive["weights"].get(symbol, 0.0) + safe["share"] * safe["weights"].get(
            symbol, 0.0
        )
        assert float(weights[symbol]) == pytest.approx(blend, abs=1e-5)
    assert sum(safe["weights"].get(s, 0.0) for s in ("BND", "AGG")) == pytest.approx(0.8, abs=1e-5)

    glide = analysis["glide"]
    assert glide["age"] == 55 and glide["equity_share"] == pytest.approx(0.69)
    assert glide["retirement_age"] == 65 and glide["safe_bond_share"] == pytest.approx(0.8)
    curve = dict((age, share) for age, share in glide["curve"])
    assert curve[55] == pytest.approx(0.69) and curve[30] == pytest.approx(0.9) and curve[80] == pytest.approx(0.3)


@pytest.mark.django_db
def test_results_that_differ_only_in_age_share_one_frontier_solve(prices, owner, monkeypatch) -> None:
    calls = []
    real = analysis_service.frontier_points

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis_service, "frontier_points", counting)
    young = targets_compute(portfolio=make_portfolio(owner, "Young", age=30), as_of=AS_OF).result
    old = targets_compute(portfolio=make_portfolio(owner, "Old", age=70), as_of=AS_OF).result
    assert young.pk != old.pk and len(calls) == 1
    assert young.analysis["frontier_key"] == old.analysis["frontier_key"]
    assert young.analysis["frontier"] == old.analysis["frontier"]
    assert young.analysis["glide"]["age"] == 30 and old.analysis["glide"]["age"] == 70

    # A batch shares them too, and other bounds make another frontier.
    many = targets_compute_many(
        [make_portfolio(owner, f"P{age}", age=age, max_weight=Decimal("0.3")) for age in (40, 50, 60)], as_of=AS_OF
    )
    assert len(calls) == 2
    assert len({allocation.result.analysis["frontier_key"] for allocation in many}) == 1
    assert many[0].result.analysis["frontier_key"] != young.analysis["frontier_key"]


@pytest.mark.django_db
def test_a_frontier_that_cannot_be_solved_is_a_note_and_the_targets_still_stand(prices, owner, monkeypatch) -> None:
    message = "the solver stopped with status 'infeasible_inaccurate' on the min risk problem"

    def failing(*args, **kwargs):
        raise SolverFailed(message)

    monkeypatch.setattr(analysis_service, "frontier_points", failing)
    result = targets_compute(portfolio=make_portfolio(owner, age=40), as_of=AS_OF).result
    assert sum(result.weights().values()) == Decimal(1)
    assert result.analysis["frontier"] is None
    assert result.analysis["notes"] == [f"efficient frontier not computed: {message}"]
    assert set(result.analysis["sleeves"]) == {"aggressive", "safe"}


@pytest.mark.django_db
def test_without_a_glide_path_the_analysis_has_no_sleeves(prices, owner) -> None:
    portfolio = make_portfolio(owner, age=None)
    result = targets_compute(portfolio=portfolio, as_of=AS_OF).result
    assert result.equity_share is None
    assert result.analysis["sleeves"] == {} and result.analysis["glide"] is None
    assert len(result.analysis["frontier"]) == 30
