"""Bad input is refused with a 400 that names the field, and nothing is saved: non-standard JSON
numbers, numbers Python would read but a person does not mean, symbols that change when
upper-cased, control characters, over-long text, and bodies built to crash a parser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from brokers.models import BrokerAccount
from portfolios.models import Holding, Portfolio


def holdings_url(world) -> str:
    return reverse("api:portfolio-holdings", kwargs={"pk": world.portfolio.pk})


def raw(client, method: str, url: str, body: str):
    """``body`` sent as it is (not rendered by the client's own JSON encoder)."""
    return getattr(client, method)(url, data=body, content_type="application/json")


def stored_holdings(portfolio) -> dict[str, Decimal]:
    return dict(Holding.objects.filter(portfolio=portfolio).values_list("instrument__symbol", "quantity"))


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        ("NaN", "quantity"),
        ("Infinity", "quantity"),
        ("-Infinity", "quantity"),
        ("1e309", "quantity"),
        ("123456789012345678901234567890", "quantity"),
        ("1.0000000001", "quantity"),
        ("1.00000000000000000001", "quantity"),  # a float would read 1.0 and let it in
        ('"1_000"', "quantity"),
        ('"\uff11\uff12"', "quantity"),  # full-width digits
        ('"\u0661\u0662"', "quantity"),  # Arabic-Indic digits
        ('"1e3"', "quantity"),
        ('" 12"', "quantity"),
        ('""', "quantity"),
        ("true", "quantity"),
    ],
)
def test_numbers_outside_the_plain_grammar_are_400_naming_the_field(owner, literal, field):
    before = stored_holdings(owner.portfolio)
    body = f'{{"holdings": [{{"symbol": "SPY", "quantity": {literal}}}]}}'
    response = raw(owner.client, "put", holdings_url(owner), body)
    assert response.status_code == 400, response.content
    assert field in response.json()["holdings"]["0"], response.json()
    assert stored_holdings(owner.portfolio) == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e309", "12345678901234567890123456789.5", '"1_000"', '""'])
def test_cash_refuses_the_same_numbers(owner, literal):
    url = reverse("api:portfolio-cash", kwargs={"pk": owner.portfolio.pk})
    cash_before = Portfolio.objects.get(pk=owner.portfolio.pk).cash_usd
    response = raw(owner.client, "put", url, f'{{"cash_usd": {literal}}}')
    assert response.status_code == 400 and "cash_usd" in response.json(), response.content
    assert Portfolio.objects.get(pk=owner.portfolio.pk).cash_usd == cash_before


