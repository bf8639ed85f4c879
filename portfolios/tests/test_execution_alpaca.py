"""execute_run against a fake Alpaca on 127.0.0.1, through the real alpaca-py client, under the
faults a real broker throws. For each: the orders at the broker are exactly the planned ones (no
duplicates) and the account ends where the plan said, or the run says exactly why not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import OrderState
from brokers.models import Order
from brokers.services import orders
from brokers.services.accounts import broker_account_create
from brokers.services.orders import order_request
from portfolios.models import RebalanceRun
from portfolios.services.execution import execute_run, flow
from tests.fakes.alpaca_server import FakeAlpacaServer, Step

from .execution_factories import clock, planned_run, prices, record_stored_steps, shares_worth  # noqa: F401
from .factories import close, make_portfolio, make_user

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status
EXACT = {
    "spread_bps": Decimal(0),
    "impact_bps": Decimal(0),
    "commission_per_trade_usd": Decimal(0),
    "cash_buffer_weight": Decimal(0),
    "min_trade_usd": Decimal(0),
    "band_mode": "absolute",
    "band_abs": Decimal("0.05"),
}


@pytest.fixture
def server(settings):
    with FakeAlpacaServer() as fake:
        settings.BROKER_OPTIONS = {
            **settings.BROKER_OPTIONS,
            "alpaca": {
                "paper_url": fake.url,
                "live_url": "https://api.alpaca.markets",
                "timeout_s": 0.5,
                "retry_attempts": 2,
                "retry_wait_s": 0.01,
            },
        }
        settings.EXECUTION_WAIT_SECONDS = 2.0
        settings.EXECUTION_POLL_SECONDS = 0.01
        yield fake


@pytest.fixture
def portfolio(prices, clock, server):  # noqa: F811
    """80% SPY / 20% BND against 60/40 targets, held at Alpaca exactly as in the portfolio."""
    owner = make_user()
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
    return make_portfolio(
        owner,
        symbols=["SPY", "BND"],
        holdings=holdings,
        cash_usd=Decimal(0),
        manual_targets={"SPY": "0.6", "BND": "0.4"},
        mode="auto",
        broker_account=account,
        **EXACT,
    )


def planned_after(run: RebalanceRun) -> dict[str, Decimal]:
    after = {s: Decimal(h["quantity"]) for s, h in run.snapshot["holdings"].items()}
    for trade in run.trades.select_related("instrument"):
        sign = 1 if trade.side == "buy" else -1
        after[trade.instrument.symbol] += sign * trade.quantity
    return after


def fake_positions(server) -> dict[str, Decimal]:
    return {symbol: Decimal(str(server.position(symbol).qty)) for symbol in ("SPY", "BND") if server.position(symbol)}


def executed_as_planned(run: RebalanceRun, server) -> None:
    run.refresh_from_db()
    assert run.status == Status.EXECUTED, (run.status, run.error, run.execution)
    assert server.orders_created == run.trades.count() == Order.objects.filter(run=run).count() == 2
    assert {o.client_order_id for o in server.orders} == set(run.orders.values_list("client_order_id", flat=True))
    assert all(o.state == OrderState.FILLED for o in run.orders.all())
    assert fake_positions(server) == planned_after(run)
    held = {h.instrument.symbol: h.quantity for h in run.portfolio.holdings.select_related("instrument")}
    assert held == planned_after(run)
    assert run.execution["reconciliation"]["differences"] == []


def test_sells_fill_over_several_polls_then_the_buys_go(portfolio, server):
    server.fill_after_polls = 3
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    posts = server.requests_to("/v2/orders", method="POST")
    assert [p.json()["side"] for p in posts] == ["sell", "buy"]  # the buy only after the sell filled
    assert all(isinstance(p.json()["qty"], str) for p in posts)  # decimals as strings


def test_orders_still_open_after_sending_store_the_sent_step_before_the_wait(portfolio, server, monkeypatch):
    # Accepted, filled polls later: a crash during the wait resumes knowing the side was sent.
    server.fill_after_polls = 3
    run = planned_run(portfolio)
    stored = record_stored_steps(monkeypatch)
    execute_run(run=run, submit=True)
    assert stored == [
        ("sells_sent", "sells_sent"),
        ("sells_done", "sells_done"),
        ("buys_sent", "buys_sent"),
        ("buys_done", "buys_done"),
    ]


def test_accepted_then_504_is_resolved_by_lookup_not_resent(portfolio, server):
    server.accept_then_fail(504)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    sell = run.orders.get(side="sell")
    assert list(sell.events.values_list("kind", "state_after")) == [
        ("request", "submitting"),
        ("error", "unknown"),
        ("lookup", "filled"),
    ]


def test_a_429_storm_the_sdk_retries_through_sends_once(portfolio, server):
    server.rate_limit_next(2, method="POST", path="/v2/orders")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)


def test_a_429_storm_longer_than_the_retries_is_unknown_then_resent_under_the_same_id(portfolio, server):
    server.rate_limit_next(5, method="POST", path="/v2/orders")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    sell = run.orders.get(side="sell")
    ids = {p.json()["client_order_id"] for p in server.requests_to("/v2/orders", method="POST")}
    assert sell.client_order_id in ids and sell.submit_attempts == 2


def test_an_answer_slower_than_the_timeout_is_unknown_and_found(portfolio, server):
    server.hang_next(1, 1.5, method="POST", path="/v2/orders", effect="before")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    server.settle()
    executed_as_planned(run, server)
    assert run.orders.get(side="sell").submit_attempts == 1


def test_a_request_lost_before_processing_is_resent_once(portfolio, server):
    server.hang_next(1, 0.7, method="POST", path="/v2/orders", effect="never")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    server.settle()
    executed_as_planned(run, server)


def test_a_duplicate_client_order_id_finds_the_order_already_there(portfolio, server, monkeypatch):
    run = planned_run(portfolio)
    # A first attempt sent the sell, then died before recording anything.
    original = orders.order_submit
    sent = []

    def send_then_die(broker, order, **kwargs):
        if not sent:
            sent.append(order.client_order_id)
            broker.submit_order(order_request(order))
            raise RuntimeError("process killed")
        return original(broker, order, **kwargs)

    monkeypatch.setattr(orders, "order_submit", send_then_die)
    with pytest.raises(RuntimeError):
        execute_run(run=run, submit=True)
    monkeypatch.setattr(orders, "order_submit", original)
    # The row says planned (the mark never reached the database): resending gets 422, then a lookup.
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    kinds = list(run.orders.get(side="sell").events.values_list("kind", "state_after"))
    assert kinds == [("request", "submitting"), ("error", "unknown"), ("lookup", "filled")]


def test_partial_fills_then_the_rest(portfolio, server):
    run = planned_run(portfolio)
    sell = run.trades.get(side="sell")
    part = (sell.quantity / 3).quantize(Decimal("0.000000001"))
    server.script_next_order(Step.hold(), Step.fill(str(part)), Step.fill(), symbol="SPY")
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    fills = list(run.orders.get(side="sell").events.filter(kind="lookup").values_list("state_after", flat=True))
    assert fills == ["partially_filled", "filled"]


@pytest.mark.parametrize("ending", ["reject", "cancel", "expire"])
def test_a_sell_that_never_fills_leaves_the_buys_to_the_cash_there_is(portfolio, server, ending):
    server.script_next_order(Step.hold(), getattr(Step, ending)(), symbol="SPY")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    states = {o.side: o.state for o in run.orders.all()}
    assert run.status == Status.EXECUTED and states == {
        "sell": {"reject": "rejected", "cancel": "canceled", "expire": "expired"}[ending]
    }
    # No cash came in: the buy was sized to nothing and never sent.
    assert server.orders_created == 1 and run.execution["buys"]["dropped"] == ["BND"]
    assert run.execution["reconciliation"]["not_filled"] == [f"sell SPY: {states['sell']}"]
    assert fake_positions(server) == {s: Decimal(h["quantity"]) for s, h in run.snapshot["holdings"].items()}


def test_a_closed_market_stops_the_run_before_any_order(portfolio, server):
    server.set_clock(is_open=False)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED and run.error.startswith("market_open: the market is closed")
    assert server.orders_created == 0


def test_a_fractional_plan_on_a_non_fractionable_asset_stops_before_any_order(portfolio, server):
    server.add_asset("BND", str(close("BND")), fractionable=False)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED
    assert run.error.startswith("assets: BND is not fractionable at the broker but the plan trades")
    assert server.orders_created == 0


def test_buying_power_gone_before_the_buy_is_a_rejection_the_run_reports(portfolio, server, monkeypatch):
    def withdrawal(run, step):
        if step == "buys_written":
            server.cash = "0"  # an outside withdrawal between sizing and sending

    monkeypatch.setattr(flow, "checkpoint", withdrawal)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    buy = run.orders.get(side="buy")
    assert run.status == Status.EXECUTED and buy.state == OrderState.REJECTED
    assert "insufficient buying power" in buy.reject_reason
    assert server.orders_created == 1
    assert run.execution["reconciliation"]["not_filled"][0].startswith("buy BND: rejected (")


@pytest.mark.parametrize(
    "point", ["checked", "sells_written", "sells_sent", "sells_done", "buys_written", "buys_sent", "buys_done"]
)
def test_a_crash_between_steps_resumes_without_duplicates(portfolio, server, monkeypatch, point):
    server.fill_after_polls = 2
    run = planned_run(portfolio)
    crashed = []

    def crash_once(run, step):
        if step == point and not crashed:
            crashed.append(step)
            raise RuntimeError(f"crash at {step}")

    monkeypatch.setattr(flow, "checkpoint", crash_once)
    with pytest.raises(RuntimeError):
        execute_run(run=run, submit=True)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)


def test_no_secret_reaches_the_logs_the_events_or_the_run(portfolio, server, caplog):
    caplog.set_level("DEBUG")
    server.accept_then_fail(504)
    server.rate_limit_next(5, method="POST", path="/v2/orders")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    events = " ".join(f"{e.message} {e.payload}" for o in run.orders.all() for e in o.events.all())
    stored = f"{run.execution} {run.error} {events}"
    for secret in ("fake-key-id", "fake-secret-key"):
        assert secret not in caplog.text and secret not in stored
