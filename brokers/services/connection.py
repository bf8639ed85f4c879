"""The connection test of a broker account: open the broker with the credentials typed in a form
(or those stored) and read its account, saving nothing."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from brokers.base import AccountInfo, BrokerError
from brokers.crypto import CredentialsUnreadable
from brokers.error_text import broker_error_text
from brokers.models import CREDENTIAL_FIELDS, REQUIRED_CREDENTIALS, BrokerAccount
from brokers.registry import broker_from_config
from brokers.services.accounts import account_config, credentials_validated

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionTest:
    """What a connection test found: ``connected`` and a sentence for the page."""

    connected: bool
    message: str


def broker_connection_test(
    *, owner, kind: str, credentials: Mapping[str, str], account: BrokerAccount | None = None
) -> ConnectionTest:
    """Read the broker's account with ``credentials`` typed over ``account``'s stored ones (a new
    account, ``account=None``: the typed ones of ``kind`` only).

    Nothing is saved: credentials are not stored, and whatever the read writes (the paper broker
    settles due orders when read) is rolled back. A credential in a bad format, or a required one
    that is neither typed nor stored, is a `ValidationError` naming it.
    """
    probe = account if account is not None else BrokerAccount(owner=owner, kind=kind)
    if account is None and not CREDENTIAL_FIELDS.get(kind, ()):
        return ConnectionTest(
            connected=True,
            message=f"{probe.get_kind_display()} runs inside this server: there is nothing to connect to.",
        )
    typed = credentials_validated(probe.kind, credentials)
    try:
        config = account_config(probe)
    except CredentialsUnreadable:
        logger.warning("broker connection test: stored credentials unreadable", extra={"broker_account_id": probe.pk})
        return ConnectionTest(
            connected=False, message="The stored credentials cannot be read on this server: enter them again."
        )
    config = dataclasses.replace(config, credentials={**config.credentials, **typed})
    missing = [name for name in REQUIRED_CREDENTIALS.get(probe.kind, ()) if not config.credentials.get(name)]
    if missing:
        raise ValidationError({name: "needed to test the connection" for name in missing})
    with transaction.atomic():
        try:
            with broker_from_config(config) as broker:
                info = broker.account()
        except BrokerError as error:
            logger.warning(
                "broker connection test failed",
                extra={"broker_account_id": probe.pk, "kind": probe.kind, "error": str(error)},
            )
            result = ConnectionTest(connected=False, message=broker_error_text(error, account=probe))
        else:
            result = ConnectionTest(connected=True, message=_connected_text(probe, info, live=config.live))
        transaction.set_rollback(True)
    return result


def _connected_text(account: BrokerAccount, info: AccountInfo, *, live: bool) -> str:
    environment = "live: real money" if live else "paper trading"
    state = "trading is blocked at the broker" if info.trading_blocked else "trading allowed"
    return (
        f"Connected to {account.get_kind_display()}, {environment}: {state}, "
        f"cash {_money(info.cash_usd, info.currency)}, buying power {_money(info.buying_power_usd, info.currency)}, "
        f"equity {_money(info.equity_usd, info.currency)}."
    )


def _money(amount: Decimal, currency: str) -> str:
    return f"${amount:,.2f}" if currency == "USD" else f"{amount:,.2f} {currency}"
