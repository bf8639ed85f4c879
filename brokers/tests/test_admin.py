"""Admin: credentials write-only, orders and events read-only, the kill switch actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from brokers.crypto import decrypt_credentials
from brokers.models import BrokerAccount, KillSwitch, Order
from brokers.services.accounts import broker_account_create
from portfolios.tests.execution_factories import paper_portfolio, planned_run
from portfolios.tests.factories import make_user

pytestmark = pytest.mark.django_db
SECRET = "s3cr3t-VALUE-9876543210"


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", "admin@example.com", "a-long-password-123"))
    return client


def test_credentials_are_entered_but_never_shown(staff):
    owner = make_user()
    account = broker_account_create(
        owner=owner, kind="alpaca", label="A", credentials={"api_key": "AKKEY1234567", "secret_key": SECRET}
    )
    url = reverse("admin:brokers_brokeraccount_change", args=[account.pk])
    page = staff.get(url).content.decode()
    assert SECRET not in page and "AKKEY1234567" not in page and "api_key: set" in page
    listing = staff.get(reverse("admin:brokers_brokeraccount_changelist")).content.decode()
    assert SECRET not in listing and "secret_key: set" in listing
    data = {"owner": owner.pk, "kind": "alpaca", "label": "A", "api_key": "", "secret_key": "NEWSECRET12345"}
    assert staff.post(url, data).status_code == 302
    account.refresh_from_db()
    assert decrypt_credentials(account.credentials_encrypted) == {
        "api_key": "AKKEY1234567",
        "secret_key": "NEWSECRET12345",
    }


def test_a_paper_account_made_in_the_admin_gets_its_simulated_account(staff):
    owner = make_user()
    response = staff.post(
        reverse("admin:brokers_brokeraccount_add"), {"owner": owner.pk, "kind": "paper", "label": "P"}
    )
    assert response.status_code == 302
    assert BrokerAccount.objects.get(label="P").paper.cash_usd == 0


def test_orders_are_read_only(staff, prices, clock):
    from portfolios.services.execution import execute_run

    run = planned_run(paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}))
    execute_run(run=run, submit=True)
    order = Order.objects.first()
    url = reverse("admin:brokers_order_change", args=[order.pk])
    page = staff.get(url)
    assert page.status_code == 200 and order.client_order_id in page.content.decode()
    assert staff.post(url, {"state": "canceled"}).status_code == 403
    order.refresh_from_db()
    assert order.state == "filled"
    run_page = staff.get(reverse("admin:portfolios_rebalancerun_change", args=[run.pk])).content.decode()
    assert order.client_order_id in run_page


def test_the_kill_switch_action_halts_and_releases(staff):
    listing = reverse("admin:brokers_killswitch_changelist")
    assert staff.get(listing).status_code == 200
    switch = KillSwitch.objects.get(scope="global")
    staff.post(listing, {"action": "turn_on", "_selected_action": [switch.pk]})
    switch.refresh_from_db()
    assert switch.active and switch.changed_by.username == "admin"
    staff.post(listing, {"action": "turn_off", "_selected_action": [switch.pk]})
    switch.refresh_from_db()
    assert not switch.active
