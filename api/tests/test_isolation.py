"""The isolation matrix: every endpoint x every method x (owner, other user, anonymous).

The endpoints come from the URL conf; a meta-test fails when one is missing here. The other
user gets 404 for the owner's objects (never a 403, never their data) and changes nothing.
"""

from __future__ import annotations

import json

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse
from rest_framework.test import APIClient

from api import urls as api_urls
from api.models import IdempotencyKey
from brokers.models import BrokerAccount, Order
from portfolios.models import Holding, Portfolio, RebalanceRun

METHODS = ["get", "post", "put", "patch", "delete"]

# (url name, method) -> (url kwargs kind, body, owner's status, other user's status).
# kwargs kind: None (a list), "portfolio", "run", "account" (the owner's object of that kind).
# An object endpoint answers the other user 404 whatever the body: the lookup comes first.
MATRIX = {
    ("portfolio-list", "get"): (None, None, 200, 200),
    ("portfolio-list", "post"): (
        None,
        {"name": "New", "symbols": ["SPY", "BND", "QQQ"], "max_weight": "0.5"},
        201,
        201,
    ),
    ("portfolio-detail", "get"): ("portfolio", None, 200, 404),
    ("portfolio-detail", "put"): ("portfolio", {"name": "Renamed", "band_abs": "0.04"}, 200, 404),
    ("portfolio-detail", "patch"): ("portfolio", {"band_abs": "0.03"}, 200, 404),
    ("portfolio-detail", "delete"): ("portfolio", None, 204, 404),
    ("portfolio-holdings", "get"): ("portfolio", None, 200, 404),
    ("portfolio-holdings", "put"): ("portfolio", {"holdings": [{"symbol": "SPY", "quantity": "1"}]}, 200, 404),
    ("portfolio-holdings", "patch"): ("portfolio", {"holdings": [{"symbol": "QQQ", "quantity": "2"}]}, 200, 404),
    ("portfolio-cash", "get"): ("portfolio", None, 200, 404),
    ("portfolio-cash", "put"): ("portfolio", {"cash_usd": "123.45"}, 200, 404),
    ("portfolio-targets", "get"): ("portfolio", None, 200, 404),
    ("portfolio-targets", "put"): ("portfolio", {"weights": {"SPY": "0.5", "BND": "0.5"}}, 200, 404),
    ("portfolio-rebalance", "post"): ("portfolio", {}, 200, 404),  # today's run is stored: answered again
    ("portfolio-preview", "post"): ("portfolio", {}, 200, 404),
    ("portfolio-sync", "get"): ("portfolio", None, 200, 404),
    ("portfolio-sync", "post"): ("portfolio", None, 200, 404),
    ("run-list", "get"): (None, None, 200, 200),
    ("run-detail", "get"): ("run", None, 200, 404),
    ("run-approve", "post"): ("run", {}, 200, 404),
    ("broker-account-list", "get"): (None, None, 200, 200),
    ("broker-account-list", "post"): (None, {"label": "Another", "paper_cash_usd": "10"}, 201, 201),
    ("broker-account-detail", "get"): ("account", None, 200, 404),
    ("broker-account-detail", "put"): ("account", {"label": "Renamed"}, 200, 404),
    ("broker-account-detail", "patch"): ("account", {"label": "Renamed again"}, 200, 404),
    ("broker-account-detail", "delete"): ("account", None, 204, 404),
    ("instrument-list", "get"): (None, None, 200, 200),
    ("prices", "get"): (None, None, 200, 200),
}
QUERY = {"prices": "?symbols=SPY,BND&start=2025-06-02&end=2025-06-30"}


def endpoints() -> set[tuple[str, str]]:
    """Every (url name, method) the API's URL conf serves (OPTIONS and HEAD aside)."""
    found = set()
    for pattern in api_urls.v1:
        view_class = pattern.callback.view_class
        for method in METHODS:
            if hasattr(view_class, method):
                found.add((pattern.name, method))
    return found


def test_every_endpoint_is_in_the_matrix():
    served = endpoints()
    assert served - set(MATRIX) == set(), "add these endpoints to MATRIX"
    assert set(MATRIX) - served == set(), "these MATRIX entries are not served any more"


def url_of(name: str, kind: str | None, world) -> str:
    objects = {"portfolio": world.portfolio, "run": world.run, "account": world.spare_account}
    kwargs = {"pk": objects[kind].pk} if kind else {}
    return reverse(f"api:{name}", kwargs=kwargs) + QUERY.get(name, "")


def call(client: APIClient, method: str, url: str, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def state_of(world) -> dict:
    """Everything of the user's that a request could change."""
    user = world.user
    return {
        "portfolios": [
            {**model_to_dict(p, exclude=["instruments"]), "symbols": sorted(i.symbol for i in p.instruments.all())}
            for p in Portfolio.objects.filter(owner=user).order_by("pk")
        ],
        "holdings": list(
            Holding.objects.filter(portfolio__owner=user).order_by("pk").values("portfolio", "instrument", "quantity")
        ),
        "runs": list(RebalanceRun.objects.filter(portfolio__owner=user).order_by("pk").values("pk", "status")),
        "accounts": list(BrokerAccount.objects.filter(owner=user).order_by("pk").values()),
        "orders": list(Order.objects.filter(account__owner=user).values_list("pk", flat=True)),
        "keys": list(IdempotencyKey.objects.filter(user=user).values_list("pk", flat=True)),
    }


CASES = sorted(MATRIX)


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_owner(owner, name, method):
    kind, body, expected, _ = MATRIX[(name, method)]
    response = call(owner.client, method, url_of(name, kind, owner), body)
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_other_user_gets_404_and_changes_nothing(owner, other, name, method):
    kind, body, _, expected = MATRIX[(name, method)]
    before = state_of(owner)
    response = call(other.client, method, url_of(name, kind, owner), body)
    assert response.status_code == expected, response.content
    assert state_of(owner) == before
    # Nothing of the owner's comes back (lists hold the other user's own objects only).
    assert f"Spare {owner.user.username}" not in response.content.decode()


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_anonymous_gets_401_and_changes_nothing(owner, name, method):
    kind, body, _, _ = MATRIX[(name, method)]
    before = state_of(owner)
    response = call(APIClient(), method, url_of(name, kind, owner), body)
    assert response.status_code == 401, response.content
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state_of(owner) == before


def test_lists_show_only_the_users_own_objects(owner, other):
    for name, field in (("portfolio-list", "id"), ("run-list", "id"), ("broker-account-list", "id")):
        ids = {row[field] for row in other.client.get(reverse(f"api:{name}")).json()["results"]}
        mine = {row[field] for row in owner.client.get(reverse(f"api:{name}")).json()["results"]}
        assert ids and mine and not ids & mine


def test_related_fields_are_scoped_to_the_user(owner, other):
    """Another user's broker account is not a choice for a portfolio, nor another user's portfolio a run filter."""
    url = reverse("api:portfolio-detail", kwargs={"pk": other.portfolio.pk})
    response = other.client.patch(url, {"broker_account": owner.spare_account.pk}, format="json")
    assert response.status_code == 400
    assert "broker_account" in response.json()
    assert other.portfolio.__class__.objects.get(pk=other.portfolio.pk).broker_account_id != owner.spare_account.pk
    response = other.client.get(reverse("api:run-list") + f"?portfolio={owner.portfolio.pk}")
    assert response.status_code == 400
    assert "portfolio" in response.json()
