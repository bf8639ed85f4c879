"""Seeding a new paper account from its portfolio's settings: the account then holds the portfolio's
holdings (at the latest stored close as cost) and cash; an account with positions or orders, backing
another portfolio, or not a paper account is refused, naming the field, and nothing is changed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from brokers.base import OrderRequest, OrderType, Side
from brokers.models import PaperAccount
from brokers.services.accounts import broker_account_create, broker_for
from marketdata.models import Instrument
from portfolios.forms import PortfolioForm
from portfolios.models import AuditEntry
from portfolios.services.paper_seed import paper_account_seed, paper_seed_refusal

from .factories import close, make_portfolio, make_user

pytestmark = pytest.mark.django_db
SEED_LABEL = "Seed this paper account with the portfolio&#x27;s holdings and cash"


@pytest.fixture
def owner(client, prices, clock):
    user = make_user("alice")
    client.force_login(user)
    return user


@pytest.fixture
def account(owner):
    return broker_account_create(owner=owner, kind="paper", label="Sandbox", paper_cash_usd=Decimal(100_000))


@pytest.fixture
def portfolio(owner, account):
    return make_portfolio(
        owner, holdings={"SPY": 10, "BND": "2.5"}, cash_usd=Decimal("1234.56"), broker_account=account
    )


def settings_url(portfolio) -> str:
    return reverse("portfolio_edit", args=[portfolio.pk])


def settings_data(portfolio, **changes) -> dict:
    """What the settings form posts for ``portfolio`` as the page shows it, with ``changes``."""
    form = PortfolioForm(instance=portfolio, user=portfolio.owner)
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else str(value)
    return data | changes


def paper_of(account) -> tuple[Decimal, dict[str, tuple[Decimal, Decimal]]]:
    """The paper account's cash and {symbol: (shares, average entry price)}."""
    paper = PaperAccount.objects.get(account=account)
    return paper.cash_usd, {p.symbol: (p.quantity, p.avg_entry_price_usd) for p in paper.positions.all()}


def seed_errors(response) -> str:
    return " ".join(response.context["form"].errors.get("seed_paper_account", []))


def test_seeding_copies_the_holdings_at_the_latest_close_and_the_cash(client, portfolio, account):
    assert SEED_LABEL in client.get(settings_url(portfolio)).content.decode()

    response = client.post(settings_url(portfolio), settings_data(portfolio, seed_paper_account="on"), follow=True)

    assert response.redirect_chain == [(reverse("portfolio_detail", args=[portfolio.pk]), 302)]
    assert "Sandbox now holds this portfolio&#x27;s 2 holding(s) and $1,234.56 of cash." in response.content.decode()
    assert paper_of(account) == (
        Decimal("1234.56"),
        {"BND": (Decimal("2.5"), close("BND")), "SPY": (Decimal(10), close("SPY"))},
    )
    entry = AuditEntry.objects.get(event="paper_account_seeded")
    assert entry.portfolio == portfolio and entry.user == portfolio.owner
    assert entry.message == "Sandbox seeded with 2 position(s) and $1,234.56 of cash"
    # Visible on the account's page, and the broker now answers what the portfolio holds.
    account_page = client.get(reverse("broker_account_detail", args=[account.pk])).content.decode()
    assert '<td>SPY</td><td class="num">10</td>' in account_page and "$1,234.56" in account_page
    review = client.get(reverse("portfolio_sync", args=[portfolio.pk])).content.decode()
    assert "Nothing to sync: the portfolio already holds what Sandbox holds" in review


def test_a_second_seed_is_refused_and_changes_nothing(client, owner, portfolio, account):
    paper_account_seed(portfolio=portfolio)
    seeded = paper_of(account)
    assert SEED_LABEL not in client.get(settings_url(portfolio)).content.decode()  # nothing left to seed
    broker_account_create(owner=owner, kind="paper", label="Fresh")  # a new one: the box is offered again

    response = client.post(settings_url(portfolio), settings_data(portfolio, seed_paper_account="on", name="Renamed"))

    assert response.status_code == 400
    assert "Sandbox already holds positions: only a new paper account can be seeded" in seed_errors(response)
    assert 'id="id_seed_paper_account_error"' in response.content.decode()
    with pytest.raises(ValidationError, match="Sandbox already holds positions"):
        paper_account_seed(portfolio=portfolio)
    portfolio.refresh_from_db()
    assert portfolio.name == "Core" and paper_of(account) == seeded
    assert AuditEntry.objects.filter(event="paper_account_seeded").count() == 1