def test_json_numbers_are_read_exactly(owner):
    """A JSON number with more digits than a float holds is stored as written, not rounded."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores decimals as floats of 15 digits: exact storage is PostgreSQL's")
    body = '{"holdings": [{"symbol": "SPY", "quantity": 12345678.123456789}], "cash_usd": 0.1}'
    response = raw(owner.client, "put", holdings_url(owner), body)
    assert response.status_code == 200, response.content
    assert stored_holdings(owner.portfolio)["SPY"] == Decimal("12345678.123456789")
    assert response.json()["holdings"][-1]["quantity"] == "12345678.123456789"
    assert Portfolio.objects.get(pk=owner.portfolio.pk).cash_usd == Decimal("0.1")


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("ß", "ticker symbol"),  # "ß".upper() == "SS": refused, not read as another symbol
        ("SPY\x00", "ticker symbol"),
        ("S P Y", "ticker symbol"),
        (" SPY", "spaces"),
        ("SPYSPYSPYSPYSPYSPYSPY", "ticker symbol"),
    ],
)
def test_symbols_that_are_not_ticker_symbols_are_400(owner, symbol, message):
    before = stored_holdings(owner.portfolio)
    response = owner.client.put(holdings_url(owner), {"holdings": [{"symbol": symbol, "quantity": "1"}]}, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["holdings"]["0"]["symbol"][0]
    assert stored_holdings(owner.portfolio) == before


@pytest.mark.parametrize("key", ["SP\x00Y", "ß", "spy ", ""])
def test_target_weights_with_a_bad_symbol_are_400(owner, key):
    url = reverse("api:portfolio-targets", kwargs={"pk": owner.portfolio.pk})
    before = Portfolio.objects.get(pk=owner.portfolio.pk).manual_targets
    response = owner.client.put(url, {"weights": {key: "0.5", "BND": "0.5"}}, format="json")
    assert response.status_code == 400, response.content
    assert key in response.json()["weights"]
    assert Portfolio.objects.get(pk=owner.portfolio.pk).manual_targets == before


@pytest.mark.parametrize(
    ("url_name", "body", "field"),
    [
        ("portfolio-detail", {"name": "Core\x00"}, "name"),
        ("portfolio-detail", {"name": "x" * 131_073}, "name"),
        ("portfolio-detail", {"group_limits": ["bonds >= 20%\x07"]}, "group_limits"),
        ("portfolio-detail", {"fallbacks": ["x" * 201]}, "fallbacks"),
        ("portfolio-detail", {"age": "40"}, "age"),
        ("portfolio-detail", {"age": 40.5}, "age"),
        ("portfolio-detail", {"age": 10**30}, "age"),
        ("portfolio-detail", {"band_trigger": "yes"}, "band_trigger"),
        ("portfolio-detail", {"band_abs": ""}, "band_abs"),
        ("portfolio-detail", {"calendar": ""}, "calendar"),
        ("portfolio-detail", {"glide_path_knots": [[40, "0.9"]]}, "glide_path_knots"),
        ("portfolio-detail", {"weight_overrides": {"ß": [None, 0.3]}}, "weight_overrides"),
        ("portfolio-detail", {"broker_account": "1_000"}, "broker_account"),
        ("broker-account-detail", {"label": "Paper\x00"}, "label"),
        ("broker-account-detail", {"label": "x" * 101}, "label"),
        ("broker-account-detail", {"label": 12}, "label"),
    ],
)
def test_stored_text_and_settings_refuse_what_their_schema_refuses(owner, url_name, body, field):
    obj = owner.portfolio if url_name == "portfolio-detail" else owner.spare_account
    url = reverse(f"api:{url_name}", kwargs={"pk": obj.pk})
    model = type(obj)
    before = model.objects.filter(pk=obj.pk).values().get()
    response = owner.client.patch(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert model.objects.filter(pk=obj.pk).values().get() == before


def test_no_calendar_is_null_both_ways(owner):
    url = reverse("api:portfolio-detail", kwargs={"pk": owner.portfolio.pk})
    response = owner.client.patch(url, {"calendar": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["calendar"] is None
    assert Portfolio.objects.get(pk=owner.portfolio.pk).calendar == ""
    assert owner.client.patch(url, {"calendar": "monthly"}, format="json").json()["calendar"] == "monthly"


def test_deeply_nested_body_is_400_not_a_crash(owner):
    response = raw(owner.client, "put", holdings_url(owner), "[" * 200_000)
    assert response.status_code == 400
    assert response.json()["non_field_errors"]


@pytest.mark.parametrize("body", ["{", '{"holdings": [}', "\xff"])
def test_malformed_json_is_400_in_the_error_shape(owner, body):
    response = raw(owner.client, "put", holdings_url(owner), body)
    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith("JSON parse error")


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("page_size=null", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=1_0", "page_size"),
        ("page=last", "page"),
        ("page=%EF%BC%92", "page"),  # a full-width 2
        ("ordering=colour", "ordering"),
        ("ordering=", "ordering"),
        ("ordering=name,id", "ordering"),
        ("active=yes", "active"),
        ("active=", "active"),
        ("mode=", "mode"),
        ("mode=sometimes", "mode"),
        ("name=a%00b", "name"),
    ],
)
def test_list_parameters_outside_their_schema_are_400_naming_them(owner, query, param):
    response = owner.client.get(reverse("api:portfolio-list") + "?" + query)
    assert response.status_code == 400, response.content
    assert param in response.json()


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("portfolio=1_0", "portfolio"),
        ("date=2025-1-5", "date"),
        ("trading_date_after=20250105", "trading_date_after"),
        ("status=", "status"),
    ],
)
def test_run_filters_outside_their_schema_are_400(owner, query, param):
    response = owner.client.get(reverse("api:run-list") + "?" + query)
    assert response.status_code == 400, response.content
    assert param in response.json()


def test_ordering_by_a_listed_field_works(owner):
    response = owner.client.get(reverse("api:broker-account-list") + "?ordering=-label")
    assert response.status_code == 200
    labels = [account["label"] for account in response.json()["results"]]
    assert labels == sorted(labels, reverse=True)


@pytest.mark.parametrize("query", ["symbols=SPY,,BND", "symbols=SPY, BND", "symbols=ß", "start=2025-6-2&symbols=SPY"])
def test_price_queries_outside_their_schema_are_400(owner, query):
    response = owner.client.get(reverse("api:prices") + "?" + query)
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("key", ["", " padded ", "x" * 256, "tab\tinside", "naïve"])
def test_bad_idempotency_keys_are_400_and_plan_nothing(owner, key):
    url = reverse("api:portfolio-rebalance", kwargs={"pk": owner.portfolio.pk})
    runs_before = owner.portfolio.runs.count()
    response = owner.client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()
    assert owner.portfolio.runs.count() == runs_before


def test_patch_is_live_on_a_paper_account_is_400_like_creating_one(owner):
    url = reverse("api:broker-account-detail", kwargs={"pk": owner.spare_account.pk})
    response = owner.client.patch(url, {"is_live": True}, format="json")
    assert response.status_code == 400 and "is_live" in response.json()
    assert not BrokerAccount.objects.get(pk=owner.spare_account.pk).is_live
    created = owner.client.post(
        reverse("api:broker-account-list"), {"label": "Live paper", "is_live": True}, format="json"
    )
    assert created.status_code == 400 and "is_live" in created.json()


def test_paper_cash_and_session_mode_are_read_back(owner):
    response = owner.client.post(
        reverse("api:broker-account-list"),
        {"label": "Practice", "paper_cash_usd": "2500.5", "paper_session_mode": "always_open"},
        format="json",
    )
    assert response.status_code == 201, response.content
    account = owner.client.get(reverse("api:broker-account-detail", kwargs={"pk": response.json()["id"]})).json()
    assert account["paper_cash_usd"] == "2500.5000" and account["paper_session_mode"] == "always_open"


def test_options_on_swagger_ui_is_405_not_a_crash(db):
    response = Client(raise_request_exception=True).options("/api/docs/")
    assert response.status_code == 405


def test_an_anonymous_call_is_401_whatever_the_rate(db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1/min", "anon": "1/min", "ip": "1/min"},
    }
    statuses = {Client().get(reverse("api:portfolio-list")).status_code for _ in range(5)}
    assert statuses == {401}
