"""Portfolio CRUD: every policy setting, validated by the same rules (and messages) as the settings page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portfolios.forms import PortfolioForm
from portfolios.models import Portfolio
from portfolios.tests.factories import load_sample_prices, make_portfolio, make_user

from .conftest import token_client

LIST = reverse("api:portfolio-list")


@pytest.fixture
def alice(db):
    load_sample_prices()
    return make_user("alice")


def detail(portfolio) -> str:
    return reverse("api:portfolio-detail", kwargs={"pk": portfolio.pk})


def test_create_with_settings_and_read_back(alice):
    client = token_client(alice)
    body = {
        "name": "Retirement",
        "symbols": ["spy", "BND", "QQQ"],
        "max_weight": "0.6",
        "band_mode": "absolute",
        "band_abs": 0.04,
        "fallbacks": ["min_volatility", "equal_weight"],
        "group_limits": ["bonds >= 20%"],
        "glide_path_knots": [[40, 0.9], [65, 0.5]],
        "weight_overrides": {"QQQ": [None, 0.3]},
        "do_not_trade": ["BND"],
        "mode": "propose",
    }
    response = client.post(LIST, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["symbols"] == ["BND", "QQQ", "SPY"]
    assert data["band_abs"] == "0.0400" and data["max_weight"] == "0.6000"
    assert data["glide_path_knots"] == [[40, 0.9], [65, 0.5]]
    portfolio = Portfolio.objects.get(pk=data["id"])
    assert portfolio.owner == alice and portfolio.fallbacks == ["min_volatility", "equal_weight"]
    assert client.get(detail(portfolio)).json() == data


def form_errors(portfolio, **changes) -> dict:
    """What the settings page says for the same change."""
    blank = PortfolioForm(instance=portfolio, user=portfolio.owner)
    from api.serializers.portfolios import _as_form_text

    data = {name: _as_form_text(field, blank.initial.get(name, field.initial)) for name, field in blank.fields.items()}
    data.update(changes)
    form = PortfolioForm(data, instance=portfolio, user=portfolio.owner)
    assert not form.is_valid()
    return dict(form.errors)


@pytest.mark.parametrize(
    ("change", "form_change", "field"),
    [
        ({"min_weight": "0.5"}, {"min_weight": "0.5"}, "min_weight"),
        ({"band_abs": "2"}, {"band_abs": "2"}, "band_abs"),
        ({"strategy": "astrology"}, {"strategy": "astrology"}, "strategy"),
        ({"strategy": "evil.module.Class"}, {"strategy": "evil.module.Class"}, "strategy"),
        ({"symbols": ["NOPE"]}, {"symbols": "NOPE"}, "symbols"),
        ({"group_limits": ["bonds >= 120%"]}, {"group_limits": "bonds >= 120%"}, "group_limits"),
        ({"manual_targets": {"SPY": "0.7"}}, {"manual_targets": '{"SPY": 0.7}'}, "manual_targets"),
        ({"age": 5}, {"age": "5"}, "age"),
    ],
)
def test_bad_settings_are_400_with_the_pages_message(alice, change, form_change, field):
    portfolio = make_portfolio(alice, max_weight="0.6")
    client = token_client(alice)
    before = client.get(detail(portfolio)).json()
    response = client.patch(detail(portfolio), change, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors
    page = form_errors(portfolio, **form_change)
    if field in page:  # a JSON type error never reaches the form
        assert errors[field] == page[field] or errors[field][0] in page[field][0] or field == "age"
    assert client.get(detail(portfolio)).json() == before


@pytest.mark.parametrize(
    "change",
    [
        {"band_abs": "NaN"},
        {"band_abs": "Infinity"},
        {"band_abs": True},
        {"risk_free_rate": "-Infinity"},
        {"glide_path_knots": [[40, "nan"]]},
        {"nonsense": 1},
        {"name": ""},
        {"symbols": "SPY"},
        {"mode": "yolo"},
    ],
)
def test_malformed_values_are_400_and_nothing_changes(alice, change):
    portfolio = make_portfolio(alice, max_weight="0.6")
    client = token_client(alice)
    before = client.get(detail(portfolio)).json()
    response = client.patch(detail(portfolio), change, format="json")
    assert response.status_code == 400, response.content
    assert set(change) <= set(response.json())
    assert client.get(detail(portfolio)).json() == before


def test_duplicate_name_is_refused(alice):
    make_portfolio(alice, name="Core")
    response = token_client(alice).post(LIST, {"name": "core", "symbols": ["SPY"], "max_weight": "1"}, format="json")
    assert response.status_code == 400 and "already have a portfolio named" in response.json()["name"][0]


def test_patch_changes_only_what_it_names(alice):
    portfolio = make_portfolio(alice, max_weight="0.6", band_abs="0.05")
    response = token_client(alice).patch(detail(portfolio), {"band_abs": "0.03"}, format="json")
    assert response.status_code == 200, response.content
    portfolio.refresh_from_db()
    assert str(portfolio.band_abs) == "0.0300" and str(portfolio.max_weight) == "0.6000"
    assert sorted(portfolio.instruments.values_list("symbol", flat=True)) == ["BND", "QQQ", "SPY", "VXUS"]


def test_delete(alice):
    portfolio = make_portfolio(alice)
    assert token_client(alice).delete(detail(portfolio)).status_code == 204
    assert not Portfolio.objects.filter(pk=portfolio.pk).exists()


def test_list_is_paginated_filtered_and_ordered(alice):
    for number in range(7):
        make_portfolio(alice, name=f"P{number}", active=number % 2 == 0)
    client = token_client(alice)
    page = client.get(LIST + "?page_size=3&ordering=-name").json()
    assert page["count"] == 7 and [p["name"] for p in page["results"]] == ["P6", "P5", "P4"] and page["next"]
    assert client.get(LIST + "?active=false").json()["count"] == 3
    assert client.get(LIST + "?name=p1").json()["count"] == 1
    assert client.get(LIST + "?page=99").status_code == 404


def test_the_hybrid_band_unheld_targets_and_cash_flow_edge_round_trip(alice):
    client = token_client(alice)
    options = {"band_mode": "hybrid", "unheld_outside_band": True, "cash_flow_to": "band_edge"}
    created = client.post(
        LIST, {"name": "Peers", "symbols": ["SPY", "BND"], "max_weight": "1", **options}, format="json"
    )
    assert created.status_code == 201, created.content
    assert {name: created.json()[name] for name in options} == options
    portfolio = Portfolio.objects.get(pk=created.json()["id"])
    assert (portfolio.band_mode, portfolio.unheld_outside_band, portfolio.cash_flow_to) == ("hybrid", True, "band_edge")

    back = {"band_mode": "five_twenty_five", "unheld_outside_band": False, "cash_flow_to": "target"}
    patched = client.patch(detail(portfolio), back, format="json")
    assert patched.status_code == 200, patched.content
    assert {name: client.get(detail(portfolio)).json()[name] for name in back} == back


@pytest.mark.parametrize(
    "change",
    [
        {"band_mode": "widest"},
        {"unheld_outside_band": "sometimes"},
        {"unheld_outside_band": None},
        {"cash_flow_to": "edge"},
        {"cash_flow_to": None},
    ],
)
def test_bad_peer_options_are_400_naming_the_field(alice, change):
    portfolio = make_portfolio(alice, max_weight="0.6")
    client = token_client(alice)
    before = client.get(detail(portfolio)).json()
    response = client.patch(detail(portfolio), change, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == list(change)
    assert client.get(detail(portfolio)).json() == before
