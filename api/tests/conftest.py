"""Fixtures of the API tests: two users with their data, token clients, a clean throttle cache."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient

from api.services import api_token_create
from brokers.services.accounts import broker_account_create
from portfolios.tests.execution_factories import paper_portfolio, planned_run
from portfolios.tests.factories import make_user


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(db):
    """Every API test uses the database; throttle counts live in the cache and start from zero."""
    cache.clear()
    yield
    cache.clear()


def token_client(user, name: str = "tests") -> APIClient:
    _, key = api_token_create(user=user, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@dataclass
class World:
    """One user's data: a paper-broker portfolio with holdings and a planned run, a spare broker account."""

    user: object
    client: APIClient
    portfolio: object
    run: object
    spare_account: object


def build_world(username: str) -> World:
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=500, username=username)
    user = portfolio.owner
    run = planned_run(portfolio)
    spare = broker_account_create(owner=user, kind="paper", label=f"Spare {username}")
    return World(user=user, client=token_client(user), portfolio=portfolio, run=run, spare_account=spare)


@pytest.fixture
def owner(prices, clock) -> World:
    return build_world("alice")


@pytest.fixture
def other(prices, clock) -> World:
    return build_world("mallory")


@pytest.fixture
def alice_client(db):
    return token_client(make_user("alice"))


@pytest.fixture
def test_connection_kept():
    """The app is called through WSGI, not Django's test client: like that client, keep the end of a
    request from closing the test's database connection (PostgreSQL; its transaction holds the data)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
