"""Bad portfolio settings are validation errors that name the field; nothing is saved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from brokers.models import BrokerAccount
from marketdata.services import instruments_ensure
from portfolios.models import Portfolio

from .factories import make_user

pytestmark = pytest.mark.django_db


def errors_of(portfolio: Portfolio) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        portfolio.full_clean()
    return {field: " ".join(messages) for field, messages in caught.value.message_dict.items()}


@pytest.mark.parametrize(
    ("policy", "field", "text"),
    [
        ({"cash_usd": Decimal("-1")}, "cash_usd", "greater than or equal to 0"),
        ({"min_weight": Decimal("0.5"), "max_weight": Decimal("0.3")}, "min_weight", "above max_weight"),
        ({"band_abs": Decimal(0)}, "band_abs", "greater than or equal to 0.0001"),
        ({"band_abs": Decimal("1.5")}, "band_abs", "less than or equal to 1"),
        ({"band_rel": Decimal("-0.1")}, "band_rel", "greater than or equal to 0.0001"),
        ({"drift_threshold": Decimal(0)}, "drift_threshold", "greater than or equal to 0.0001"),
        ({"max_turnover": Decimal("1.01")}, "max_turnover", "less than or equal to 1"),
        ({"age": 17}, "age", "greater than or equal to 18"),
        ({"age": 111}, "age", "less than or equal to 110"),
        ({"retirement_age": 39}, "retirement_age", "greater than or equal to 40"),
        ({"glide_path_knots": [[60, 0.5], [50, 0.6]]}, "glide_path_knots", "strictly increasing"),
        ({"glide_path_knots": [[40, 1.2], [60, 0.5]]}, "glide_path_knots", "outside [0, 1]"),
        ({"rebalancing_strategy": "fastest"}, "rebalancing_strategy", "is not one of"),
        ({"band_mode": "wide"}, "band_mode", "not a valid choice"),
        ({"calendar": "hourly"}, "calendar", "not a valid choice"),
        ({"do_not_trade": "VTI"}, "do_not_trade", "expected a list of texts"),
        ({"min_trade_usd": Decimal("-5")}, "min_trade_usd", "greater than or equal to 0"),
        ({"spread_bps": Decimal(2000)}, "spread_bps", "less than or equal to 1000"),
        ({"manual_targets": {"SPY": 0.6, "BND": 0.3}}, "manual_targets", "sum to 0.9, not 1"),
        ({"manual_targets": {"SPY": 0.6, "ZZZZ": 0.4}}, "manual_targets", "unknown symbol ZZZZ"),
        ({"manual_targets": {"SPY": 1.5, "BND": -0.5}}, "manual_targets", "must be a number from 0 to 1"),
        ({"manual_targets": [0.6, 0.4]}, "manual_targets", "expected"),
        ({"weight_overrides": "SPY<=0.3"}, "weight_overrides", "expected"),
        ({"weight_overrides": {"SPY": ["a", 0.5]}}, "weight_overrides", "bound 'a' is not a number"),
        ({"group_limits": "tech <= 30%"}, "group_limits", "expected a list of texts"),
        ({"fallbacks": "equal_weight"}, "fallbacks", "expected a list of texts"),
        ({"excluded_symbols": [1]}, "excluded_symbols", "expected a list of texts"),
        ({"glide_path_knots": "40:0.9"}, "glide_path_knots", "expected [[age, equity share]"),
    ],
)
def test_bad_setting_names_its_field(policy, field, text) -> None:
    instruments_ensure(symbols=["SPY", "BND"])
    errors = errors_of(Portfolio(owner=make_user(), name="Bad", **policy))
    assert field in errors, errors
    assert text in errors[field]


def test_retirement_age_below_the_current_age_is_allowed() -> None:
    portfolio = Portfolio(owner=make_user(), name="Retired", age=72, retirement_age=65)
    portfolio.full_clean()


def test_good_manual_targets_and_bands_pass() -> None:
    instruments_ensure(symbols=["SPY", "BND"])
    portfolio = Portfolio(
        owner=make_user(),
        name="Manual",
        manual_targets={"SPY": "0.6", "BND": 0.4},
        band_mode="relative",
        band_rel=Decimal("0.2"),
        calendar="quarterly",
        cooldown_days=7,
        do_not_trade=["spy"],
    )
    portfolio.full_clean()


def test_a_broker_account_of_another_user_is_rejected() -> None:
    alice, bob = make_user("alice"), make_user("bob")
    account = BrokerAccount.objects.create(owner=bob, label="Bob's paper")
    errors = errors_of(Portfolio(owner=alice, name="Mine", broker_account=account))
    assert errors["broker_account"] == "this broker account belongs to another user"


def test_rebalancing_defaults_come_from_the_environment(settings) -> None:
    settings.REBALANCE_THRESHOLD, settings.BAND_MODE, settings.REBALANCING_STRATEGY = 0.04, "absolute", "full"
    settings.CASH_BUFFER_WEIGHT, settings.MIN_TRADE_USD, settings.PORTFOLIO_MODE = 0.01, 25.0, "auto"
    portfolio = Portfolio.objects.create(owner=make_user(), name="Defaults")
    assert portfolio.band_abs == Decimal("0.04")
    assert (portfolio.band_mode, portfolio.rebalancing_strategy, portfolio.mode) == ("absolute", "full", "auto")
    assert (portfolio.cash_buffer_weight, portfolio.min_trade_usd) == (Decimal("0.01"), Decimal("25.0"))
    assert portfolio.drift_threshold is None and portfolio.calendar == ""
    assert (portfolio.unheld_outside_band, portfolio.cash_flow_to) == (False, "target")


def test_a_hybrid_band_is_a_default_the_environment_may_set(settings) -> None:
    settings.BAND_MODE = "hybrid"
    assert Portfolio.objects.create(owner=make_user(), name="Defaults").band_mode == "hybrid"
