"""execute_run through the IB adapter and a fake IB built from real ib_async types: whole-share
plans, an order whose status never arrives resolved by its orderRef, no duplicates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import OrderState
from brokers.services.accounts import broker_account_create
from portfolios.models import RebalanceRun
from portfolios.services.execution import execute_run, flow
from tests.fakes.ib import FakeIBGateway, OnPlace

from .execution_factories import EXACT, MARKET_OPEN_NOW, clock, planned_run, prices  # noqa: F401
from .factories import close, make_portfolio, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(settings):
    gateway = FakeIBGateway(cash="0", commission="0")
    gateway.current_time = MARKET_OPEN_NOW  # IB's server time drives the adapter's clock
    settings.BROKER_OPTIONS = {**settings.BROKER_OPTIONS, "ib": {"timeout_s": 0.5, "ib_factory": gateway.ib_factory}}
    settings.EXECUTION_WAIT_SECONDS = 2.0
    settings.EXECUTION_POLL_SECONDS = 0.02
    return gateway


@pytest.fixture
def portfolio(prices, clock, gateway):  # noqa: F811
    owner = make_user()
    account = broker_account_create(owner=owner, kind="ib", label="IB paper", credentials={"client_id": "11"})
    holdings = {"SPY": Decimal(60), "BND": Decimal(5)}
    for symbol, quantity in holdings.items():
        gateway.prices[symbol] = close(symbol)
        gateway.set_position(symbol, quantity, close(symbol))
    return make_portfolio(
        owner,
        symbols=["SPY", "BND"],
        holdings=holdings,
        cash_usd=Decimal(0),
        manual_targets={"SPY": "0.6", "BND": "0.4"},
        mode="auto",
        broker_account=account,
        **{**EXACT, "fractional_shares": False},
    )


def test_a_whole_share_plan_executes_once_at_ib(portfolio, gateway, monkeypatch):
    gateway.script(OnPlace.SILENT)  # the sell's status never reaches the session: unknown, then found
    run = planned_run(portfolio)
    trades = {t.instrument.symbol: t for t in run.trades.select_related("instrument")}
    assert len(trades) == 2 and all(t.quantity == t.quantity.to_integral_value() for t in trades.values())
    sell_ref = f"{portfolio.broker_account.order_prefix}-{run.pk}-1"

    def market_fills_the_silent_sell(run, step):
        if step == f"sent {sell_ref}":
            gateway.fill(sell_ref)

    monkeypatch.setattr(flow, "checkpoint", market_fills_the_silent_sell)
    result = execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED, (run.error, result.message, run.execution)
    assert gateway.placed_count == run.orders.count() == 2
    assert {o.state for o in run.orders.all()} == {OrderState.FILLED}
    refs = {o.ref for o in gateway.orders}
    assert refs == set(run.orders.values_list("client_order_id", flat=True))
    sell_events = list(run.orders.get(side="sell").events.values_list("kind", "state_after"))
    assert sell_events[:2] == [("request", "submitting"), ("error", "unknown")]
    held = {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}
    sell, buy = trades["SPY"], trades["BND"]
    assert held == {"SPY": 60 - sell.quantity, "BND": 5 + buy.quantity}
