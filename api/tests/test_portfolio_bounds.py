"""Portfolio settings no weights can meet: the API's 400 names the field with the settings page's message."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portfolios.models import Portfolio
from portfolios.tests.factories import load_sample_prices, make_portfolio, make_user

from .conftest import token_client

LIST = reverse("api:portfolio-list")


@pytest.fixture
def alice(db):
    load_sample_prices()
    return make_user("alice")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"symbols": ["SPY", "BND"], "max_weight": "0.4"},
            "max_weight",
            "Maximum weight: 2 assets at most 40% each add up to 80%; raise it to at least 50% or add assets",
        ),
        (
            {"symbols": ["SPY", "VXUS", "BND"], "min_weight": "0.4"},
            "min_weight",
            "Minimum weight: 3 assets at least 40% each add up to 120%; lower it to at most 33.33% or remove assets",
        ),
        (
            {"symbols": ["SPY", "VXUS"], "group_limits": ["bonds >= 20%"]},
            "group_limits",
            "Group limits: group bond >= 0.2 cannot be met: no asset in the universe belongs to 'bond'; add such "
            "assets or remove the limit",
        ),
        (
            {"symbols": ["SPY", "VXUS", "BND"], "max_weight": "0.4", "weight_overrides": {"SPY": [0.5, None]}},
            "weight_overrides",
            "Weight overrides: SPY's minimum 50% (its override) is above its maximum 40% (Maximum weight); change "
            "its override",
        ),
    ],
)
def test_infeasible_settings_are_a_400_naming_the_field(alice, body, field, message):
    response = token_client(alice).post(LIST, {"name": "Infeasible", **body}, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [message]}
    assert not Portfolio.objects.filter(name="Infeasible").exists()


def test_a_cap_that_leaves_no_weights_is_refused_on_update_and_nothing_changes(alice):
    portfolio = make_portfolio(alice, symbols=["SPY", "BND"])
    url = reverse("api:portfolio-detail", kwargs={"pk": portfolio.pk})
    response = token_client(alice).patch(url, {"max_weight": "0.3"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "max_weight": [
            "Maximum weight: 2 assets at most 30% each add up to 60%; raise it to at least 50% or add assets"
        ]
    }
    portfolio.refresh_from_db()
    assert portfolio.max_weight == 1
