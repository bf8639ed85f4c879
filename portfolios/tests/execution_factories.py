"""Builders for execution tests: a moment when the market is open, portfolios whose broker
account (paper, or any kind) holds exactly their holdings, and their stored runs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from brokers.models import Order, PaperAccount
from brokers.services.accounts import broker_account_create
from brokers.services.paper import paper_account_reset
from portfolios.models import RebalanceRun
from portfolios.services.execution import flow
from portfolios.services.rebalancing import rebalance_run_create

from .factories import AS_OF, close, load_sample_prices, make_portfolio, make_user

NEW_YORK = ZoneInfo("America/New_York")
# The session after AS_OF (Monday 2025-06-30), half an hour after the open.
MARKET_OPEN_NOW = datetime(2025, 7, 1, 10, 0, tzinfo=NEW_YORK)
MARKET_CLOSED_NOW = datetime(2025, 7, 1, 17, 0, tzinfo=NEW_YORK)
NINE = Decimal("0.000000001")
EXACT = {
    "spread_bps": Decimal(0),
    "impact_bps": Decimal(0),
    "commission_per_trade_usd": Decimal(0),
    "cash_buffer_weight": Decimal(0),
    "min_trade_usd": Decimal(0),
    "band_mode": "absolute",
    "band_abs": Decimal("0.05"),
}


class Clock:
    """A movable `timezone.now` for a test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The market is open (2025-07-01 10:00 New York) unless the test moves ``clock.now``."""
    moving = Clock(MARKET_OPEN_NOW)
    monkeypatch.setattr(timezone, "now", moving)
    return moving


class RunningClock(Clock):
    """`timezone.now` starting at a moment and running at the real pace (leases run out)."""

    def __init__(self, start: datetime):
        super().__init__(start)
        self._started = time.monotonic()

    def __call__(self) -> datetime:
        return self.now + timedelta(seconds=time.monotonic() - self._started)


@pytest.fixture
def running_clock(monkeypatch) -> RunningClock:
    """Like `clock`, but time passes: from 2025-07-01 10:00 New York on, at the real pace."""
    running = RunningClock(MARKET_OPEN_NOW)
    monkeypatch.setattr(timezone, "now", running)
    return running


@pytest.fixture
def prices() -> None:
    load_sample_prices(["SPY", "QQQ", "VXUS", "BND"])


def shares_worth(usd: Decimal, symbol: str) -> Decimal:
    return (Decimal(usd) / close(symbol)).quantize(NINE)


def paper_portfolio(
    *,
    holdings_usd: dict[str, int],
    cash_usd: Decimal = Decimal(0),
    targets: dict[str, str] | None = None,
    owner=None,
    username: str = "alice",
    session_mode: str = PaperAccount.SessionMode.EXCHANGE,
    **policy,
):
    """A portfolio holding ``holdings_usd`` (at AS_OF closes) and cash, with manual ``targets``,
    whose paper broker account holds exactly the same."""
    owner = owner or make_user(username)
    holdings = {symbol: shares_worth(Decimal(usd), symbol) for symbol, usd in holdings_usd.items()}
    account = broker_account_create(owner=owner, kind="paper", label=f"Paper {owner.username}")
    paper_account_reset(
        account=account,
        cash_usd=cash_usd,
        positions={symbol: (quantity, close(symbol)) for symbol, quantity in holdings.items() if quantity > 0},
        session_mode=session_mode,
    )
    settings = {
        **EXACT,
        "manual_targets": targets or {"SPY": "0.6", "BND": "0.4"},
        "mode": "auto",
        "broker_account": account,
        **policy,
    }
    return make_portfolio(
        owner,
        symbols=sorted(set(holdings) | set(settings["manual_targets"])),
        holdings=holdings,
        cash_usd=cash_usd,
        **settings,
    )


def planned_run(portfolio) -> RebalanceRun:
    """The portfolio's stored run for AS_OF (planned as a manual request, so it always trades)."""
    return rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run


def order_row(run, client_order_id: str, symbol: str, side: str, quantity: str) -> Order:
    """A planned order of ``run``, written as execution writes one before sending it."""
    return Order.objects.create(
        account=run.portfolio.broker_account,
        run=run,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        estimated_price_usd=Decimal(100),
    )


