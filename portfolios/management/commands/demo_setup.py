"""demo_setup: everything `make demo` needs on a fresh database, offline and idempotent."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from marketdata.management.commands._progress import print_summary
from marketdata.models import Instrument
from marketdata.services import NothingFetched, prices_fetch
from marketdata.stores import get_price_store
from optimization.core.errors import OptimizationError
from optimization.services import targets_compute
from portfolios.models import Portfolio

DEMO_USERNAME = "demo"
DEMO_PORTFOLIO = "Demo portfolio"


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
        user = self._ensure_demo_user()
        self._demo_targets(user, symbols)

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
        existing = users.objects.filter(username=DEMO_USERNAME).first()
        if existing is not None:
            self.stdout.write(
                f"\nDemo login: user '{DEMO_USERNAME}' exists (its password was printed when it was created; "
                f"reset it with: .venv/bin/python manage.py changepassword {DEMO_USERNAME})"
            )
            return existing
        password = secrets.token_urlsafe(12)
        user = users.objects.create_superuser(DEMO_USERNAME, email="", password=password)
        self.stdout.write(f"\nDemo login created: user '{DEMO_USERNAME}', password '{password}' (shown once)")
        return user

    def _demo_targets(self, user, symbols: list[str]) -> None:
        """A demo portfolio over TICKERS with the environment's policy, and its targets for today."""
        portfolio, _ = Portfolio.objects.get_or_create(owner=user, name=DEMO_PORTFOLIO)
        portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
        try:
            allocation = targets_compute(portfolio=portfolio)
        except OptimizationError as error:
            self.stderr.write(f"\nTargets for '{DEMO_PORTFOLIO}' could not be computed: {error}")
            return
        result = allocation.result
        self.stdout.write(
            f"\nTargets for '{DEMO_PORTFOLIO}' (age {portfolio.investor_age()}, strategy {result.strategy}, "
            f"prices up to {result.as_of}):"
        )
        for symbol, weight in sorted(result.weights().items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {symbol:<8}{weight:>9.2%}")
        self.stdout.write(
            f"  expected return {result.expected_return:.2%}, volatility {result.volatility:.2%}, "
            f"Sharpe {result.sharpe:.2f} (synthetic prices: illustration only)"
        )
