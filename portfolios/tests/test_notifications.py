"""Alerts reach the owner's mailbox: drift alerts as one digest per owner, a failed day at once,
through Django's mail backend (locmem here) with the configured sender; a mail server that cannot be
reached is logged, never raised into the pipeline, and its password never logged."""

from __future__ import annotations

import socket
from datetime import date, timedelta

import pytest
from django.core import mail

from portfolios import events
from portfolios.models import AuditEntry
from portfolios.services.drift_digest import drift_digests_send
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


def test_a_drift_alert_is_delivered_to_the_owner_once_their_alerts_go_quiet(portfolio, clock, settings):
    settings.DRIFT_DIGEST_QUIET_MINUTES = 10
    events.emit(events.drift_alert, portfolio=portfolio, run=None, drift=0.125, threshold=0.10)
    assert mail.outbox == []  # recorded; told in the digest

    assert drift_digests_send(now=clock.now + timedelta(minutes=9)) == 0  # still coming in, perhaps
    assert drift_digests_send(now=clock.now + timedelta(minutes=10)) == 1

    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.from_email == "Portfolio rebalancer <alerts@example.com>"
    assert message.subject == "Retirement has drifted 12.5% from its targets"
    assert message.body == "Retirement: drift 12.5%, at or above the 10.0% alert threshold"
    assert drift_digests_send(now=clock.now + timedelta(hours=1)) == 0 and len(mail.outbox) == 1


def test_a_day_on_which_many_portfolios_drift_sends_each_owner_one_digest(portfolio, clock):
    bob = make_user("bob")
    bob.email = "bob@example.com"
    bob.save(update_fields=["email"])
    names = [f"Portfolio {i:02d}" for i in range(12)]
    for name in names:
        drifted = make_portfolio(portfolio.owner, name=name)
        events.emit(events.drift_alert, portfolio=drifted, run=None, drift=0.2, threshold=0.1)
    events.emit(events.drift_alert, portfolio=make_portfolio(bob, name="Bob's"), run=None, drift=0.3, threshold=0.1)

    assert drift_digests_send(now=clock.now + timedelta(minutes=30)) == 2

    by_owner = {message.to[0]: message for message in mail.outbox}
    assert set(by_owner) == {"alice@example.com", "bob@example.com"} and len(mail.outbox) == 2
    assert by_owner["alice@example.com"].subject == "12 of your portfolios have drifted from their targets"
    assert by_owner["alice@example.com"].body.splitlines() == [
        f"{name}: drift 20.0%, at or above the 10.0% alert threshold" for name in names
    ]
    assert by_owner["bob@example.com"].subject == "Bob's has drifted 30.0% from its targets"
    assert not AuditEntry.objects.filter(event="drift_alert", notified_at__isnull=True).exists()


def test_the_digest_reads_a_fixed_number_of_queries_whatever_the_owners(
    portfolio, clock, django_assert_max_num_queries
):
    def alerts_of(count: int, prefix: str) -> None:
        for i in range(count):
            owner = make_user(f"{prefix}{i}")
            events.emit(events.drift_alert, portfolio=make_portfolio(owner), run=None, drift=0.2, threshold=0.1)

    alerts_of(2, "few")
    with django_assert_max_num_queries(6) as few:
        assert drift_digests_send(now=clock.now + timedelta(hours=1)) == 2
    alerts_of(20, "many")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert drift_digests_send(now=clock.now + timedelta(hours=2)) == 20


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


def test_an_owner_without_an_address_gets_no_mail_and_the_alert_is_still_recorded(portfolio, clock):
    portfolio.owner.email = ""
    portfolio.owner.save(update_fields=["email"])
    events.emit(events.drift_alert, portfolio=portfolio, run=None, drift=0.2, threshold=0.1)
    assert drift_digests_send(now=clock.now + timedelta(hours=1)) == 1
    assert mail.outbox == []
    assert AuditEntry.objects.filter(portfolio=portfolio, event="drift_alert").exists()


def test_an_unreachable_mail_server_is_logged_and_the_pipeline_goes_on(portfolio, settings, caplog):
    with socket.socket() as probe:  # a local port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "alerts", "smtp-password-not-logged"

    events.emit(
        events.rebalancing_failed, portfolio=portfolio, trading_date=date(2025, 6, 30), run=None, reason="no price"
    )

    assert AuditEntry.objects.filter(portfolio=portfolio, event="rebalancing_failed").exists()
    assert "could not e-mail the owner" in caplog.text
    assert "smtp-password-not-logged" not in caplog.text
