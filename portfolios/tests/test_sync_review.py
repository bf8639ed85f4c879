"""A person's sync from the broker: the differences are shown first, and confirming applies exactly
what was shown; a broker answer or holdings that changed since are shown again, not applied."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from brokers.base import AccountInfo, Position
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from portfolios.models import HoldingsSync
from portfolios.services.holdings import holdings_replace
from portfolios.services.sync import sync_from_broker

from .factories import make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client, prices, clock):
    user = make_user("alice")
    client.force_login(user)
    return user


@pytest.fixture
def account(owner):
    account = broker_account_create(owner=owner, kind="paper", label="Sandbox")
    paper_account_reset(
        account=account,
        cash_usd=Decimal(500),
        positions={
            "SPY": (Decimal(12), Decimal(500)),
            "QQQ": (Decimal(1), Decimal(400)),
            "VXUS": (Decimal(7), Decimal(60)),
        },
    )
    return account


@pytest.fixture
def portfolio(owner, account):
    return make_portfolio(
        owner, holdings={"SPY": 10, "BND": 20, "VXUS": 7}, cash_usd=Decimal(100), broker_account=account
    )


def held(portfolio) -> dict[str, Decimal]:
    return {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}


def review_rows(page: str) -> dict[str, tuple[str, str, str]]:
    """{symbol: (held now, at the broker, change)} as the review table shows them."""
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    rows = re.findall(r"<tr>\s*<td>(\w+)</td>\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>\s*<td>(.*?)</td>", body)
    return {symbol: (now, broker, re.sub(r"<[^>]+>", "", change)) for symbol, now, broker, change in rows}


def confirmation(page: str) -> dict[str, str]:
    """The hidden fields the review page's confirm button sends."""
    return dict(re.findall(r'<input type="hidden" name="(\w+_fingerprint)" value="([0-9a-f]+)"', page))


def sync_url(portfolio) -> str:
    return reverse("portfolio_sync", args=[portfolio.pk])


UNCHANGED = {"SPY": Decimal(10), "BND": Decimal(20), "VXUS": Decimal(7)}


def assert_unchanged(portfolio) -> None:
    portfolio.refresh_from_db()
    assert held(portfolio) == UNCHANGED and portfolio.cash_usd == Decimal(100)
    assert not HoldingsSync.objects.exists()


def test_the_review_lists_each_symbols_difference_and_the_cash_and_writes_nothing(client, portfolio):
    response = client.get(sync_url(portfolio))

    assert response.status_code == 200
    page = response.content.decode()
    assert review_rows(page) == {
        "BND": ("20", "0", "removed"),
        "QQQ": ("0", "1", "added"),
        "SPY": ("10", "12", "changed"),
        "VXUS": ("7", "7", "unchanged"),
    }
    assert "Cash now</dt><dd>$100.00" in page and "Cash after the sync</dt><dd>$500.00" in page
    assert "Confirm: replace holdings and cash" in page
    assert "Holdings entered by hand that the account does not hold are removed" in page
    assert_unchanged(portfolio)


def test_the_portfolio_page_leads_to_the_review(client, portfolio):
    page = client.get(reverse("portfolio_detail", args=[portfolio.pk])).content.decode()
    assert f'href="{sync_url(portfolio)}"' in page and "Sync from broker…" in page


def test_confirming_replaces_the_holdings_and_cash_with_the_reviewed_ones(client, portfolio):
    page = client.get(sync_url(portfolio)).content.decode()

    response = client.post(sync_url(portfolio), confirmation(page), follow=True)

    assert response.redirect_chain == [(reverse("portfolio_detail", args=[portfolio.pk]), 302)]
    assert (
        "Synced from Sandbox: BND 20 → 0; QQQ 0 → 1; SPY 10 → 12; cash $100.00 → $500.00" in response.content.decode()
    )
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(12), "QQQ": Decimal(1), "VXUS": Decimal(7)}
    assert portfolio.cash_usd == Decimal(500)
    sync = HoldingsSync.objects.get()
    assert sync.run is None
    assert [(c["symbol"], Decimal(c["before"]), Decimal(c["after"])) for c in sync.changes] == [
        ("BND", 20, 0),
        ("QQQ", 0, 1),
        ("SPY", 10, 12),
    ]