def test_an_account_with_an_order_is_refused(client, owner, portfolio, account):
    # A buy limited far below the market rests at the paper broker: an order, no position.
    request = OrderRequest(
        client_order_id="rests",
        symbol="SPY",
        side=Side.BUY,
        quantity=Decimal(1),
        order_type=OrderType.LIMIT,
        limit_price_usd=Decimal(1),
    )
    with broker_for(account) as broker:
        broker.submit_order(request)
    assert SEED_LABEL not in client.get(settings_url(portfolio)).content.decode()
    broker_account_create(owner=owner, kind="paper", label="Fresh")  # a new one: the box is offered again

    response = client.post(settings_url(portfolio), settings_data(portfolio, seed_paper_account="on"))

    assert response.status_code == 400
    assert "Sandbox already has orders: only a new paper account can be seeded" in seed_errors(response)
    assert paper_of(account) == (Decimal(100_000), {})


def test_an_account_backing_another_portfolio_is_refused(owner, portfolio, account):
    other = make_portfolio(owner, name="Other", holdings={"QQQ": 1})
    assert paper_seed_refusal(account=account, portfolio=other) == "Sandbox already backs the portfolio 'Core'"
    assert paper_seed_refusal(account=account, portfolio=portfolio) == ""


def test_a_holding_without_a_stored_close_refuses_the_seed_and_the_settings_with_it(client, owner, account):
    Instrument.objects.create(symbol="NOPX", name="No prices")
    portfolio = make_portfolio(
        owner, symbols=["SPY", "NOPX"], holdings={"SPY": 1, "NOPX": 3}, cash_usd=Decimal(5), broker_account=account
    )

    response = client.post(settings_url(portfolio), settings_data(portfolio, seed_paper_account="on", name="Renamed"))

    assert response.status_code == 400
    assert "no stored close for NOPX" in seed_errors(response)
    portfolio.refresh_from_db()
    assert portfolio.name != "Renamed" and paper_of(account) == (Decimal(100_000), {})


def test_seeding_without_an_account_chosen_names_the_field(client, owner, portfolio, account):
    data = settings_data(portfolio, seed_paper_account="on", broker_account="")
    response = client.post(settings_url(portfolio), data)
    assert response.status_code == 400
    assert "choose the paper account to seed under Broker account" in seed_errors(response)
    assert paper_of(account) == (Decimal(100_000), {})


def test_a_non_paper_account_offers_nothing(client, owner):
    alpaca = broker_account_create(
        owner=owner, kind="alpaca", label="Alpaca", credentials={"api_key": "PKTEST1234", "secret_key": "secret-1234"}
    )
    portfolio = make_portfolio(owner, holdings={"SPY": 1}, cash_usd=Decimal(5), broker_account=alpaca)
    assert SEED_LABEL not in client.get(settings_url(portfolio)).content.decode()

    response = client.post(settings_url(portfolio), settings_data(portfolio, seed_paper_account="on"))

    assert response.status_code == 302 and not PaperAccount.objects.exists()
    with pytest.raises(ValidationError, match="Alpaca is not a paper account: only a paper account can be seeded"):
        paper_account_seed(portfolio=portfolio)


def test_saving_holdings_on_a_new_paper_account_points_to_seeding(client, owner, account):
    portfolio = make_portfolio(owner, broker_account=account)
    data = {
        "holdings-TOTAL_FORMS": "1",
        "holdings-INITIAL_FORMS": "0",
        "holdings-0-symbol": "SPY",
        "holdings-0-quantity": "4",
        "holdings-0-cost_basis_usd": "",
        "cash_usd": "10",
    }
    response = client.post(reverse("portfolio_holdings", args=[portfolio.pk]), data, follow=True)
    assert "Sandbox is a paper account nothing has used yet: to start it with these holdings and cash, tick" in (
        response.content.decode()
    )
