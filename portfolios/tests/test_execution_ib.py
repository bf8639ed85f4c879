"""execute_run through the IB adapter and a fake IB built from real ib_async types: whole-share
plans, an order whose status never arrives resolved by its orderRef, no duplicates. The fake
accepts a repeated orderRef as IB does: each order is sent once because it is looked up before
any resend and placed under an order id reserved and stored before the first send."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.ib import IBBroker
from brokers.base import OrderRequest, OrderState, Side
from brokers.models import Order
from brokers.services.accounts import broker_for
from brokers.services.orders import order_request
from portfolios.models import RebalanceRun
from portfolios.services.execution import execute_run, flow
from tests.fakes.ib import FakeIBGateway, OnPlace

from .execution_factories import ib_portfolio, planned_run, use_fake_ib

pytestmark = pytest.mark.django_db
CLIENT_ID = 11


@pytest.fixture
def gateway(settings):
    gateway = FakeIBGateway(cash="0", commission="0")
    use_fake_ib(settings, gateway)
    return gateway


@pytest.fixture
def portfolio(prices, clock, gateway):
    return ib_portfolio(gateway, client_id=CLIENT_ID)


def executed_once(run: RebalanceRun, gateway: FakeIBGateway, *, other_orders: int = 0) -> None:
    """The run executed, each of its orders at IB exactly once, under its stored order id, and
    the portfolio holds what the plan said."""
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED, (run.error, run.execution)
    assert gateway.placed_count == run.orders.count() + other_orders == 2 + other_orders
    assert gateway.modifications == []
    for order in run.orders.all():
        assert order.state == OrderState.FILLED
        placed = gateway.order(order.client_order_id)
        assert order.submission_id == f"{CLIENT_ID}:{placed.order_id}" and placed.client_id == CLIENT_ID
    trades = {t.instrument.symbol: t for t in run.trades.select_related("instrument")}
    held = {h.instrument.symbol: h.quantity for h in run.portfolio.holdings.select_related("instrument")}
    assert held == {"SPY": 60 - trades["SPY"].quantity, "BND": 5 + trades["BND"].quantity}
    assert {s: q for s, (q, _) in gateway.positions.items()} == held


def events_of(order: Order) -> list[tuple[str, str]]:
    return list(order.events.order_by("id").values_list("kind", "state_after"))


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

    assert result.message == "executed"
    executed_once(run, gateway)
    sell_events = events_of(run.orders.get(side="sell"))
    assert sell_events[:2] == [("request", "submitting"), ("error", "unknown")]


def test_a_crash_after_placement_whose_first_lookup_misses_sends_no_second_order(portfolio, gateway, monkeypatch):
    run = planned_run(portfolio)
    gateway.hide_new_orders_for(1)  # TWS lists each new order only from the second lookup on
    placed_then_crashed = []
    submit = IBBroker.submit_order

    def dies_before_storing_the_first_answer(adapter, request):
        answer = submit(adapter, request)
        if not placed_then_crashed:
            placed_then_crashed.append(request.client_order_id)
            raise RuntimeError("executor killed after the broker answered")
        return answer

    monkeypatch.setattr(IBBroker, "submit_order", dies_before_storing_the_first_answer)
    with pytest.raises(RuntimeError):
        execute_run(run=run, submit=True)
    sell = run.orders.get(side="sell")
    assert (sell.state, gateway.placed_count) == (OrderState.SUBMITTING, 1)

    execute_run(run=run, submit=True)

    executed_once(run, gateway)
    sell = run.orders.get(side="sell")
    assert events_of(sell) == [("request", "submitting"), ("lookup", "submitting"), ("lookup", "filled")]
    assert "first of two reads" in sell.events.order_by("id")[1].message


REFUSED_AS_DUPLICATE = [("error", "unknown"), ("lookup", "unknown"), ("lookup", "planned")]
NEVER_ARRIVED = [("lookup", "submitting"), ("lookup", "planned")]


@pytest.mark.parametrize(
    ("other_order", "refusal", "executions"),
    [
        # Open under the id: placing would modify it, so the adapter refuses before sending.
        (OnPlace.SUBMIT, [("error", "planned")], 1),
        # Finished in an earlier session: nothing shows who holds the id; TWS refuses it (103)
        # and two reads confirm the sell absent. That was the second send under the id (the
        # first, its record written, never went out): a fresh id goes out, when the run is resumed.
        (OnPlace.REJECT, REFUSED_AS_DUPLICATE, 2),
    ],
    ids=["open", "finished"],
)
def test_an_order_id_handed_out_again_after_a_restart_is_replaced(
    portfolio, gateway, monkeypatch, other_order, refusal, executions
):
    run = planned_run(portfolio)

    def crash_once_written(run, step):
        if step == "sells_written":
            raise RuntimeError("executor killed before sending")

    monkeypatch.setattr(flow, "checkpoint", crash_once_written)
    with pytest.raises(RuntimeError):
        execute_run(run=run, submit=True)
    monkeypatch.setattr(flow, "checkpoint", lambda run, step: None)
    sell = run.orders.get(side="sell")
    account = portfolio.broker_account
    stale = sell.submission_id  # reserved and stored with the sell, which was never sent
    assert sell.state == OrderState.SUBMITTING and gateway.placed_count == 0
    gateway.script(other_order)
    with broker_for(account) as next_session:  # TWS hands the never-used id out again
        reused = next_session.reserve_submission_id(order_request(sell))
        other = OrderRequest(
            client_order_id="other-1", symbol="BND", side=Side.SELL, quantity=Decimal(1), submission_id=reused
        )
        next_session.submit_order(other)
    assert reused == stale

    for _ in range(executions):
        execute_run(run=run, submit=True)

    executed_once(run, gateway, other_orders=1)
    sell = run.orders.get(side="sell")
    assert sell.submission_id != stale
    assert events_of(sell) == [
        ("request", "submitting"),
        *NEVER_ARRIVED,
        ("request", "submitting"),
        *refusal,
        ("request", "submitting"),
        ("response", "filled"),
    ]
    untouched = gateway.order("other-1")
    assert (untouched.contract.symbol, untouched.order.totalQuantity, untouched.filled) == ("BND", 1.0, 0)
