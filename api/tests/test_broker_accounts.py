"""Broker accounts: CRUD with write-only credentials (never returned), the password for sensitive changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from brokers.crypto import decrypt_credentials
from brokers.models import BrokerAccount
from portfolios.tests.factories import make_user

from .conftest import token_client

LIST = reverse("api:broker-account-list")
SECRET = "supersecretkey123"


@pytest.fixture
def alice(db):
    user = make_user("alice")
    user.set_password("correct horse battery")
    user.save()
    return user


def test_create_alpaca_with_credentials_never_returns_them(alice):
    client = token_client(alice)
    body = {
        "kind": "alpaca",
        "label": "Alpaca paper",
        "credentials": {"api_key": "AKEXAMPLE123", "secret_key": SECRET},
        "password": "correct horse battery",
    }
    response = client.post(LIST, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["credentials"] == {"api_key": "set", "secret_key": "set"}
    account = BrokerAccount.objects.get(pk=response.json()["id"])
    assert decrypt_credentials(account.credentials_encrypted)["secret_key"] == SECRET
    for text in (
        response.content,
        client.get(LIST).content,
        client.get(reverse("api:broker-account-detail", kwargs={"pk": account.pk})).content,
    ):
        assert SECRET.encode() not in text and b"AKEXAMPLE123" not in text and b"credentials_encrypted" not in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "alpaca", "label": "A", "credentials": {"api_key": "AKEXAMPLE123"}}, "password"),
        ({"kind": "alpaca", "label": "A", "credentials": {"api_key": "AKEXAMPLE123"}, "password": "wrong"}, "password"),
        (
            {
                "kind": "alpaca",
                "label": "A",
                "credentials": {"api_key": "bad key"},
                "password": "correct horse battery",
            },
            "credentials",
        ),
        (
            {"kind": "paper", "label": "A", "credentials": {"host": "x"}, "password": "correct horse battery"},
            "credentials",
        ),
        ({"kind": "paper", "label": "A", "is_live": True, "password": "correct horse battery"}, "is_live"),
        ({"kind": "paper", "label": "A", "credentials": {"token": "x"}}, "credentials"),
        ({"kind": "nasdaq", "label": "A"}, "kind"),
        ({"kind": "paper", "label": "A", "paper_cash_usd": "-5"}, "paper_cash_usd"),
        ({"kind": "paper", "label": "A", "owner": 2}, "owner"),
    ],
)
def test_bad_input_is_400_and_nothing_is_created(alice, body, field):
    response = token_client(alice).post(LIST, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not BrokerAccount.objects.exists()


def test_update_credentials_and_label(alice):
    client = token_client(alice)
    account = client.post(LIST, {"kind": "alpaca", "label": "A"}, format="json").json()
    url = reverse("api:broker-account-detail", kwargs={"pk": account["id"]})
    response = client.patch(url, {"credentials": {"secret_key": SECRET}}, format="json")
    assert response.status_code == 400 and "password" in response.json()
    response = client.patch(
        url, {"label": "B", "credentials": {"secret_key": SECRET}, "password": "correct horse battery"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["label"] == "B" and response.json()["credentials"]["secret_key"] == "set"
    assert SECRET.encode() not in response.content


def test_delete_an_account_that_backs_a_portfolio_is_409(owner):
    url = reverse("api:broker-account-detail", kwargs={"pk": owner.portfolio.broker_account_id})
    response = owner.client.delete(url)
    assert response.status_code == 409
    assert BrokerAccount.objects.filter(pk=owner.portfolio.broker_account_id).exists()
