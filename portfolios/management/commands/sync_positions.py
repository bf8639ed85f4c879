"""sync_positions: replace a portfolio's holdings and cash with its broker account's."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portfolios.models import Portfolio
from portfolios.services.sync import SyncError, sync_from_broker


class Command(BaseCommand):
    help = "Replace a portfolio's holdings and cash with the positions and cash at its broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portfolio", type=int, required=True, help="Portfolio id.")

    def handle(self, *args: object, **options) -> None:
        portfolio = Portfolio.objects.select_related("broker_account").filter(pk=options["portfolio"]).first()
        if portfolio is None:
            raise CommandError(f"portfolio {options['portfolio']} does not exist", returncode=2)
        try:
            sync = sync_from_broker(portfolio=portfolio)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages), returncode=2) from None
        except SyncError as error:
            raise CommandError(str(error), returncode=3) from None
        self.stdout.write(f"{portfolio.name} synced from {portfolio.broker_account}: {len(sync.changes)} change(s)")
        for change in sync.changes:
            self.stdout.write(f"  {change['symbol']:<8} {change['before']:>20} -> {change['after']}")
        self.stdout.write(f"  cash     {sync.cash_before_usd:>20,.2f} -> {sync.cash_after_usd:,.2f}")
