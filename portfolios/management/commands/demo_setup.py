"""demo_setup: everything `make demo` needs on a fresh database, offline and idempotent."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from marketdata.management.commands._progress import print_summary
from marketdata.services import NothingFetched, prices_fetch
from marketdata.stores import get_price_store

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Load offline sample prices for TICKERS and create the demo login (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        symbols = settings.TICKERS
        self.stdout.write(f"Loading synthetic sample prices for {', '.join(symbols)} (offline; not market data)")
        try:
            log = prices_fetch(symbols=symbols, provider_names=["sample"])
        except NothingFetched as exc:
            print_summary(self, exc.log)
            raise CommandError(str(exc)) from None
        print_summary(self, log)
        self._print_stored(symbols)
        self._ensure_demo_user()

    def _print_stored(self, symbols: list[str]) -> None:
        store = get_price_store()
        bars = store.read_bars(symbols, None, None)
        self.stdout.write(f"\nPrices stored ({store.name} store):")
        self.stdout.write(f"  {'symbol':<8}{'bars':>6}  {'first':<11}{'last':<11}{'last adj close':>15}  source")
        for symbol, group in bars.groupby("symbol", sort=True):
            last = group.iloc[-1]
            label = f"{last['source']}{' (SYNTHETIC)' if last['synthetic'] else ''}"
            self.stdout.write(
                f"  {symbol:<8}{len(group):>6}  {group['date'].iloc[0]:%Y-%m-%d} {last['date']:%Y-%m-%d} "
                f"{last['adj_close']:>15.2f}  {label}"
            )

    def _ensure_demo_user(self) -> None:
        users = get_user_model()
        if users.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(
                f"\nDemo login: user '{DEMO_USERNAME}' exists (its password was printed when it was created; "
                f"reset it with: .venv/bin/python manage.py changepassword {DEMO_USERNAME})"
            )
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(DEMO_USERNAME, email="", password=password)
        self.stdout.write(f"\nDemo login created: user '{DEMO_USERNAME}', password '{password}' (shown once)")
