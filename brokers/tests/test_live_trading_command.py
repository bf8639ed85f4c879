"""`manage.py live_trading enable` opts a live account in only as the web page does: the owner's
password and a two-factor code, with two-factor authentication on."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from brokers.models import BrokerAccount
from brokers.services.accounts import broker_account_create
from portfolios.tests.factories import make_user
from rebalancer_site.tests.factories import RECOVERY_CODES, totp_code, two_factor_device

pytestmark = pytest.mark.django_db
PASSWORD = "pw-not-used-123"  # portfolios.tests.factories.make_user's


@pytest.fixture
def live_account():
    account = broker_account_create(owner=make_user("alice"), kind="alpaca", label="Alpaca")
    BrokerAccount.objects.filter(pk=account.pk).update(is_live=True)
    return account


def enable(account, monkeypatch, *answers: str) -> None:
    """Runs the command, answering its prompts (password, then code) in order."""
    replies = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(replies))
    call_command("live_trading", "enable", "--account", str(account.pk))


def opted_in(account) -> bool:
    account.refresh_from_db()
    return account.live_opt_in_at is not None


def test_the_command_refuses_an_owner_without_two_factor_authentication(live_account, monkeypatch):
    with pytest.raises(CommandError, match="real money needs two-factor authentication"):
        enable(live_account, monkeypatch, PASSWORD)
    assert not opted_in(live_account)


def test_the_command_needs_the_password_and_a_right_code(live_account, monkeypatch):
    device = two_factor_device(live_account.owner)
    with pytest.raises(CommandError, match="the password is not correct"):
        enable(live_account, monkeypatch, "wrong", totp_code(device))
    with pytest.raises(CommandError, match="the code is not correct"):
        enable(live_account, monkeypatch, PASSWORD, "recovery9999")
    assert not opted_in(live_account)


def test_the_command_opts_in_with_the_password_and_a_code(live_account, monkeypatch):
    two_factor_device(live_account.owner)
    enable(live_account, monkeypatch, PASSWORD, RECOVERY_CODES[0])
    assert opted_in(live_account)
