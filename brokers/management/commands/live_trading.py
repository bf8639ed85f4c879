"""live_trading: the owner's opt-in to real-money trading on a live broker account.

    python manage.py live_trading enable --account 4    # asks for the owner's password
    python manage.py live_trading disable --account 4

Opting in is one of three gates; ALLOW_LIVE_TRADING=true and the account's live flag are the others.
"""

from __future__ import annotations

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from brokers.models import BrokerAccount
from brokers.services.accounts import broker_account_disable_live, broker_account_enable_live, live_trading_blockers


class Command(BaseCommand):
    help = "Opt a live broker account in to (or out of) real-money trading; the owner's password is asked."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["enable", "disable"])
        parser.add_argument("--account", type=int, required=True, help="Broker account id.")

    def handle(self, *args: object, **options) -> None:
        account = BrokerAccount.objects.select_related("owner").filter(pk=options["account"]).first()
        if account is None:
            raise CommandError(f"broker account {options['account']} does not exist", returncode=2)
        if options["action"] == "disable":
            broker_account_disable_live(account=account)
            self.stdout.write(f"{account}: live trading disabled")
            return
        password = getpass.getpass(f"Password of {account.owner.get_username()}: ")
        try:
            broker_account_enable_live(account=account, user=account.owner, password=password)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages), returncode=2) from None
        blockers = live_trading_blockers(account)
        state = "live trading enabled" if not blockers else f"opted in; still blocked: {'; '.join(blockers)}"
        self.stdout.write(f"{account}: {state}")
