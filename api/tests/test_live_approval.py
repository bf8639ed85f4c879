"""Approving a live account's run through the API: a token cannot carry a two-factor code, so it is
refused with 403 naming why; a browser session that entered a code may approve with the password."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from brokers.models import BrokerAccount
from portfolios.models import RebalanceRun
from rebalancer_site.tests.factories import two_factor_device, verify_session

PASSWORD = "pw-not-used-123"  # portfolios.tests.factories.make_user's


@pytest.fixture
def live(owner, settings):
    settings.ALLOW_LIVE_TRADING = True
    BrokerAccount.objects.filter(pk=owner.portfolio.broker_account_id).update(
        is_live=True, live_opt_in_at=timezone.now()
    )
    return owner


def approve(client, run):
    return client.post(reverse("api:run-approve", kwargs={"pk": run.pk}), {"password": PASSWORD}, format="json")


def not_executed(run) -> bool:
    run = RebalanceRun.objects.get(pk=run.pk)
    return run.status == RebalanceRun.Status.PLANNED and not run.orders.exists()


def test_a_token_cannot_approve_a_live_run(live):
    two_factor_device(live.user)
    response = approve(live.client, live.run)
    assert response.status_code == 403
    assert "an API token cannot carry one" in response.json()["detail"]
    assert not_executed(live.run)


def test_a_live_run_of_an_owner_without_two_factor_is_refused_with_the_reason(live):
    response = approve(live.client, live.run)
    assert response.status_code == 403
    assert "real money needs two-factor authentication" in response.json()["detail"]
    assert not_executed(live.run)


def test_a_session_that_entered_a_code_approves_a_live_run(live):
    browser = APIClient()
    browser.force_login(live.user)
    verify_session(browser, two_factor_device(live.user))
    response = approve(browser, live.run)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "executed"


def test_a_session_without_a_code_is_refused(live):
    two_factor_device(live.user)
    browser = APIClient()
    browser.force_login(live.user)
    response = approve(browser, live.run)
    assert response.status_code == 403 and "has not entered a two-factor code" in response.json()["detail"]
    assert not_executed(live.run)
