"""execute_run against a fake Alpaca on 127.0.0.1, through the real alpaca-py client, under the
faults a real broker throws. For each: the orders at the broker are exactly the planned ones (no
duplicates) and the account ends where the plan said, or the run says exactly why not.

Every fault runs twice: against Alpaca as it is (a repeated client order id is refused) and against
a broker that accepts a repeated id, so exactly once never rests on the broker's refusal."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from brokers.base import OrderState
from brokers.models import Order
from brokers.services.accounts import broker_for
from brokers.services.controls import kill_switch_set
from brokers.services.orders import order_request
from portfolios.models import RebalanceRun
from portfolios.services.execution import ExecutionRefused, execute_run, flow
from portfolios.services.rebalancing import rebalance_run_create
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault, Step

from .execution_factories import NEW_YORK, alpaca_portfolio, planned_run, record_stored_steps, use_fake_alpaca
from .factories import AS_OF, close

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status


@pytest.fixture(params=["refuses-repeats", "accepts-repeats"])
def server(settings, request):
    with FakeAlpacaServer() as fake:
        fake.accept_repeated_client_order_ids = request.param == "accepts-repeats"
        use_fake_alpaca(settings, fake)
        yield fake


@pytest.fixture
def portfolio(prices, clock, server):
    return alpaca_portfolio(server)


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


def test_a_429_storm_longer_than_the_retries_is_not_an_attempt_and_is_sent_again(portfolio, server):
    server.rate_limit_next(5, method="POST", path="/v2/orders")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    sell = run.orders.get(side="sell")
    posts = [p.json()["client_order_id"] for p in server.requests_to("/v2/orders", method="POST")]
    assert posts.count(sell.client_order_id) == 6 and sell.submit_attempts == 1  # 5 refused, then taken
    assert ("error", "planned") in list(sell.events.values_list("kind", "state_after"))


def test_a_429_storm_of_twelve_leaves_the_run_waiting_then_it_sends_and_the_kill_switch_can_end_it(portfolio, server):
    server.rate_limit_next(12, method="POST", path="/v2/orders")  # 4 sends of 3 answers each
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    sell = run.orders.get(side="sell")
    assert run.status == Status.EXECUTING and sell.state == "planned" and sell.submit_attempts == 0
    assert server.orders_created == 0
    execute_run(run=run, submit=True)  # the resume sends it: nothing counts as "already attempted"
    run.refresh_from_db()
    assert run.status == Status.EXECUTING and server.orders_created == 0  # the storm is not over
    kill_switch_set(user=portfolio.owner, active=True, reason="rate limits")
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED and run.error.startswith("stopped: kill switch on")
    assert run.orders.get(side="sell").state == "canceled" and server.orders_created == 0


def test_an_accepted_order_the_lookup_misses_for_long_is_found_in_the_order_list_not_sent_again(portfolio, server):
    server.accept_then_fail(504)  # created, answered 504: the outcome is unknown
    server.lookup_misses = 50  # its lookups by client order id miss for longer than any wait
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
    sell = run.orders.get(side="sell")
    assert list(sell.events.values_list("kind", "state_after")) == [
        ("request", "submitting"),
        ("error", "unknown"),
        ("lookup", "unknown"),
        ("lookup", "filled"),
    ]


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
    if server.accept_repeated_client_order_ids:
        pytest.skip("a send made outside execution's records: only a broker's refusal can catch it")
    run = planned_run(portfolio)
    # A first attempt sent the sell, then died before recording anything.
    sell = run.trades.get(side="sell")
    account = portfolio.broker_account
    sent = Order(
        account=account,
        client_order_id=f"{account.order_prefix}-{run.pk}-{sell.sequence}",
        symbol=sell.instrument.symbol,
        side="sell",
        quantity=sell.quantity,
        estimated_price_usd=sell.estimated_price,
    )
    with broker_for(account) as broker:
        broker.submit_order(order_request(sent))
    # The execution writes the sell and sends it: 422 for the repeated id, then a lookup finds it.
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


def test_a_broker_clock_saying_open_while_the_calendar_is_closed_sends_nothing(portfolio, server, clock):
    # 08:00 in New York before a session: the broker's own times put its close 30 s away.
    clock.now = datetime(2025, 7, 1, 8, 0, tzinfo=NEW_YORK)
    server.set_clock(True, timestamp=clock.now, next_open=clock.now, next_close=clock.now + timedelta(seconds=30))
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED and server.orders_created == 0
    assert run.error == "market_open: the broker says the market is open but the NYSE calendar says it is closed"


def test_a_broker_clock_a_moment_ahead_of_the_calendars_open_is_accepted(portfolio, server, clock):
    clock.now = datetime(2025, 7, 1, 9, 29, 30, tzinfo=NEW_YORK)  # 30 s before the calendar's open
    server.set_clock(True)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)


def test_a_kill_switch_turned_on_and_off_while_the_run_waits_ends_it_stopped_and_it_is_planned_again(
    portfolio, server, clock, settings
):
    settings.EXECUTION_WAIT_SECONDS = 0.1
    server.auto_fill = False  # the sell rests: the run waits for it
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTING and run.execution_step == "sells_sent"
    clock.now += timedelta(minutes=1)
    kill_switch_set(user=portfolio.owner, active=True, reason="checking something")  # cancels the sell
    clock.now += timedelta(minutes=1)
    kill_switch_set(user=portfolio.owner, active=False)
    server.auto_fill = True
    execute_run(run=run, submit=True)  # the resume
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED and "kill switch turned on for this user" in run.error
    assert [(o.side, o.state) for o in run.orders.all()] == [("sell", "canceled")]  # no buy was sent
    assert server.orders_created == 1
    execute_run(run=run, submit=True)  # resuming again sends nothing either
    assert server.orders_created == 1 and run.orders.count() == 1
    # Planned again from what the portfolio holds now (synced at the stop): a new run supersedes it.
    again = rebalance_run_create(portfolio=portfolio, as_of=AS_OF, manual=True).run
    run.refresh_from_db()
    assert again.pk != run.pk and run.superseded_by_id == again.pk and run.superseded_at is not None
    execute_run(run=again, submit=True)
    again.refresh_from_db()
    assert again.status == Status.EXECUTED and server.orders_created == 3
    with pytest.raises(ExecutionRefused, match="superseded"):
        execute_run(run=run, submit=True)


def test_orders_of_unknown_outcome_are_told_to_the_owner_once_per_episode(portfolio, server, settings):
    portfolio.owner.email = "alice@example.com"
    portfolio.owner.save()
    settings.EXECUTION_WAIT_SECONDS = 0.05
    server.hang_next(1, 0.7, method="POST", path="/v2/orders", effect="before")  # taken; answer lost
    lookups = r"/v2/orders(:by_client_order_id)?"
    server.inject(Fault(500, method="GET", path=lookups, count=1000))  # and every lookup fails
    run = planned_run(portfolio)
    for _ in range(3):
        execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTING and run.orders.get().state in ("submitting", "unknown")
    told = [m for m in mail.outbox if m.subject.startswith("Orders with an unknown outcome")]
    assert len(told) == 1
    server.clear_faults()
    server.settle()
    execute_run(run=run, submit=True)
    executed_as_planned(run, server)
