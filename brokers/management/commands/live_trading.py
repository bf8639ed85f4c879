"""live_trading: the owner's opt-in to real-money trading on a live broker account.

    python manage.py live_trading enable --account 4    # asks for the owner's password and a two-factor code
    python manage.py live_trading disable --account 4

Opting in is one of three gates; ALLOW_LIVE_TRADING=true and the account's live flag are the others.
"""

from __future__ import annotations

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from brokers.models import BrokerAccount
from brokers.services.accounts import broker_account_disable_live, broker_account_enable_live, live_trading_blockers
from two_factor.services import NEEDS_TWO_FACTOR, code_check, two_factor_enabled


class Command(BaseCommand):
    help = (
        "Opt a live broker account in to (or out of) real-money trading; the owner's password and a two-factor "
        "code are asked."
    )

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
        owner = account.owner
        password = getpass.getpass(f"Password of {owner.get_username()}: ")
        if account.is_live:
            # As on the web page: real money needs the owner's two-factor authentication.
            if not two_factor_enabled(owner):
                raise CommandError(NEEDS_TWO_FACTOR, returncode=2)
            if not owner.check_password(password):
                raise CommandError("the password is not correct", returncode=2)
            check = code_check(user=owner, code=getpass.getpass("Two-factor code (app or recovery code): "))
            if check.device is None:
                raise CommandError(check.error, returncode=2)
        try:
            broker_account_enable_live(account=account, user=account.owner, password=password)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages), returncode=2) from None
        blockers = live_trading_blockers(account)
        state = "live trading enabled" if not blockers else f"opted in; still blocked: {'; '.join(blockers)}"
        self.stdout.write(f"{account}: {state}")