def test_a_broker_answer_that_changed_since_the_review_is_shown_again_not_applied(client, portfolio, account):
    page = client.get(sync_url(portfolio)).content.decode()
    paper_account_reset(account=account, cash_usd=Decimal(650), positions={"SPY": (Decimal(15), Decimal(500))})

    response = client.post(sync_url(portfolio), confirmation(page))

    assert response.status_code == 409
    again = response.content.decode()
    assert "Nothing was changed: the positions or cash at Sandbox changed since you reviewed them" in again
    assert review_rows(again) == {
        "BND": ("20", "0", "removed"),
        "SPY": ("10", "15", "changed"),
        "VXUS": ("7", "0", "removed"),
    }
    assert "Cash after the sync</dt><dd>$650.00" in again
    assert_unchanged(portfolio)

    # Confirming the new review applies it.
    client.post(sync_url(portfolio), confirmation(again))
    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(15)} and portfolio.cash_usd == Decimal(650)


def test_holdings_entered_by_hand_after_the_review_are_not_replaced(client, portfolio):
    page = client.get(sync_url(portfolio)).content.decode()
    holdings_replace(portfolio=portfolio, rows=[{"symbol": "BND", "quantity": "21"}], cash_usd=Decimal(100))

    response = client.post(sync_url(portfolio), confirmation(page))

    assert response.status_code == 409
    again = response.content.decode()
    assert "Nothing was changed: this portfolio&#x27;s holdings or cash changed since you reviewed them" in again
    assert review_rows(again)["BND"] == ("21", "0", "removed")
    portfolio.refresh_from_db()
    assert held(portfolio) == {"BND": Decimal(21)} and not HoldingsSync.objects.exists()


def test_when_nothing_would_change_the_page_says_so_and_nothing_is_written(client, owner, account):
    portfolio = make_portfolio(
        owner, holdings={"SPY": 12, "QQQ": 1, "VXUS": 7}, cash_usd=Decimal(500), broker_account=account
    )
    response = client.get(sync_url(portfolio))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing to sync: the portfolio already holds what Sandbox holds, and the same cash" in page
    assert "Confirm: replace holdings and cash" not in page
    assert {change for _, _, change in review_rows(page).values()} == {"unchanged"}

    confirmed = client.post(sync_url(portfolio), confirmation(page), follow=True)

    assert "Nothing to sync: the portfolio already matches Sandbox; nothing was changed." in confirmed.content.decode()
    assert not HoldingsSync.objects.exists()


@pytest.mark.parametrize(
    "data",
    [{}, {"broker_fingerprint": "x" * 64, "holdings_fingerprint": "0" * 64}, {"broker_fingerprint": "0" * 64}],
)
def test_a_confirmation_that_names_no_review_shows_the_review_and_changes_nothing(client, portfolio, data):
    response = client.post(sync_url(portfolio), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was changed: review the differences below, then confirm." in page
    assert review_rows(page)["SPY"] == ("10", "12", "changed")
    assert_unchanged(portfolio)


def test_a_confirmation_of_another_review_is_refused(client, portfolio):
    response = client.post(sync_url(portfolio), {"broker_fingerprint": "0" * 64, "holdings_fingerprint": "0" * 64})
    assert response.status_code == 409
    assert_unchanged(portfolio)


def test_another_users_sync_is_a_404_and_changes_nothing(client, portfolio):
    page = client.get(sync_url(portfolio)).content.decode()
    client.force_login(make_user("mallory"))
    assert client.get(sync_url(portfolio)).status_code == 404
    assert client.post(sync_url(portfolio), confirmation(page)).status_code == 404
    assert_unchanged(portfolio)


def test_a_portfolio_without_a_broker_account_has_nothing_to_review(client, owner):
    portfolio = make_portfolio(owner, holdings={"SPY": 1}, cash_usd=Decimal(5))
    response = client.get(sync_url(portfolio), follow=True)
    assert "Sync failed, nothing changed: this portfolio has no broker account to sync from" in (
        response.content.decode()
    )


def test_a_sync_the_system_triggers_replaces_at_once_without_a_review(portfolio):
    read = ([Position(symbol="SPY", quantity=Decimal(3))], AccountInfo(Decimal(42), Decimal(42), Decimal(1500)))

    sync = sync_from_broker(portfolio=portfolio, read=read)

    portfolio.refresh_from_db()
    assert held(portfolio) == {"SPY": Decimal(3)} and portfolio.cash_usd == Decimal(42)
    assert HoldingsSync.objects.get() == sync


@pytest.mark.django_db(transaction=True)
def test_a_busy_portfolio_answers_the_confirmation_with_a_message(client, portfolio, held_elsewhere):
    page = client.get(sync_url(portfolio)).content.decode()
    held_elsewhere(portfolio)
    response = client.post(sync_url(portfolio), confirmation(page), follow=True)
    assert "Sync failed, nothing changed: another request is changing portfolio" in response.content.decode()
    assert_unchanged(portfolio)
