"""The Django layer: portfolio policy -> optimizer settings, stored results, reuse by input hash."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from marketdata.models import Instrument
from marketdata.services import prices_fetch
from optimization.core.errors import InfeasibleConstraints, InsufficientData
from optimization.models import OptimizationResult, TargetAllocation, TargetWeight
from optimization.services import (
    optimizer_settings_for,
    targets_compute,
    targets_compute_many,
    weights_to_decimal,
)
from optimization.services.targets import targets_compute_each
from portfolios.models import Portfolio

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 6, 30)
SYMBOLS = ["SPY", "QQQ", "VXUS", "BND", "AGG", "GLD"]


@pytest.fixture
def prices() -> None:
    """Offline sample prices (the demo's provider) for a year and a half up to AS_OF."""
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"], start=date(2024, 1, 2), end=AS_OF)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("alice", password="pw-not-used-123")


def make_portfolio(owner, name: str = "Retirement", symbols=SYMBOLS, **policy) -> Portfolio:
    portfolio = Portfolio.objects.create(owner=owner, name=name, **policy)
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
    return portfolio


def test_defaults_come_from_the_environment(owner, settings) -> None:
    settings.USER_AGE, settings.MAX_WEIGHT, settings.OPTIMIZATION_STRATEGY = 47, 0.35, "min_volatility"
    portfolio = Portfolio.objects.create(owner=owner, name="Defaults")
    assert (portfolio.age, portfolio.max_weight, portfolio.strategy) == (47, Decimal("0.35"), "min_volatility")
    core = optimizer_settings_for(portfolio)
    assert core.glide.age == 47
    assert core.constraints.max_weight == 0.35
    assert core.strategy == "min_volatility"


def test_birth_year_wins_over_age_and_glide_path_can_be_off(owner) -> None:
    portfolio = Portfolio(owner=owner, name="x", age=30, birth_year=1970)
    assert portfolio.investor_age(date(2025, 3, 1)) == 55
    portfolio.use_glide_path = False
    assert portfolio.investor_age(date(2025, 3, 1)) is None


@pytest.mark.parametrize(
    ("policy", "field", "text"),
    [
        ({"group_limits": ["tech < 3"]}, "group_limits", "expected NAME <= PERCENT"),
        ({"weight_overrides": {"SPY": [0.5]}}, "weight_overrides", "needs [min, max]"),
        ({"glide_path_knots": [[60, 0.5], [50, 0.6]]}, "glide_path_knots", "strictly increasing"),
        ({"strategy": "efficient_risk"}, "target_volatility", "needs a target volatility"),
        ({"strategy": "nonsense"}, "strategy", "is not one of"),
    ],
)
def test_bad_policy_is_a_validation_error_naming_the_field(owner, policy, field, text) -> None:
    portfolio = Portfolio(owner=owner, name="Bad", **policy)
    with pytest.raises(ValidationError) as caught:
        portfolio.full_clean()
    assert field in caught.value.message_dict
    assert text in " ".join(caught.value.message_dict[field])


def test_weights_to_decimal_sums_to_exactly_one() -> None:
    weights = {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}
    stored = weights_to_decimal(weights)
    assert sum(stored.values()) == Decimal(1)
    assert all(value.as_tuple().exponent == -10 for value in stored.values())
    assert max(abs(float(stored[k]) - weights[k]) for k in weights) < 2e-10


def test_targets_are_stored_as_decimals_with_metrics(prices, owner) -> None:
    portfolio = make_portfolio(owner, age=40, max_weight=Decimal("0.5"))
    allocation = targets_compute(portfolio=portfolio, as_of=AS_OF)
    result = allocation.result
    assert allocation.as_of == AS_OF == result.as_of
    weights = result.weights()
    assert set(weights) == set(SYMBOLS)
    assert sum(weights.values()) == Decimal(1)
    assert all(Decimal(0) <= w <= Decimal("0.5") for w in weights.values())
    assert result.equity_share == Decimal("0.90000")
    assert result.strategy in ("max_sharpe", "min_volatility", "equal_weight")
    assert float(result.volatility) > 0
    assert result.metrics["observations"] == 252
    assert set(result.metrics["risk_contributions"]) == set(SYMBOLS)
    assert result.settings["glide"]["age"] == 40
    bonds = sum(w for s, w in weights.items() if s in ("BND", "AGG"))
    # 90% aggressive (no bonds) + 10% safe (80% bonds) -> 8% in bonds unless a bound moved it.
    assert abs(bonds - Decimal("0.08")) < Decimal("0.02")


def test_identical_inputs_share_one_result(prices, owner) -> None:
    first = targets_compute(portfolio=make_portfolio(owner, "One", age=40), as_of=AS_OF)
    second = targets_compute(portfolio=make_portfolio(owner, "Two", age=40), as_of=AS_OF)
    third = targets_compute(portfolio=make_portfolio(owner, "Three", age=70), as_of=AS_OF)
    assert first.result_id == second.result_id != third.result_id
    assert (first.reused, second.reused, third.reused) == (False, True, False)
    assert OptimizationResult.objects.count() == 2
    assert TargetWeight.objects.count() == 2 * len(SYMBOLS)


def test_the_targets_of_a_batch_take_as_many_queries_for_nine_portfolios_as_for_three(prices, owner) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    portfolios = [make_portfolio(owner, f"P{i}", age=30 + 10 * (i % 3)) for i in range(9)]
    targets_compute_each(portfolios[:3], as_of=AS_OF)  # solved and stored once per distinct input
    counts = []
    for batch in (portfolios[:3], portfolios):
        with CaptureQueriesContext(connection) as queries:
            answers = targets_compute_each(batch, as_of=AS_OF)
        counts.append(len(queries))
        assert all(answer.allocation.reused for answer in answers)
    assert counts[0] == counts[1]
    assert OptimizationResult.objects.count() == 3
    assert TargetAllocation.objects.count() == 9


def test_recomputing_the_same_day_replaces_the_allocation_not_duplicates_it(prices, owner) -> None:
    portfolio = make_portfolio(owner, age=40)
    targets_compute(portfolio=portfolio, as_of=AS_OF)
    portfolio.age = 60
    portfolio.save()
    targets_compute(portfolio=portfolio, as_of=AS_OF)
    assert TargetAllocation.objects.filter(portfolio=portfolio).count() == 1
    assert TargetAllocation.objects.get(portfolio=portfolio).result.equity_share == Decimal("0.61500")


def test_many_portfolios_compute_each_distinct_input_once(prices, owner) -> None:
    portfolios = [make_portfolio(owner, f"P{i}", age=30 + 10 * (i % 3)) for i in range(9)]
    answers = targets_compute_many(portfolios, as_of=AS_OF)
    assert all(isinstance(answer, TargetAllocation) for answer in answers)
    assert OptimizationResult.objects.count() == 3
    assert len({answer.result_id for answer in answers}) == 3


def test_infeasible_policy_is_an_error_in_words_and_stores_nothing(prices, owner) -> None:
    portfolio = make_portfolio(owner, min_weight=Decimal("0.2"), max_weight=Decimal("0.5"))
    # A portfolio's settings are named by their labels on its settings page.
    explanation = (
        "Minimum weight: 6 assets at least 20% each add up to 120%; lower it to at most 16.66% or remove assets"
    )
    with pytest.raises(InfeasibleConstraints, match=re.escape(explanation)):
        targets_compute(portfolio=portfolio, as_of=AS_OF)
    many = targets_compute_many([portfolio], as_of=AS_OF)
    assert isinstance(many[0], InfeasibleConstraints)
    assert OptimizationResult.objects.count() == TargetAllocation.objects.count() == 0


def test_missing_prices_name_the_symbol(prices, owner) -> None:
    Instrument.objects.create(symbol="NOPRICE", name="No prices", asset_class="equity")
    portfolio = make_portfolio(owner, symbols=[*SYMBOLS, "NOPRICE"])
    with pytest.raises(InsufficientData, match="NOPRICE"):
        targets_compute(portfolio=portfolio, as_of=AS_OF)


def test_empty_universe_is_explained(owner) -> None:
    portfolio = Portfolio.objects.create(owner=owner, name="Empty")
    with pytest.raises(InsufficientData, match="has no instruments"):
        targets_compute(portfolio=portfolio, as_of=AS_OF)


def test_weights_on_a_cap_stay_on_it_after_rounding() -> None:
    weights = {"CAPPED": 0.5, "B": 0.5 / 3, "C": 0.5 / 3, "D": 0.5 / 3 + 1e-13}
    stored = weights_to_decimal(weights)
    assert stored["CAPPED"] == Decimal("0.5")
    assert sum(stored.values()) == Decimal(1)
    assert all(abs(float(stored[k]) - weights[k]) <= 1e-10 for k in weights)
