"""Broker accounts: credentials encrypted at rest and write-only, key rotation, the three live gates."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from brokers.crypto import CredentialsUnreadable, decrypt_credentials
from brokers.models import BrokerAccount
from brokers.services.accounts import (
    account_config,
    broker_account_create,
    broker_account_enable_live,
    broker_account_set_credentials,
    live_trading_blockers,
)
from portfolios.tests.factories import make_user
from rebalancer_site.tests.factories import RECOVERY_CODES, two_factor_device

pytestmark = pytest.mark.django_db
KEY, SECRET = "AKLIVEKEY0123456", "s3cr3t-VALUE-9876543210"


def alpaca(owner=None, **kwargs) -> BrokerAccount:
    return broker_account_create(
        owner=owner or make_user(),
        kind="alpaca",
        label="Alpaca",
        credentials={"api_key": KEY, "secret_key": SECRET},
        **kwargs,
    )


def stored_column(account: BrokerAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM brokers_brokeraccount WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


def test_credentials_are_encrypted_at_rest_and_only_their_status_is_shown():
    account = alpaca()
    raw = stored_column(account)
    assert KEY not in raw and SECRET not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert account.credential_status() == {"api_key": "set", "secret_key": "set"}
    assert KEY not in repr(account) and KEY not in str(account)
    config = account_config(account)
    assert config.credentials["api_key"] == KEY and KEY not in repr(config)


def test_blank_values_keep_the_stored_credentials_and_bad_ones_name_the_field():
    account = alpaca()
    broker_account_set_credentials(account=account, credentials={"api_key": "", "secret_key": None})
    assert decrypt_credentials(stored_column(account)) == {"api_key": KEY, "secret_key": SECRET}
    with pytest.raises(ValidationError) as raised:
        broker_account_set_credentials(account=account, credentials={"api_key": "has spaces in it", "host": "x"})
    assert set(raised.value.message_dict) == {"api_key", "host"}
    assert "has spaces" not in str(raised.value)  # a bad secret is not echoed
    with pytest.raises(ValidationError) as raised:
        broker_account_create(owner=account.owner, kind="ib", label="IB", credentials={"port": "70000"})
    assert raised.value.message_dict == {"port": ["expected a port from 1 to 65535, got '70000'"]}
    assert not BrokerAccount.objects.filter(label="IB").exists()  # nothing half-saved


def test_ib_accounts_fall_back_to_the_ib_settings(settings):
    settings.IB_HOST, settings.IB_PORT = "10.0.0.5", 4002
    account = broker_account_create(owner=make_user(), kind="ib", label="IB", credentials={"client_id": "7"})
    assert account_config(account).credentials == {"host": "10.0.0.5", "port": "4002", "client_id": "7"}
    assert account.credential_status() == {"host": "not set", "port": "not set", "client_id": "set"}


def test_rotation_re_encrypts_with_the_newest_key_and_the_old_key_can_then_go(settings, capsys):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    account = alpaca()
    before = stored_column(account)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_credentials")
    assert "1 account(s) re-encrypted" in capsys.readouterr().out
    after = stored_column(account)
    assert after != before
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert decrypt_credentials(after) == {"api_key": KEY, "secret_key": SECRET}
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CredentialsUnreadable, match="enter the credentials again"):
        decrypt_credentials(after)


def test_live_trading_needs_the_setting_the_flag_and_the_owners_opt_in(settings):
    owner = make_user()
    owner.set_password("correct horse battery")
    owner.save()
    paper_like = alpaca(owner)
    assert live_trading_blockers(paper_like) == [] and account_config(paper_like).live is False
    live = broker_account_create(owner=owner, kind="alpaca", label="Live", is_live=True)
    settings.ALLOW_LIVE_TRADING = False
    assert len(live_trading_blockers(live)) == 2 and account_config(live).live is False
    with pytest.raises(ValidationError) as raised:
        broker_account_enable_live(account=live, user=owner, password="wrong")
    assert raised.value.message_dict == {"password": ["the password is not correct"]}
    with pytest.raises(PermissionDenied):
        broker_account_enable_live(account=live, user=make_user("mallory"), password="correct horse battery")
    with pytest.raises(ValidationError, match="mark the account as live first"):
        broker_account_enable_live(account=paper_like, user=owner, password="correct horse battery")
    broker_account_enable_live(account=live, user=owner, password="correct horse battery")
    assert live_trading_blockers(live) == ["ALLOW_LIVE_TRADING is not true on this server"]
    settings.ALLOW_LIVE_TRADING = True
    assert live_trading_blockers(live) == [] and account_config(live).live is True
    # New keys withdraw the opt-in: the owner confirms again.
    broker_account_set_credentials(account=live, credentials={"api_key": "AKNEWKEY99999"})
    live.refresh_from_db()
    assert live.live_opt_in_at is None and account_config(live).live is False


def test_a_paper_account_cannot_be_live():
    with pytest.raises(ValidationError) as raised:
        broker_account_create(owner=make_user(), kind="paper", label="P", is_live=True)
    assert raised.value.message_dict == {"is_live": ["a paper account cannot trade real money"]}


def test_each_account_gets_its_own_client_order_id_prefix():
    owner = make_user()
    prefixes = {broker_account_create(owner=owner, kind="paper", label=f"P{i}").order_prefix for i in range(20)}
    assert len(prefixes) == 20 and all(len(p) == 8 for p in prefixes)


def test_the_live_trading_command_asks_the_owners_password(monkeypatch, settings, capsys):
    owner = make_user()
    owner.set_password("correct horse battery")
    owner.save()
    live = broker_account_create(owner=owner, kind="alpaca", label="Live", is_live=True)
    settings.ALLOW_LIVE_TRADING = True
    two_factor_device(owner)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "wrong")
    with pytest.raises(CommandError, match="the password is not correct"):
        call_command("live_trading", "enable", "--account", str(live.pk))
    answers = iter(["correct horse battery", RECOVERY_CODES[0]])  # the password, then a two-factor code
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    call_command("live_trading", "enable", "--account", str(live.pk))
    assert "live trading enabled" in capsys.readouterr().out
    live.refresh_from_db()
    assert live.live_opt_in_at is not None and live_trading_blockers(live) == []
    call_command("live_trading", "disable", "--account", str(live.pk))
    live.refresh_from_db()
    assert live.live_opt_in_at is None
