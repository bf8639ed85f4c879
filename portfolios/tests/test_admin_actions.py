"""Admin actions: run now, resync from the broker, execute an approved run, and every model registered."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from brokers.models import BrokerAccount, PaperOrder, PaperPosition
from portfolios.models import RebalanceRun
from rebalancer_site.tests.factories import two_factor_device, verify_session

from .execution_factories import paper_portfolio, planned_run
from .factories import AS_OF

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", "admin@example.com", "a-long-password-123"))
    return client


def test_every_project_model_is_in_the_admin():
    project = ("marketdata", "optimization", "portfolios", "brokers", "rebalancer_site")
    missing = [
        m._meta.label for m in apps.get_models() if m._meta.app_label in project and m not in admin.site._registry
    ]
    assert missing == []


def test_run_now_plans_todays_rebalance(staff, prices, clock, monkeypatch):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    monkeypatch.setattr("portfolios.services.rebalancing.default_as_of", lambda: AS_OF)
    url = reverse("admin:portfolios_portfolio_changelist")
    response = staff.post(url, {"action": "run_now", "_selected_action": [portfolio.pk]}, follow=True)
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.triggers_fired[-1] == "manual" and f"run {run.pk} planned" in response.content.decode()


def test_resync_reads_the_broker(staff, prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    PaperPosition.objects.filter(symbol="SPY").update(quantity=3)
    url = reverse("admin:portfolios_portfolio_changelist")
    response = staff.post(url, {"action": "resync", "_selected_action": [portfolio.pk]}, follow=True)
    assert "1 change(s) from the broker" in response.content.decode()
    assert portfolio.holdings.get(instrument__symbol="SPY").quantity == 3


def test_execute_approved_sends_the_orders(staff, prices, clock, settings):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    run = planned_run(portfolio)
    url = reverse("admin:portfolios_rebalancerun_changelist")
    response = staff.post(url, {"action": "execute_approved", "_selected_action": [run.pk]}, follow=True)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED and PaperOrder.objects.count() == 2
    assert [str(m) for m in response.context["messages"]] == [f"run {run.pk}: Executed (executed)"]


def test_a_live_run_needs_a_verified_staff_session(staff, prices, clock, settings, django_user_model):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.ALLOW_LIVE_TRADING = True
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    BrokerAccount.objects.filter(pk=portfolio.broker_account_id).update(is_live=True, live_opt_in_at=timezone.now())
    run = planned_run(portfolio)
    url = reverse("admin:portfolios_rebalancerun_changelist")
    action = {"action": "execute_approved", "_selected_action": [run.pk]}

    refused = staff.post(url, action, follow=True)
    assert "not executed: real money needs two-factor authentication" in refused.content.decode()
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.PLANNED and not PaperOrder.objects.exists()

    verify_session(staff, two_factor_device(django_user_model.objects.get(username="admin")))
    staff.post(url, action, follow=True)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED and PaperOrder.objects.count() == 2


def test_task_queue_admin_is_for_staff_only(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-not-used-123")
    client.force_login(user)
    response = client.get(reverse("admin:django_q_schedule_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
