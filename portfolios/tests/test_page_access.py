"""Every page of the web app, found from the URL conf, for three visitors: the owner sees it, another
user gets a 404 (never a 403 or data) and changes nothing, an anonymous visitor goes to the login.

A new page is covered by adding it to ``OBJECT_OF`` (its URL argument); the first test fails until
it is, so no page can slip past these checks.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.models import ApiToken
from api.services import api_token_create
from brokers.models import BrokerAccount, Order, PaperAccount
from portfolios.models import Holding, Portfolio, RebalanceRun

from .execution_factories import paper_portfolio, planned_run
from .factories import make_user

pytestmark = pytest.mark.django_db
APPS = ("portfolios.views", "brokers.views", "api.pages")
# Which of the owner's objects a page's URL argument names (None: the page takes no argument).
OBJECT_OF = {
    "portfolio_preview": "portfolio",
    "portfolio_preview_save": "portfolio",
    "dashboard": None,
    "portfolio_create": None,
    "portfolio_detail": "portfolio",
    "portfolio_edit": "portfolio",
    "portfolio_delete": "portfolio",
    "portfolio_holdings": "portfolio",
    "portfolio_holdings_upload": "portfolio",
    "portfolio_sync": "portfolio",
    "portfolio_rebalance": "portfolio",
    "run_report": "run",
    "run_trades_csv": "run",
    "run_approve": "run",
    "broker_account_list": None,
    "broker_account_create": None,
    "broker_account_detail": "account",
    "broker_account_edit": "account",
    "broker_account_live": "account",
    "broker_account_connection_test": "account",
    "broker_account_new_connection_test": None,
    "api_tokens": None,
    "api_token_revoke": "token",
}


def pages() -> list[str]:
    """The names of every URL pattern served by the web app's views."""
    found: list[str] = []

    def walk(patterns) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.callback.__module__.startswith(APPS):
                found.append(pattern.name)

    walk(get_resolver().url_patterns)
    return found


def test_every_page_is_in_the_access_table():
    assert sorted(pages()) == sorted(OBJECT_OF)


@pytest.fixture
def owners_things(prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose", username="owner")
    token, _ = api_token_create(user=portfolio.owner, name="spreadsheet")
    return {"portfolio": portfolio, "run": planned_run(portfolio), "account": portfolio.broker_account, "token": token}


def url(name: str, things: dict) -> str:
    kind = OBJECT_OF[name]
    return reverse(name, args=[things[kind].pk]) if kind else reverse(name)


def state() -> tuple:
    """Everything a page could change."""
    return (
        list(Portfolio.objects.order_by("pk").values()),
        list(Holding.objects.order_by("pk").values()),
        list(RebalanceRun.objects.order_by("pk").values("pk", "status", "execution_step")),
        Order.objects.count(),
        list(BrokerAccount.objects.order_by("pk").values()),
        list(PaperAccount.objects.order_by("pk").values("pk", "cash_usd")),
        list(ApiToken.objects.order_by("pk").values()),
    )


@pytest.mark.parametrize("name", sorted(OBJECT_OF))
def test_anonymous_visitors_are_sent_to_the_login_page(client, owners_things, name):
    before = state()
    for method in (client.get, client.post):
        response = method(url(name, owners_things))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), method
    assert state() == before


@pytest.mark.parametrize("name", sorted(name for name, kind in OBJECT_OF.items() if kind))
def test_another_user_gets_a_404_and_changes_nothing(client, owners_things, name):
    client.force_login(make_user("mallory"))
    before = state()
    answers = {client.get(url(name, owners_things)).status_code, client.post(url(name, owners_things)).status_code}
    # A page that takes only POST (or only GET) may refuse the other method first (405) before it
    # looks anything up; the method it takes must answer 404.
    assert answers in ({404}, {404, 405}), answers
    assert state() == before


@pytest.mark.parametrize("name", sorted(OBJECT_OF))
def test_the_owner_can_open_every_page_and_get_changes_nothing(client, owners_things, name):
    client.force_login(owners_things["portfolio"].owner)
    before = state()
    response = client.get(url(name, owners_things))
    assert response.status_code in (200, 405), response.status_code  # 405: an action taken by POST only
    if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
        assert owners_things["portfolio"].owner.username in response.content.decode()  # the logged-in header
    assert state() == before
