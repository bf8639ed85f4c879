"""Broker accounts: creation, write-only credentials, the live-trading gates, adapters.

Credentials are validated per kind, encrypted (`brokers.crypto`) and never returned: callers
see only `BrokerAccount.credential_status()`. An adapter gets them decrypted inside its
`AccountConfig`, which is built here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from brokers.base import AccountConfig, AccountRead, AssetsAsked, Broker, BrokerError, Clock
from brokers.crypto import CredentialsUnreadable, decrypt_credentials, encrypt_credentials, rotate_token
from brokers.models import CREDENTIAL_FIELDS, REQUIRED_CREDENTIALS, BrokerAccount, PaperAccount
from brokers.registry import adapter_class, adapter_options, broker_from_config

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_KEY = re.compile(r"^[A-Za-z0-9._\-+/=]{8,200}$")


def _clean_credential(kind: str, name: str, value: object) -> str:
    """One credential as the string stored; `ValueError` says what is wrong (never echoing a secret)."""
    text = str(value).strip()
    if name in ("api_key", "secret_key"):
        if not _KEY.match(text):
            raise ValueError("expected 8 to 200 letters, digits or . _ - + / = (no spaces)")
        return text
    if name == "host":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            if not _HOSTNAME.match(text):
                raise ValueError(f"expected a host name or IP address, got {text!r}") from None
        return text
    number = int(text) if re.fullmatch(r"\d{1,10}", text) else -1
    if name == "port" and not 1 <= number <= 65535:
        raise ValueError(f"expected a port from 1 to 65535, got {text!r}")
    if name == "client_id" and not 0 <= number <= 2**31 - 1:
        raise ValueError(f"expected a whole number from 0 to 2147483647, got {text!r}")
    return str(number)


def credentials_validated(kind: str, credentials: Mapping[str, object]) -> dict[str, str]:
    """The credentials of a ``kind`` of account, stripped and checked; `ValidationError` naming each bad one."""
    allowed = CREDENTIAL_FIELDS[kind]
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for name, value in credentials.items():
        if name not in allowed:
            errors[name] = f"not a credential of a {kind} account (accepted: {', '.join(allowed) or 'none'})"
            continue
        if value is None or str(value).strip() == "":
            continue  # write-only forms: blank keeps what is stored
        try:
            cleaned[name] = _clean_credential(kind, name, value)
        except ValueError as error:
            errors[name] = str(error)
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def broker_account_create(
    *,
    owner,
    kind: str,
    label: str,
    is_live: bool = False,
    credentials: Mapping[str, object] | None = None,
    paper_cash_usd: Decimal = Decimal(0),
    paper_session_mode: str = PaperAccount.SessionMode.EXCHANGE,
) -> BrokerAccount:
    """A new account; a paper account gets its simulated brokerage account with ``paper_cash_usd``."""
    if kind not in CREDENTIAL_FIELDS:
        raise ValidationError({"kind": f"{kind!r} is not one of {', '.join(CREDENTIAL_FIELDS)}"})
    if kind == BrokerAccount.Kind.PAPER and is_live:
        raise ValidationError({"is_live": "a paper account cannot trade real money"})
    account = BrokerAccount(owner=owner, kind=kind, label=label, is_live=is_live)
    account.full_clean()
    cleaned = credentials_validated(kind, credentials or {})
    account.credentials_encrypted = encrypt_credentials(cleaned) if cleaned else ""
    account.credentials_set = sorted(cleaned)
    account.save()
    if kind == BrokerAccount.Kind.PAPER:
        if paper_cash_usd < 0:
            raise ValidationError({"paper_cash_usd": "must not be negative"})
        PaperAccount.objects.create(account=account, cash_usd=paper_cash_usd, session_mode=paper_session_mode)
    return account


@transaction.atomic
def broker_account_set_credentials(*, account: BrokerAccount, credentials: Mapping[str, object]) -> BrokerAccount:
    """Merge ``credentials`` into the stored ones (blank values keep what is stored).

    Changing credentials of a live account withdraws its live opt-in: the owner confirms again.
    """
    account = BrokerAccount.objects.select_for_update().get(pk=account.pk)
    cleaned = credentials_validated(account.kind, credentials)
    if not cleaned:
        return account
    stored = decrypt_credentials(account.credentials_encrypted)
    stored.update(cleaned)
    account.credentials_encrypted = encrypt_credentials(stored)
    account.credentials_set = sorted(stored)
    fields = ["credentials_encrypted", "credentials_set", "updated_at"]
    if account.live_opt_in_at is not None:
        account.live_opt_in_at = None
        fields.append("live_opt_in_at")
    account.save(update_fields=fields)
    return account


def broker_account_enable_live(*, account: BrokerAccount, user, password: str) -> BrokerAccount:
    """The owner's explicit opt-in to real-money trading, confirmed by re-entering the password."""
    if user.pk != account.owner_id:
        raise PermissionDenied("only the account's owner can enable live trading")
    if not account.is_live:
        raise ValidationError({"is_live": "mark the account as live first (a paper account never trades real money)"})
    if not password or not user.check_password(password):
        raise ValidationError({"password": "the password is not correct"})
    account.live_opt_in_at = timezone.now()
    account.save(update_fields=["live_opt_in_at", "updated_at"])
    return account


