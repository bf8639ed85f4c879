"""Pre-trade controls: every one must pass before a run's first order is written.

In the order they are checked (the first failure stops execution, fail closed): kill switch,
mode (auto, or the owner's approval), live-trading gates and credentials, the plan's prices are
those of the last completed session and still the latest stored, the market is open (the
broker's clock, cross-checked with the NYSE calendar), each order's notional and the run's
turnover within the limits, the broker holds what the plan sells, buying power covers what the
plan buys. Each check is a `Check` row stored on the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from brokers.base import Broker, BrokerError
from brokers.services.accounts import live_trading_blockers, missing_credentials
from brokers.services.controls import trading_halt_reason
from marketdata import calendar
from marketdata.selectors import latest_closes
from portfolios.models import PlannedTrade, RebalanceRun

# The broker's clock and the calendar may disagree for a minute around the calendar's open and close.
CLOCK_GRACE_SECONDS = 90
# Buying power may fall short of the plan's net buys by this share before the run stops (buys are
# re-sized to the real cash after the sells anyway; a larger gap means holdings are out of sync).
BUYING_POWER_TOLERANCE = Decimal("0.02")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


class CheckFailed(Exception):
    def __init__(self, check: Check):
        super().__init__(f"{check.name}: {check.detail}")
        self.check = check


def _passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _fail(name: str, detail: str) -> Check:
    raise CheckFailed(Check(name, False, detail))


def check_gates(run: RebalanceRun, trades: list[PlannedTrade], *, approved: bool) -> list[Check]:
    """The checks that need no broker: kill switch, mode, live gates, credentials, turnover,
    order sizes, price freshness."""
    portfolio = run.portfolio
    account = portfolio.broker_account
    checks = []
    halt = trading_halt_reason(user_id=portfolio.owner_id)
    checks.append(_fail("kill_switch", halt) if halt else _passed("kill_switch", "off"))
    if portfolio.mode != portfolio.Mode.AUTO and not approved and run.approved_at is None:
        _fail("mode", "the portfolio proposes plans: its owner approves this one before it is executed")
    checks.append(_passed("mode", "auto" if portfolio.mode == portfolio.Mode.AUTO else "approved by the owner"))
    blockers = live_trading_blockers(account)
    if blockers:
        _fail("live_trading", "; ".join(blockers))
    checks.append(_passed("live_trading", "live account, every gate open" if account.is_live else "paper account"))
    missing = missing_credentials(account)
    if missing:
        _fail("credentials", f"{account.label} has no {', '.join(missing)}")
    limit = account.max_order_notional_usd or Decimal(str(settings.MAX_ORDER_NOTIONAL_USD))
    largest = max(trades, key=lambda t: t.notional_usd, default=None)
    if largest is not None and largest.notional_usd > limit:
        what = f"{largest.side} {largest.instrument.symbol} ${largest.notional_usd:,.2f}"
        _fail("max_order_notional", f"{what} is above the ${limit:,.2f} limit per order")
    checks.append(
        _passed("max_order_notional", f"largest order ${largest.notional_usd if largest else 0:,.2f} <= ${limit:,.2f}")
    )
    turnover = run.turnover or Decimal(0)
    cap = Decimal(str(settings.MAX_RUN_TURNOVER))
    if turnover > cap:
        _fail("max_run_turnover", f"the plan turns over {turnover:.2%} one-way, above MAX_RUN_TURNOVER {cap:.2%}")
    checks.append(_passed("max_run_turnover", f"{turnover:.2%} <= {cap:.2%}"))
    checks.append(check_prices(run, trades))
    return checks


def check_prices(run: RebalanceRun, trades: list[PlannedTrade]) -> Check:
    """The plan's prices are the last completed session's, and no newer close has been stored since."""
    expected = calendar.last_completed_session(timezone.now())
    plan_date = date.fromisoformat(run.snapshot.get("price_date", run.trading_date.isoformat()))
    if plan_date != expected:
        _fail(
            "price_freshness",
            f"the plan trades on the closes of {plan_date}; the last completed session is {expected}: plan again",
        )
    symbols = sorted({t.instrument.symbol for t in trades})
    latest = latest_closes(symbols=symbols, on_or_before=expected)
    stale = [s for s in symbols if s not in latest or latest[s][0] != expected]
    if stale:
        _fail("price_freshness", f"no close on {expected} for {', '.join(stale)} (fetch prices, then plan again)")
    return _passed("price_freshness", f"closes of {expected} for {len(symbols)} symbol(s)")


def check_broker(run: RebalanceRun, trades: list[PlannedTrade], broker: Broker, *, now: datetime) -> list[Check]:
    """The checks that ask the broker: market open, positions cover the sells, buying power."""
    try:
        held, info = broker.positions_and_account()
        clock = broker.clock()  # after the account: a paper account's read tells it its hours
        positions = {p.symbol.upper(): p.quantity for p in held}
    except BrokerError as error:
        _fail("broker", f"cannot read the account: {error}")
    checks = [_passed("broker", "account, positions and clock read")]
    if info.trading_blocked:
        _fail("broker", "the broker reports trading blocked on this account")
    if not clock.is_open:
        next_open = timezone.localtime(clock.next_open, ZoneInfo(settings.TIMEZONE))
        _fail("market_open", f"the market is closed; next open {next_open.isoformat()}")
    if broker.follows_exchange_hours:
        # The tolerance is measured from the calendar's own open and close, never from the broker's
        # times: a broker clock that is wrong about the day must not open the market.
        grace = timedelta(seconds=CLOCK_GRACE_SECONDS)
        if not any(calendar.market_clock(moment)[0] for moment in (now, now + grace, now - grace)):
            _fail("market_open", "the broker says the market is open but the NYSE calendar says it is closed")
        checks.append(_passed("market_open", "open (broker clock and NYSE calendar agree)"))
    else:
        checks.append(_passed("market_open", "open (simulated session: the paper account trades at any hour)"))
    held = {t.instrument.symbol: positions.get(t.instrument.symbol, Decimal(0)) for t in trades}
    short = [
        f"{t.instrument.symbol} (sell {t.quantity.normalize():f}, held {held[t.instrument.symbol].normalize():f})"
        for t in trades
        if t.side == PlannedTrade.Side.SELL and held[t.instrument.symbol] < t.quantity
    ]
    if short:
        _fail(
            "positions",
            f"the broker holds less than the plan sells: {', '.join(short)}; sync from the broker and plan again",
        )
    checks.append(_passed("positions", "the broker holds every share the plan sells"))
    buys = sum((t.notional_usd + t.estimated_cost_usd for t in trades if t.side == PlannedTrade.Side.BUY), Decimal(0))
    sells = sum((t.notional_usd - t.estimated_cost_usd for t in trades if t.side == PlannedTrade.Side.SELL), Decimal(0))
    needed = buys - sells
    # Cash, not margin: a margin account's buying power is a multiple of its equity.
    spendable = min(info.cash_usd, info.buying_power_usd)
    if needed > 0 and spendable < needed * (1 - BUYING_POWER_TOLERANCE):
        _fail(
            "buying_power",
            f"buying power ${spendable:,.2f} is below the ${needed:,.2f} the plan's buys need beyond its "
            "sells; sync from the broker and plan again",
        )
    checks.append(_passed("buying_power", f"${spendable:,.2f} available, ${max(needed, 0):,.2f} needed"))
    checks.append(check_assets(broker, trades))
    return checks


def check_assets(broker: Broker, trades: list[PlannedTrade]) -> Check:
    """The broker trades every symbol of the plan, and takes fractions where the plan has them."""
    problems = []
    assets = broker.assets(sorted({trade.instrument.symbol for trade in trades}))
    for trade in trades:
        symbol = trade.instrument.symbol
        asset = assets[symbol]
        if isinstance(asset, BrokerError):
            problems.append(f"{symbol}: {asset}")
            continue
        if not asset.tradable:
            problems.append(f"{symbol} is not tradable at the broker")
        elif trade.quantity != trade.quantity.to_integral_value() and not asset.fractionable:
            problems.append(
                f"{symbol} is not fractionable at the broker but the plan trades {trade.quantity.normalize():f}"
            )
    if problems:
        _fail("assets", "; ".join(problems) + " (plan with whole shares, or without the symbol)")
    return _passed("assets", f"{len(trades)} order(s) tradable as planned")