def record_stored_steps(monkeypatch) -> list[tuple[str, str]]:
    """(checkpoint, the run's stored step at that moment) for every "sent" and "done" checkpoint."""
    stored: list[tuple[str, str]] = []

    def record(run, step):
        if step.endswith(("_sent", "_done")):
            stored.append((step, RebalanceRun.objects.values_list("execution_step", flat=True).get(pk=run.pk)))

    monkeypatch.setattr(flow, "checkpoint", record)
    return stored


def use_fake_alpaca(settings, fake, **options) -> None:
    """Point the Alpaca adapter at ``fake`` (short timeouts, polls and settlement delay; ``options``
    override them) and make execution wait briefly."""
    settings.BROKER_OPTIONS = {
        **settings.BROKER_OPTIONS,
        "alpaca": {
            "paper_url": fake.url,
            "live_url": "https://api.alpaca.markets",
            "timeout_s": 0.5,
            "retry_attempts": 2,
            "retry_wait_s": 0.01,
            "settlement_delay_s": 0.05,
            **options,
        },
    }
    settings.EXECUTION_WAIT_SECONDS = 2.0
    settings.EXECUTION_POLL_SECONDS = 0.01


def alpaca_portfolio(server, *, username: str = "alice"):
    """80% SPY / 20% BND against 60/40 targets, held at the fake Alpaca ``server`` exactly as in the
    portfolio (no cash)."""
    owner = make_user(username)
    account = broker_account_create(
        owner=owner,
        kind="alpaca",
        label="Alpaca paper",
        credentials={"api_key": "fake-key-id", "secret_key": "fake-secret-key"},
    )
    holdings = {"SPY": shares_worth(Decimal(8000), "SPY"), "BND": shares_worth(Decimal(2000), "BND")}
    server.cash = "0"
    for symbol, quantity in holdings.items():
        server.set_price(symbol, str(close(symbol)))
        server.set_position(symbol, str(quantity), avg_entry_price=str(close(symbol)))
    return _held_at(account, holdings)


def use_fake_ib(settings, gateway, **options) -> None:
    """Point the IB adapter at the fake ``gateway`` (IB's server time: the open of MARKET_OPEN_NOW's
    session; short timeouts; ``options`` override them) and make execution wait briefly."""
    gateway.current_time = MARKET_OPEN_NOW
    settings.BROKER_OPTIONS = {
        **settings.BROKER_OPTIONS,
        # The fake lists an order as soon as it holds it (hiding is counted in lookups, not seconds).
        "ib": {"timeout_s": 0.5, "settlement_delay_s": 0.0, "ib_factory": gateway.ib_factory, **options},
    }
    settings.EXECUTION_WAIT_SECONDS = 2.0
    settings.EXECUTION_POLL_SECONDS = 0.02


def ib_portfolio(gateway, *, client_id: int, holdings: dict[str, int] | None = None):
    """Whole shares (default 60 SPY and 5 BND) against 60/40 targets, held at the fake IB exactly
    as in the portfolio (no cash), traded under API client id ``client_id``."""
    owner = make_user()
    account = broker_account_create(owner=owner, kind="ib", label="IB paper", credentials={"client_id": str(client_id)})
    holdings = {symbol: Decimal(quantity) for symbol, quantity in (holdings or {"SPY": 60, "BND": 5}).items()}
    gateway.cash = Decimal(0)
    for symbol, quantity in holdings.items():
        gateway.prices[symbol] = close(symbol)
        gateway.set_position(symbol, quantity, close(symbol))
    return _held_at(account, holdings, fractional_shares=False)


def _held_at(account, holdings: dict[str, Decimal], **policy):
    """The auto portfolio of ``account``'s owner holding ``holdings`` (no cash), 60/40 targets."""
    return make_portfolio(
        account.owner,
        symbols=sorted(holdings),
        holdings=holdings,
        cash_usd=Decimal(0),
        manual_targets={"SPY": "0.6", "BND": "0.4"},
        mode="auto",
        broker_account=account,
        **{**EXACT, **policy},
    )
