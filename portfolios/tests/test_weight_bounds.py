"""Small portfolios and weight bounds end to end: no default cap, the targets' bound warnings stored
with the result and shown on the portfolio page and the report, and settings no weights can meet
refused at the field that is to change."""

from __future__ import annotations

from decimal import Decimal
from html import escape

import pytest
from django.urls import reverse

from optimization.models import OptimizationResult
from optimization.services import PORTFOLIO_SETTING_NAMES, targets_compute
from portfolios.forms import PortfolioForm
from portfolios.models import Portfolio
from portfolios.services.rebalancing import rebalance_run_create

from .execution_factories import EXACT, shares_worth
from .factories import AS_OF, make_portfolio, make_user
from .test_views_portfolio import field_errors, form_data

pytestmark = pytest.mark.django_db

THREE_FUNDS = ["SPY", "VXUS", "BND"]
ASKED = "the glide path and optimizer asked"


@pytest.fixture
def owner(client, prices):
    user = make_user("alice")
    client.force_login(user)
    return user


def test_a_new_portfolio_has_no_cap_and_two_funds_hold_the_glide_path_split(owner):
    portfolio = make_portfolio(owner, symbols=["SPY", "BND"], age=41)
    assert portfolio.max_weight == Decimal(1)
    result = targets_compute(portfolio=portfolio, as_of=AS_OF).result
    # Age 41: 88.65% aggressive, 11.35% safe of which 80% bonds.
    assert result.weights() == {"SPY": Decimal("0.9092000000"), "BND": Decimal("0.0908000000")}
    assert result.warnings == []


def test_a_cap_stores_which_fund_it_held_and_what_the_glide_path_asked(owner):
    portfolio = make_portfolio(owner, symbols=THREE_FUNDS, age=41, max_weight=Decimal("0.4"))
    result = targets_compute(portfolio=portfolio, as_of=AS_OF).result
    assert result.weights() == {"SPY": Decimal("0.4"), "VXUS": Decimal("0.4"), "BND": Decimal("0.2")}
    stored = OptimizationResult.objects.get(pk=result.pk).warnings
    capped = stored[0]
    assert (capped["subject"], capped["setting"], capped["weight"]) == ("SPY", "max_weight", 0.4)
    assert capped["asked"] > 0.4
    assert capped["message"] == f"SPY capped at 40% by the maximum weight ({ASKED} {capped['asked'] * 100:.2f}%)"
    assert {warning["subject"] for warning in stored[1:]} == {"VXUS", "BND"}
    assert all("it holds the weight taken from SPY" in warning["message"] for warning in stored[1:])


def test_the_portfolio_page_and_the_report_show_the_warnings_next_to_the_targets(client, owner):
    holdings = {symbol: shares_worth(Decimal(2000), symbol) for symbol in THREE_FUNDS}
    portfolio = make_portfolio(
        owner,
        symbols=THREE_FUNDS,
        holdings=holdings,
        cash_usd=Decimal(500),
        **{**EXACT, "age": 41, "max_weight": Decimal("0.4"), "min_trade_usd": Decimal(1)},
    )
    run = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run
    message = run.optimization_result.warnings[0]["message"]
    assert message.startswith("SPY capped at 40% by the maximum weight")
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert 'id="target-warnings"' in page and message in page
    report = client.get(reverse("run_report", args=[run.pk])).content.decode()
    assert "What the weight bounds changed" in report and message in report


def test_no_warning_is_shown_when_no_bound_moved_the_targets(client, owner):
    portfolio = make_portfolio(owner, symbols=THREE_FUNDS, age=41)
    targets_compute(portfolio=portfolio, as_of=AS_OF)
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert 'id="target-warnings"' not in page


# -- the settings form ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"symbols": "SPY, BND", "max_weight": "0.4"},
            "max_weight",
            "Maximum weight: 2 assets at most 40% each add up to 80%; raise it to at least 50% or add assets",
        ),
        (
            {"symbols": "SPY, VXUS, BND", "min_weight": "0.4"},
            "min_weight",
            "Minimum weight: 3 assets at least 40% each add up to 120%; lower it to at most 33.33% or remove assets",
        ),
        (
            {"symbols": "SPY, VXUS", "group_limits": "bonds >= 20%"},
            "group_limits",
            "Group limits: group bond >= 0.2 cannot be met: no asset in the universe belongs to 'bond'; add such "
            "assets or remove the limit",
        ),
        (
            {"symbols": "SPY, VXUS, BND", "max_weight": "0.4", "weight_overrides": '{"SPY": [0.5, null]}'},
            "weight_overrides",
            "Weight overrides: SPY's minimum 50% (its override) is above its maximum 40% (Maximum weight); change "
            "its override",
        ),
        (
            {"symbols": "SPY, VXUS, BND", "weight_overrides": '{"SPY": [0.7, null], "BND": [0.5, null]}'},
            "weight_overrides",
            "Weight overrides: the overrides' minimums add up to 120% (BND 50% + SPY 70%); lower them",
        ),
    ],
)
def test_settings_no_weights_can_meet_are_refused_at_their_field(client, owner, changes, field, message):
    response = client.post(reverse("portfolio_create"), form_data(name="Infeasible", **changes))
    assert response.status_code == 400
    assert field_errors(response, field) == message
    assert escape(message) in response.content.decode()
    assert not Portfolio.objects.filter(name="Infeasible").exists()


def test_a_cap_two_funds_can_meet_is_saved(client, owner):
    response = client.post(reverse("portfolio_create"), form_data(name="Pair", symbols="SPY, BND", max_weight="0.5"))
    assert response.status_code == 302
    assert Portfolio.objects.get(name="Pair").max_weight == Decimal("0.5")


def test_the_messages_name_the_settings_as_the_form_labels_them(owner):
    form = PortfolioForm(user=owner)
    assert PORTFOLIO_SETTING_NAMES.min_weight == form.fields["min_weight"].label
    assert PORTFOLIO_SETTING_NAMES.max_weight == form.fields["max_weight"].label
    assert PORTFOLIO_SETTING_NAMES.weight_overrides == form.fields["weight_overrides"].label
    assert PORTFOLIO_SETTING_NAMES.groups == form.fields["group_limits"].label
