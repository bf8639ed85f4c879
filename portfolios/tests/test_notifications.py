"""Alerts reach the owner's mailbox: a drift alert and a failed day are delivered through Django's
mail backend (locmem here) with the configured sender; a mail server that cannot be reached is
logged, never raised into the pipeline, and its password never logged."""

from __future__ import annotations

import socket
from datetime import date

import pytest
from django.core import mail

from portfolios import events
from portfolios.models import AuditEntry
from portfolios.tests.factories import make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "Portfolio rebalancer <alerts@example.com>"
    owner = make_user("alice")
    owner.email = "alice@example.com"
    owner.save(update_fields=["email"])
    return make_portfolio(owner, name="Retirement")


def test_a_drift_alert_is_delivered_to_the_owner(portfolio):
    events.emit(events.drift_alert, portfolio=portfolio, run=None, drift=0.125, threshold=0.10)

    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.from_email == "Portfolio rebalancer <alerts@example.com>"
    assert message.subject == "Retirement has drifted 12.5% from its targets"
    assert message.body == "drift 12.5% at or above the 10.0% alert threshold"


def test_a_failed_day_is_delivered_to_the_owner_with_its_reason(portfolio):
    events.emit(
        events.rebalancing_failed,
        portfolio=portfolio,
        trading_date=date(2025, 6, 30),
        run=None,
        reason="no price on 2025-06-30 for BND",
    )

    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "Rebalance of Retirement failed (2025-06-30)"
    assert message.body == "Nothing was traded for this reason:\nno price on 2025-06-30 for BND"


def test_an_owner_without_an_address_gets_no_mail_and_the_alert_is_still_recorded(portfolio):
    portfolio.owner.email = ""
    portfolio.owner.save(update_fields=["email"])
    events.emit(events.drift_alert, portfolio=portfolio, run=None, drift=0.2, threshold=0.1)
    assert mail.outbox == []
    assert AuditEntry.objects.filter(portfolio=portfolio, event="drift_alert").exists()


def test_an_unreachable_mail_server_is_logged_and_the_pipeline_goes_on(portfolio, settings, caplog):
    with socket.socket() as probe:  # a local port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "alerts", "smtp-password-not-logged"

    events.emit(events.drift_alert, portfolio=portfolio, run=None, drift=0.2, threshold=0.1)

    assert AuditEntry.objects.filter(portfolio=portfolio, event="drift_alert").exists()
    assert "could not e-mail the owner" in caplog.text
    assert "smtp-password-not-logged" not in caplog.text