def broker_account_disable_live(*, account: BrokerAccount) -> BrokerAccount:
    account.live_opt_in_at = None
    account.save(update_fields=["live_opt_in_at", "updated_at"])
    return account


def live_trading_blockers(account: BrokerAccount) -> list[str]:
    """Why this live account may not trade real money now; [] when every gate is open.

    A paper (not live) account has no blockers: it never reaches real money.
    """
    if not account.is_live:
        return []
    blockers = []
    if not settings.ALLOW_LIVE_TRADING:
        blockers.append("ALLOW_LIVE_TRADING is not true on this server")
    if account.live_opt_in_at is None:
        blockers.append("the owner has not opted in to live trading (with the password) for this account")
    return blockers


def missing_credentials(account: BrokerAccount) -> list[str]:
    present = set(account.credentials_set)
    return [name for name in REQUIRED_CREDENTIALS.get(account.kind, ()) if name not in present]


def account_config(account: BrokerAccount, *, options: Mapping[str, object] | None = None) -> AccountConfig:
    """The adapter's view of ``account``: decrypted credentials, options, and ``live`` only when
    the account is live and every gate is open."""
    credentials = decrypt_credentials(account.credentials_encrypted)
    if account.kind == BrokerAccount.Kind.IB:
        credentials = {
            "host": settings.IB_HOST,
            "port": str(settings.IB_PORT),
            "client_id": str(settings.IB_CLIENT_ID),
            **credentials,
        }
    return AccountConfig(
        account_id=account.pk,
        kind=account.kind,
        live=account.is_live and not live_trading_blockers(account),
        credentials=credentials,
        options=adapter_options(account.kind, options),
    )


def broker_for(account: BrokerAccount, *, options: Mapping[str, object] | None = None) -> Broker:
    """An adapter for ``account`` (use as a context manager so connections are closed).

    `BrokerError` (permanent) when its stored credentials cannot be decrypted: every caller already
    handles a broker that cannot be opened, and says so to the owner."""
    return broker_from_config(_readable_config(account, options))


def accounts_read(accounts: Sequence[BrokerAccount], *, asked: AssetsAsked) -> dict[int, AccountRead | BrokerError]:
    """Each account's positions, cash and answers about the symbols ``asked`` names, by account id
    (the `BrokerError` an account got instead): the accounts of one kind read together by their
    adapter (`Broker.accounts_read`)."""
    return _per_kind(accounts, lambda adapter, configs: adapter.accounts_read(configs, asked=asked))


def accounts_clocks(accounts: Sequence[BrokerAccount]) -> dict[int, Clock | BrokerError]:
    """Each account's broker clock by account id (the `BrokerError` an account got instead): the
    accounts of one kind asked together by their adapter (`Broker.clocks`)."""
    return _per_kind(accounts, lambda adapter, configs: adapter.clocks(configs))


def _per_kind(accounts: Sequence[BrokerAccount], ask: Callable[[type[Broker], list[AccountConfig]], dict]) -> dict:
    """``ask`` each kind's adapter class about its accounts; an account whose credentials cannot
    be read answers its `BrokerError`."""
    found: dict = {}
    kinds: dict[str, list[AccountConfig]] = {}
    for account in accounts:
        try:
            kinds.setdefault(account.kind, []).append(_readable_config(account))
        except BrokerError as error:
            found[account.pk] = error
    for kind, configs in kinds.items():
        found.update(ask(adapter_class(kind), configs))
    return found


def _readable_config(account: BrokerAccount, options: Mapping[str, object] | None = None) -> AccountConfig:
    try:
        return account_config(account, options=options)
    except CredentialsUnreadable as error:
        raise BrokerError(
            f"the stored credentials of {account.label} cannot be read on this server (were "
            "FIELD_ENCRYPTION_KEYS changed?): enter them again on the broker account's page",
            permanent=True,
        ) from error


def credentials_rotate() -> int:
    """Re-encrypt every stored credential token with the newest key; the number of accounts done."""
    done = 0
    for account_id in BrokerAccount.objects.exclude(credentials_encrypted="").values_list("pk", flat=True):
        with transaction.atomic():
            account = BrokerAccount.objects.select_for_update().get(pk=account_id)
            account.credentials_encrypted = rotate_token(account.credentials_encrypted)
            account.save(update_fields=["credentials_encrypted", "updated_at"])
            done += 1
    return done
