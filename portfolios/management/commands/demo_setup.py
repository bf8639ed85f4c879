"""demo_setup: everything `make demo` needs on a fresh database, offline and idempotent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from brokers.models import BrokerAccount, PaperAccount
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from marketdata import calendar
from marketdata.management.commands._progress import print_summary
from marketdata.models import Instrument
from marketdata.selectors import last_bar_dates, price_frame
from marketdata.services import NothingFetched, prices_fetch
from marketdata.stores import get_price_store
from optimization.core.errors import OptimizationError
from optimization.services import targets_compute
from portfolios.models import Portfolio, RebalanceRun
from portfolios.services.holdings import holdings_replace

DEMO_USERNAME = "demo"
DEMO_PORTFOLIO = "Demo portfolio"
DEMO_ACCOUNT = "Paper account"


@dataclass(frozen=True)
class DemoPortfolio:
    """A demo user's portfolio: investor age, cash and the dollar value held in each ticker."""

    username: str
    name: str
    age: int
    cash_usd: Decimal
    # Share of the invested dollars per ticker position in TICKERS (the rest of TICKERS gets none).
    holdings_usd: tuple[Decimal, ...]
    superuser: bool


DEMO_PORTFOLIOS = (
    DemoPortfolio(
        DEMO_USERNAME,
        DEMO_PORTFOLIO,
        30,
        Decimal(2_000),
        tuple(map(Decimal, (30_000, 25_000, 20_000, 10_000, 13_000))),
        True,
    ),
    DemoPortfolio(
        "demo-retiree",
        "Retirement portfolio",
        63,
        Decimal(5_000),
        tuple(map(Decimal, (120_000, 60_000, 60_000, 30_000, 25_000))),
        False,
    ),
)


class Command(BaseCommand):
    help = "Load offline sample prices, create the demo users and portfolios, print their plans (idempotent)."

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
        portfolios = []
        for demo in DEMO_PORTFOLIOS:
            user = self._ensure_user(demo)
            portfolio = self._ensure_portfolio(user, demo, symbols)
            self._demo_targets(portfolio)
            portfolios.append((demo, portfolio))
        self.stdout.write("\nSchedules (django-q2; the q-cluster started by `make demo` runs them):")
        call_command("setup_schedules", stdout=self.stdout, stderr=self.stderr)
        day = calendar.last_completed_session(timezone.now())
        self.stdout.write(
            f"\nThe daily run of {day}, end to end: fetch -> sync -> targets -> plan -> execute -> report"
        )
        call_command("run_pipeline", date=day, stdout=self.stdout, stderr=self.stderr, verbosity=0)
        for demo, portfolio in portfolios:
            self.stdout.write(f"\nRebalancing plan for '{portfolio.name}' ({demo.username}, age {demo.age}):")
            call_command("rebalance", portfolio=portfolio.pk, stdout=self.stdout, stderr=self.stderr)
            self._print_execution(portfolio)

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

    def _ensure_user(self, demo: DemoPortfolio):
        users = get_user_model()
        existing = users.objects.filter(username=demo.username).first()
        if existing is not None:
            self.stdout.write(
                f"\nDemo login: user '{demo.username}' exists (its password was printed when it was created; "
                f"reset it with: .venv/bin/python manage.py changepassword {demo.username})"
            )
            return existing
        password = secrets.token_urlsafe(12)
        create = users.objects.create_superuser if demo.superuser else users.objects.create_user
        user = create(demo.username, email="", password=password)
        role = "administrator" if demo.superuser else "user"
        self.stdout.write(f"\nDemo login created: {role} '{demo.username}', password '{password}'")
        _remember_login(f"{demo.username} / {password} ({role})")
        return user

    def _ensure_portfolio(self, user, demo: DemoPortfolio, symbols: list[str]) -> Portfolio:
        """The demo portfolio with a paper account; when it has no holdings yet, its starting
        holdings, which the paper account then holds too."""
        account = BrokerAccount.objects.filter(owner=user, label=DEMO_ACCOUNT).first() or broker_account_create(
            owner=user,
            kind=BrokerAccount.Kind.PAPER,
            label=DEMO_ACCOUNT,
            paper_session_mode=PaperAccount.SessionMode.ALWAYS_OPEN,
        )
        portfolio, created = Portfolio.objects.get_or_create(
            owner=user,
            name=demo.name,
            # auto: the daily run executes the demo's plans on its paper account by itself.
            defaults={"age": demo.age, "broker_account": account, "mode": Portfolio.Mode.AUTO},
        )
        portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
        if created or not portfolio.holdings.exists():
            prices = self._last_closes(symbols)
            rows = [
                {"symbol": symbol, "quantity": (usd / prices[symbol]).quantize(Decimal("0.001"), rounding=ROUND_DOWN)}
                for symbol, usd in zip(symbols, demo.holdings_usd, strict=False)
            ]
            holdings_replace(portfolio=portfolio, rows=rows, cash_usd=demo.cash_usd)
            paper_account_reset(
                account=account,
                cash_usd=demo.cash_usd,
                positions={
                    row["symbol"]: (row["quantity"], prices[row["symbol"]]) for row in rows if row["quantity"] > 0
                },
            )
        return portfolio

    def _print_execution(self, portfolio: Portfolio) -> None:
        """The orders, fills and positions of the portfolio's latest run (executed by the pipeline)."""
        run = RebalanceRun.objects.filter(portfolio=portfolio).order_by("-trading_date").first()
        if run is None or run.status in (RebalanceRun.Status.NO_ACTION, RebalanceRun.Status.FAILED):
            return
        self.stdout.write("\nExecution on the paper broker (simulated session, fills at the last close):")
        try:
            call_command("execute", run=run.pk, stdout=self.stdout, stderr=self.stderr)
        except CommandError as error:
            self.stderr.write(f"  not executed: {error}")

    def _last_closes(self, symbols: list[str]) -> dict[str, Decimal]:
        last = max(d for d in last_bar_dates(symbols=symbols).values() if d is not None)
        closes = price_frame(symbols=symbols, start=last, end=last).iloc[-1]
        return {symbol: Decimal(repr(float(closes[symbol]))) for symbol in symbols}

    def _demo_targets(self, portfolio: Portfolio) -> None:
        """The portfolio's targets for the last completed session, with the environment's policy."""
        try:
            allocation = targets_compute(portfolio=portfolio)
        except OptimizationError as error:
            self.stderr.write(f"\nTargets for '{portfolio.name}' could not be computed: {error}")
            return
        result = allocation.result
        self.stdout.write(
            f"\nTargets for '{portfolio.name}' (age {portfolio.investor_age()}, strategy {result.strategy}, "
            f"prices up to {result.as_of}):"
        )
        for symbol, weight in sorted(result.weights().items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {symbol:<8}{weight:>9.2%}")
        self.stdout.write(
            f"  expected return {result.expected_return:.2%}, volatility {result.volatility:.2%}, "
            f"Sharpe {result.sharpe:.2f} (synthetic prices: illustration only)"
        )


def demo_logins_path() -> Path:
    """The demo logins with their passwords, for `make serve`'s banner: in the demo's own storage
    folder (git-ignored), readable by its owner only."""
    return Path(settings.STORAGE_PATH) / "demo-logins.txt"


def _remember_login(line: str) -> None:
    path = demo_logins_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as logins:
        logins.write(line + "\n")
    path.chmod(0o600)
