"""The what-if preview (stores nothing), saving exactly what was previewed, and re-planning after a
change through the API: a new run supersedes the stored one until it trades."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from portfolios.models import RebalanceRun
from portfolios.services.execution.lease import lease_claim, new_owner
from portfolios.tests.execution_factories import AS_OF, paper_portfolio

from .conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(prices, clock):
    return paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=Decimal(500), mode="propose")


def post(client, portfolio, name, body):
    return client.post(reverse(f"api:portfolio-{name}", kwargs={"pk": portfolio.pk}), body, format="json")


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_a_preview_answers_the_plan_and_stores_nothing(portfolio):
    client = token_client(portfolio.owner)
    before = row_counts()
    response = post(client, portfolio, "preview", {"as_of": AS_OF.isoformat(), "cash_flow_usd": "500"})
    assert response.status_code == 200, response.content
    assert row_counts() == before
    preview = response.json()
    assert preview["status"] == "planned" and preview["cash_flow_usd"] == "500.0000"
    # A deposit with no strategy chosen buys the most underweight holding only.
    assert {t["symbol"]: t["side"] for t in preview["trades"]} == {"BND": "buy"}
    assert all(t["reason"] for t in preview["trades"])
    assert Decimal(preview["drift_after"]) < Decimal(preview["drift_before"])
    assert sorted(n["symbol"] for n in preview["needs"]) == ["BND", "SPY"]
    assert len(preview["inputs_fingerprint"]) == 64


def test_a_preview_with_a_strategy_and_a_withdrawal(portfolio):
    client = token_client(portfolio.owner)
    body = {"as_of": AS_OF.isoformat(), "cash_flow_usd": "-2000", "strategy": "cash_flow"}
    preview = post(client, portfolio, "preview", body).json()
    assert preview["strategy"] == "cash_flow"
    assert {t["side"] for t in preview["trades"]} == {"sell"}  # a withdrawal sells the most overweight first
    assert [t["symbol"] for t in preview["trades"]] == ["SPY"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"strategy": "fastest"}, "strategy"), ({"cash_flow_usd": "lots"}, "cash_flow_usd"), ({"x": 1}, "x")],
)
def test_bad_preview_input_is_400_naming_the_field(portfolio, body, field):
    response = post(token_client(portfolio.owner), portfolio, "preview", body)
    assert response.status_code == 400 and field in response.json()


def test_save_as_plan_stores_exactly_what_was_previewed(portfolio):
    client = token_client(portfolio.owner)
    body = {"as_of": AS_OF.isoformat(), "cash_flow_usd": "1000"}
    preview = post(client, portfolio, "preview", body).json()
    saved = post(client, portfolio, "rebalance", {**body, "inputs_fingerprint": preview["inputs_fingerprint"]})
    assert saved.status_code == 201, saved.content
    run = saved.json()
    assert run["inputs_fingerprint"] == preview["inputs_fingerprint"]
    assert [(t["symbol"], t["side"], t["quantity"]) for t in run["trades"]] == [
        (t["symbol"], t["side"], t["quantity"]) for t in preview["trades"]
    ]
    assert (run["drift_after"], run["total_cost_usd"]) == (preview["drift_after"], preview["total_cost_usd"])


def test_save_as_plan_after_a_change_is_409_and_stores_nothing(portfolio):
    client = token_client(portfolio.owner)
    preview = post(client, portfolio, "preview", {"as_of": AS_OF.isoformat()}).json()
    cash = reverse("api:portfolio-cash", kwargs={"pk": portfolio.pk})
    assert client.put(cash, {"cash_usd": "900"}, format="json").status_code == 200
    saved = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat(), **preview_key(preview)})
    assert saved.status_code == 409 and "changed since the preview" in saved.json()["detail"]
    assert not RebalanceRun.objects.exists()


def preview_key(preview: dict) -> dict:
    return {"inputs_fingerprint": preview["inputs_fingerprint"]}


def test_a_change_then_rebalance_supersedes_the_stored_run(portfolio):
    client = token_client(portfolio.owner)
    first = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat()}).json()
    same = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat()})
    assert same.status_code == 200 and same.json()["id"] == first["id"]  # nothing changed

    holdings = reverse("api:portfolio-holdings", kwargs={"pk": portfolio.pk})
    assert (
        client.patch(holdings, {"holdings": [{"symbol": "BND", "quantity": "100"}]}, format="json").status_code == 200
    )
    second = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat()})
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    old = RebalanceRun.objects.get(pk=first["id"])
    assert old.superseded_by_id == second.json()["id"]
    assert RebalanceRun.objects.active().get().pk == second.json()["id"]


def test_a_change_while_the_run_is_being_executed_is_409_naming_it(portfolio):
    client = token_client(portfolio.owner)
    first = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat()}).json()
    lease_claim(RebalanceRun.objects.get(pk=first["id"]), new_owner())
    holdings = reverse("api:portfolio-holdings", kwargs={"pk": portfolio.pk})
    assert (
        client.patch(holdings, {"holdings": [{"symbol": "BND", "quantity": "100"}]}, format="json").status_code == 200
    )
    again = post(client, portfolio, "rebalance", {"as_of": AS_OF.isoformat()})
    assert again.status_code == 409
    assert f"run {first['id']} of 2025-06-30 is being executed" in again.json()["detail"]
    assert RebalanceRun.objects.count() == 1


def test_another_users_portfolio_cannot_be_previewed(portfolio, prices):
    other = paper_portfolio(holdings_usd={"SPY": 1000}, username="bob")
    response = post(token_client(portfolio.owner), other, "preview", {})
    assert response.status_code == 404


def test_a_preview_of_a_portfolio_the_optimizer_cannot_plan_is_422_naming_why(prices, clock):
    """Found by the API fuzzing: no instruments and no manual targets answered a 500."""
    from portfolios.tests.factories import make_portfolio, make_user

    user = make_user("carol")
    portfolio = make_portfolio(user, symbols=[])
    response = post(token_client(user), portfolio, "preview", {"cash_flow_usd": ".90", "strategy": "cash_flow"})
    assert response.status_code == 422
    assert "has no instruments; add the assets it may hold" in response.json()["detail"]
