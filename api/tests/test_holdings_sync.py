"""The sync operation: PUT the whole set, GET it back equal; a bad row changes nothing; PATCH upserts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from marketdata.models import Instrument
from portfolios.tests.factories import load_sample_prices, make_portfolio, make_user

from .conftest import token_client


@pytest.fixture
def setup(db):
    load_sample_prices()
    portfolio = make_portfolio(make_user("alice"))
    return portfolio, token_client(portfolio.owner), reverse("api:portfolio-holdings", kwargs={"pk": portfolio.pk})


def as_decimals(body: dict) -> dict:
    return {
        "cash_usd": Decimal(body["cash_usd"]),
        "holdings": {
            row["symbol"]: (
                Decimal(str(row["quantity"])),
                None if row.get("cost_basis_usd") is None else Decimal(str(row["cost_basis_usd"])),
            )
            for row in body["holdings"]
        },
    }


def test_put_then_get_round_trips(setup):
    portfolio, client, url = setup
    body = {
        "holdings": [
            {"symbol": "SPY", "quantity": "12.5", "cost_basis_usd": "5000.1234"},
            {"symbol": "bnd", "quantity": 40},
            {"symbol": "VXUS", "quantity": 0.123456789, "cost_basis_usd": None},
        ],
        "cash_usd": "1500.25",
    }
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    fetched = client.get(url).json()
    expected = as_decimals(body)
    expected["holdings"]["BND"] = expected["holdings"].pop("bnd")
    assert as_decimals(fetched) == expected
    assert response.json() == fetched
    # Held instruments join the universe.
    assert {"SPY", "BND", "VXUS"} <= set(portfolio.instruments.values_list("symbol", flat=True))


def test_put_removes_holdings_absent_from_the_body(setup):
    _, client, url = setup
    client.put(
        url, {"holdings": [{"symbol": "SPY", "quantity": "1"}, {"symbol": "BND", "quantity": "2"}]}, format="json"
    )
    client.put(url, {"holdings": [{"symbol": "BND", "quantity": "3"}]}, format="json")
    assert [row["symbol"] for row in client.get(url).json()["holdings"]] == ["BND"]


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ({"symbol": "SPY", "quantity": "-1"}, "quantity"),
        ({"symbol": "SPY", "quantity": "NaN"}, "quantity"),
        ({"symbol": "SPY", "quantity": "Infinity"}, "quantity"),
        ({"symbol": "SPY", "quantity": "1e400"}, "quantity"),
        ({"symbol": "SPY", "quantity": "1.0000000001"}, "quantity"),
        ({"symbol": "SPY", "quantity": True}, "quantity"),
        ({"symbol": "SPY", "quantity": "ten"}, "quantity"),
        ({"symbol": "SPY"}, "quantity"),
        ({"symbol": "SPY", "quantity": "1", "cost_basis_usd": "-5"}, "cost_basis_usd"),
        ({"symbol": "SPY", "quantity": "1", "colour": "red"}, "colour"),
        ({"quantity": "1"}, "symbol"),
    ],
)
def test_one_bad_row_is_400_with_its_field_and_nothing_changes(setup, bad_row, field):
    _, client, url = setup
    good = {"holdings": [{"symbol": "QQQ", "quantity": "3"}, {"symbol": "BND", "quantity": "4"}], "cash_usd": "10"}
    assert client.put(url, good, format="json").status_code == 200
    before = client.get(url).json()
    response = client.put(
        url, {"holdings": [{"symbol": "BND", "quantity": "9"}, bad_row], "cash_usd": "99"}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()["holdings"]
    assert field in errors["1"] and "0" not in errors, errors
    assert client.get(url).json() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"holdings": [{"symbol": "ZZZZ", "quantity": "1"}]}, "unknown symbol ZZZZ"),
        (
            {"holdings": [{"symbol": "SPY", "quantity": "1"}, {"symbol": "spy", "quantity": "2"}]},
            "duplicate holding for SPY",
        ),
    ],
)
def test_unknown_and_duplicate_symbols_are_refused(setup, body, message):
    _, client, url = setup
    client.put(url, {"holdings": [{"symbol": "QQQ", "quantity": "3"}]}, format="json")
    response = client.put(url, body, format="json")
    assert response.status_code == 400
    assert message in response.json()["holdings"][0]
    assert [r["symbol"] for r in client.get(url).json()["holdings"]] == ["QQQ"]


def test_create_missing_instruments_adds_them(setup):
    _, client, url = setup
    body = {"holdings": [{"symbol": "ZZZZ", "quantity": "1"}], "create_missing_instruments": True}
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert Instrument.objects.filter(symbol="ZZZZ").exists()
    assert "create_missing_instruments" not in response.json()


def test_bad_cash_in_holdings_put_changes_nothing(setup):
    _, client, url = setup
    client.put(url, {"holdings": [{"symbol": "QQQ", "quantity": "3"}], "cash_usd": "5"}, format="json")
    before = client.get(url).json()
    response = client.put(url, {"holdings": [{"symbol": "SPY", "quantity": "3"}], "cash_usd": "-1"}, format="json")
    assert response.status_code == 400 and "cash_usd" in response.json()
    assert client.get(url).json() == before


def test_patch_upserts_the_given_symbols_and_keeps_the_rest(setup):
    _, client, url = setup
    client.put(
        url, {"holdings": [{"symbol": "SPY", "quantity": "1"}, {"symbol": "BND", "quantity": "2"}]}, format="json"
    )
    response = client.patch(
        url, {"holdings": [{"symbol": "BND", "quantity": "5"}, {"symbol": "QQQ", "quantity": "7"}]}, format="json"
    )
    assert response.status_code == 200, response.content
    got = {row["symbol"]: Decimal(row["quantity"]) for row in client.get(url).json()["holdings"]}
    assert got == {"SPY": 1, "BND": 5, "QQQ": 7}


def test_cash_get_and_put(setup):
    portfolio, client, _ = setup
    url = reverse("api:portfolio-cash", kwargs={"pk": portfolio.pk})
    assert client.put(url, {"cash_usd": 1234.5}, format="json").status_code == 200
    assert Decimal(client.get(url).json()["cash_usd"]) == Decimal("1234.5")
    for bad in ("-1", "NaN", "1.00001", None, "x"):
        response = client.put(url, {"cash_usd": bad}, format="json")
        assert response.status_code == 400 and "cash_usd" in response.json(), bad
    assert client.put(url, {"cash_usd": "1", "extra": 1}, format="json").status_code == 400
    assert Decimal(client.get(url).json()["cash_usd"]) == Decimal("1234.5")


def test_json_nan_literal_is_refused(setup):
    portfolio, client, _ = setup
    url = reverse("api:portfolio-cash", kwargs={"pk": portfolio.pk})
    response = client.generic("PUT", url, '{"cash_usd": NaN}', content_type="application/json")
    assert response.status_code == 400


def test_only_json_is_accepted(setup):
    portfolio, client, _ = setup
    url = reverse("api:portfolio-cash", kwargs={"pk": portfolio.pk})
    response = client.generic("PUT", url, "cash_usd=5", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
