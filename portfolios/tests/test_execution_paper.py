"""execute_run on the paper broker: orders exactly once, pre-trade controls failing closed,
buys re-sized to real cash, crashes at every step resumed, the kill switch, the lease."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail

from brokers.base import OrderState
from brokers.models import Order, OrderEvent, PaperOrder, PaperPosition
from brokers.services.accounts import broker_account_create
from brokers.services.controls import kill_switch_set
from portfolios.models import FrozenError, HoldingsSync, RebalanceRun
from portfolios.services.execution import ExecutionBusy, ExecutionRefused, execute_run, flow
from portfolios.services.execution.lease import lease_claim, lease_store, new_owner

from .execution_factories import (
    MARKET_CLOSED_NOW,
    paper_portfolio,
    planned_run,
    record_stored_steps,
)

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status


@pytest.fixture(autouse=True)
def _fast_waits(settings):
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


@pytest.fixture
def portfolio(prices, clock):
    """80% SPY / 20% BND against 60/40 targets: sell SPY, buy BND."""
    return paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})


def holdings(portfolio) -> dict[str, Decimal]:
    return {h.instrument.symbol: h.quantity for h in portfolio.holdings.select_related("instrument")}


def broker_positions(portfolio) -> dict[str, Decimal]:
    return dict(
        PaperPosition.objects.filter(paper_account__account=portfolio.broker_account).values_list("symbol", "quantity")
    )


def test_a_plan_is_executed_once_and_the_portfolio_ends_where_the_plan_said(portfolio):
    run = planned_run(portfolio)
    trades = {t.instrument.symbol: (t.side, t.quantity) for t in run.trades.select_related("instrument")}
    assert trades["SPY"][0] == "sell" and trades["BND"][0] == "buy"

    result = execute_run(run=run, submit=True)

    run.refresh_from_db()
    assert run.status == Status.EXECUTED and run.execution_step == "reconciled" and result.message == "executed"
    assert all(check["ok"] for check in run.execution["checks"])
    orders = list(run.orders.order_by("id"))
    assert [(o.side, o.symbol, o.state) for o in orders] == [("sell", "SPY", "filled"), ("buy", "BND", "filled")]
    prefix = portfolio.broker_account.order_prefix
    assert [o.client_order_id for o in orders] == [f"{prefix}-{run.pk}-1", f"{prefix}-{run.pk}-2"]
    assert all(o.filled_quantity == trades[o.symbol][1] for o in orders)
    assert PaperOrder.objects.count() == 2
    # No costs, no slippage: the broker and the portfolio hold exactly the plan.
    before = {s: Decimal(h["quantity"]) for s, h in run.snapshot["holdings"].items()}
    expected = {"SPY": before["SPY"] - trades["SPY"][1], "BND": before["BND"] + trades["BND"][1]}
    assert broker_positions(portfolio) == expected == holdings(portfolio)
    assert run.execution["reconciliation"] == {"differences": [], "not_filled": [], "buys_resized": False}
    assert HoldingsSync.objects.filter(run=run).count() == 1
    kinds = list(OrderEvent.objects.filter(order=orders[0]).values_list("kind", "state_after"))
    assert kinds == [("request", "submitting"), ("response", "filled")]
    # Again: nothing more is sent.
    again = execute_run(run=run, submit=True)
    assert again.message == f"run {run.pk}: already executed" and PaperOrder.objects.count() == 2


def test_a_dry_run_checks_and_lists_the_orders_but_writes_nothing(portfolio):
    run = planned_run(portfolio)
    result = execute_run(run=run)
    assert not result.submitted and result.message == "dry run: nothing sent"
    assert [line["side"] for line in result.would_send] == ["sell", "buy"]
    assert {c["name"] for c in result.checks} >= {"kill_switch", "market_open", "buying_power", "positions"}
    run.refresh_from_db()
    assert run.status == Status.PLANNED and Order.objects.count() == 0 and PaperOrder.objects.count() == 0


def _stopped(run, check: str) -> str:
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED, run.error
    assert run.error.startswith(f"{check}: "), run.error
    assert Order.objects.filter(run=run).count() == 0 and PaperOrder.objects.count() == 0
    return run.error


def test_the_global_kill_switch_stops_the_run_before_any_order_and_the_owner_is_told(portfolio):
    portfolio.owner.email = "alice@example.com"
    portfolio.owner.save()
    kill_switch_set(active=True, reason="broker incident")
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert _stopped(run, "kill_switch") == "kill_switch: kill switch on for everyone: broker incident"
    assert mail.outbox[-1].to == ["alice@example.com"] and "No order was sent" in mail.outbox[-1].body
    # Off again: the same run executes.
    kill_switch_set(active=False)
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTED and PaperOrder.objects.count() == 2


def test_a_users_kill_switch_stops_only_that_user(portfolio):
    kill_switch_set(user=portfolio.owner, active=True)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert _stopped(run, "kill_switch") == "kill_switch: kill switch on for this user"


def test_a_propose_mode_portfolio_needs_the_owners_approval(portfolio):
    portfolio.mode = "propose"
    portfolio.save()
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert "its owner approves this one" in _stopped(run, "mode")
    execute_run(run=run, submit=True, approved=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTED


def test_a_closed_market_stops_the_run(portfolio, clock):
    run = planned_run(portfolio)
    clock.now = MARKET_CLOSED_NOW
    # After the close, 2025-07-01 is the last completed session: the plan of 06-30 is stale too,
    # but the market is checked first against the broker only after the gates; freshness fails first.
    execute_run(run=run, submit=True)
    assert "the last completed session is 2025-07-01" in _stopped(run, "price_freshness")


def test_the_market_must_be_open(portfolio, clock):
    run = planned_run(portfolio)
    clock.now = clock.now.replace(hour=9, minute=0)  # before the open: 06-30 is still the last session
    execute_run(run=run, submit=True)
    assert "the market is closed; next open 2025-07-01T09:30:00-04:00" in _stopped(run, "market_open")


@pytest.mark.parametrize(
    ("setting", "value", "check"),
    [("MAX_ORDER_NOTIONAL_USD", 100.0, "max_order_notional"), ("MAX_RUN_TURNOVER", 0.01, "max_run_turnover")],
)
def test_order_size_and_turnover_limits(portfolio, settings, setting, value, check):
    setattr(settings, setting, value)
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    _stopped(run, check)


def test_the_broker_must_hold_what_the_plan_sells(portfolio):
    PaperPosition.objects.filter(symbol="SPY").update(quantity=Decimal(1))
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert "the broker holds less than the plan sells: SPY" in _stopped(run, "positions")


def test_buying_power_must_cover_the_plans_buys(prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 6000, "BND": 0}, cash_usd=Decimal(4000))
    portfolio.broker_account.paper.cash_usd = Decimal(100)
    portfolio.broker_account.paper.save()
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert "buying power $100.00 is below" in _stopped(run, "buying_power")


def test_a_live_account_needs_every_gate(portfolio, settings):
    account = broker_account_create(
        owner=portfolio.owner,
        kind="alpaca",
        label="Live",
        is_live=True,
        credentials={"api_key": "AKTEST12345", "secret_key": "secret12345678"},
    )
    portfolio.broker_account = account
    portfolio.save()
    run = planned_run(portfolio)
    settings.ALLOW_LIVE_TRADING = False
    execute_run(run=run, submit=True)
    error = _stopped(run, "live_trading")
    assert "ALLOW_LIVE_TRADING is not true" in error and "has not opted in" in error


def test_missing_credentials_stop_the_run(portfolio):
    account = broker_account_create(owner=portfolio.owner, kind="alpaca", label="No keys")
    portfolio.broker_account = account
    portfolio.save()
    run = planned_run(portfolio)
    execute_run(run=run, submit=True)
    assert _stopped(run, "credentials") == "credentials: No keys has no api_key, secret_key"


def test_runs_without_a_plan_or_a_broker_are_refused(portfolio):
    run = planned_run(portfolio)
    RebalanceRun.objects.filter(pk=run.pk).update(status=Status.FAILED, error="no price")
    with pytest.raises(ExecutionRefused, match="planning failed"):
        execute_run(run=run, submit=True)


def test_buys_are_resized_to_the_cash_the_sells_actually_raised(prices, clock, monkeypatch):
    # The paper broker slips 40 bps, which the portfolio's cost model (0) does not expect: the SPY
    # sale raises less than the plan assumed. Buys shrink to the cash above the 1% buffer, and the
    # buffer absorbs the buy's own slippage.
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_buffer_weight=Decimal("0.01"))
    run = planned_run(portfolio)
    planned_buy = run.trades.get(side="buy").quantity
    monkeypatch.setattr(flow, "_adapter_options", lambda run: {"slippage_bps": Decimal(40)})
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    buy = run.orders.get(side="buy")
    assert run.status == Status.EXECUTED and buy.state == OrderState.FILLED
    assert Decimal("0.99") < Decimal(run.execution["buys"]["factor"]) < 1 and buy.quantity < planned_buy
    assert run.execution["reconciliation"]["buys_resized"] is True
    portfolio.broker_account.paper.refresh_from_db()
    assert Decimal(0) <= portfolio.broker_account.paper.cash_usd < Decimal(100)


class Crash(Exception):
    pass


# No "sells_sent" or "buys_sent": the paper broker answers every order at once, and each side's
# orders are stored with their "done" step in one transaction.
CRASH_POINTS = [
    "checked",
    "sells_written",
    "sent {sell}",
    "sells_done",
    "buys_written",
    "sent {buy}",
    "buys_done",
    "reconciled",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_step_resumes_without_sending_anything_twice(portfolio, monkeypatch, point):
    run = planned_run(portfolio)
    prefix = f"{portfolio.broker_account.order_prefix}-{run.pk}"
    target = point.format(sell=f"{prefix}-1", buy=f"{prefix}-2")
    crashed = []

    def crash_once(run, step):
        if step == target and not crashed:
            crashed.append(step)
            raise Crash(step)

    monkeypatch.setattr(flow, "checkpoint", crash_once)
    with pytest.raises(Crash):
        execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.lease_owner == ""  # released on the way out
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTED
    assert Order.objects.filter(run=run).count() == run.trades.count() == 2
    assert PaperOrder.objects.count() == 2
    assert all(o.state == OrderState.FILLED for o in run.orders.all())


def test_a_side_filled_at_once_goes_straight_to_its_done_step(portfolio, monkeypatch):
    # The paper broker answers every order filled: "sent" is never stored (it would be overwritten
    # by "done" at once), and a resume from the step before finds every order answered.
    run = planned_run(portfolio)
    stored = record_stored_steps(monkeypatch)
    execute_run(run=run, submit=True)
    assert stored == [
        ("sells_sent", "checked"),
        ("sells_done", "sells_done"),
        ("buys_sent", "sells_done"),
        ("buys_done", "buys_done"),
    ]
    run.refresh_from_db()
    # The buys were sized on the cash the sell left, and that sizing stored with "sells_done".
    assert run.execution["buys"]["factor"] == "1" and set(run.execution["buys"]["quantities"]) == {"BND"}


def test_a_crash_after_the_broker_accepted_is_resolved_by_lookup(portfolio, settings):
    # The process dies after the broker took the orders: their "submitting" marks were stored
    # before the call, and the lost answer is found by looking each order up, never sent again.
    settings.BROKER_ADAPTERS = {
        **settings.BROKER_ADAPTERS,
        "paper": "portfolios.tests.test_execution_paper.LosesAnswers",
    }
    run = planned_run(portfolio)
    with pytest.raises(Crash):
        execute_run(run=run, submit=True)
    sell = run.orders.get(side="sell")
    assert sell.state == OrderState.SUBMITTING and PaperOrder.objects.count() == 1
    LosesAnswers.dies = False
    execute_run(run=run, submit=True)
    run.refresh_from_db()
    sell.refresh_from_db()
    assert run.status == Status.EXECUTED and PaperOrder.objects.count() == 2
    assert list(sell.events.values_list("kind", flat=True)) == ["request", "lookup"]


from brokers.adapters.paper import PaperBroker  # noqa: E402


class DiesAfterTheBroker(PaperBroker):
    """The process dies right after the broker took the batch (while ``dies`` is set)."""

    dies = True

    def submit_orders(self, requests):
        answers = super().submit_orders(requests)
        if type(self).dies:
            raise Crash("process killed after the broker accepted")
        return answers


class LosesAnswers(DiesAfterTheBroker):
    """The answer the broker gave is lost with the process."""


def test_the_kill_switch_mid_run_cancels_what_was_not_sent(portfolio, monkeypatch):
    run = planned_run(portfolio)

    sell = f"{portfolio.broker_account.order_prefix}-{run.pk}-1"

    def halt_after_sells(run, step):
        if step == f"sent {sell}":
            kill_switch_set(active=True, reason="stop now")

    monkeypatch.setattr(flow, "checkpoint", halt_after_sells)
    result = execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.EXECUTION_FAILED and run.error == "stopped: kill switch on for everyone: stop now"
    assert result.message.startswith("stopped")
    assert [(o.side, o.state) for o in run.orders.all()] == [("sell", "filled")]
    assert PaperOrder.objects.count() == 1
    assert holdings(portfolio) == broker_positions(portfolio)  # synced after the stop


def test_the_kill_switch_after_the_last_order_is_done_leaves_the_run_executed(portfolio, monkeypatch):
    run = planned_run(portfolio)
    buy = f"{portfolio.broker_account.order_prefix}-{run.pk}-2"

    def halt_after_the_buy(run, step):
        if step == f"sent {buy}":
            kill_switch_set(active=True, reason="too late for this run")

    monkeypatch.setattr(flow, "checkpoint", halt_after_the_buy)
    result = execute_run(run=run, submit=True)
    run.refresh_from_db()
    # Every order was done: there was nothing left to stop; the switch stays on for what comes next.
    assert run.status == Status.EXECUTED and result.message == "executed"
    assert [(o.side, o.state) for o in run.orders.all()] == [("sell", "filled"), ("buy", "filled")]
    assert holdings(portfolio) == broker_positions(portfolio)


def test_a_second_executor_is_kept_out_by_the_lease(portfolio):
    run = planned_run(portfolio)
    lease_claim(run, "someone-else")
    with pytest.raises(ExecutionBusy, match=f"run {run.pk} is being executed by another process"):
        execute_run(run=run, submit=True)
    assert PaperOrder.objects.count() == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc to tell an exited process")
def test_a_lease_held_by_a_process_that_exited_on_this_host_is_taken_over(portfolio):
    # A worker killed with its cluster: its process id still answers until it is reaped.
    run = planned_run(portfolio)
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{exited.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    try:
        lease_claim(run, f"{socket.gethostname()}:{exited.pid}:gone")
        lease_claim(run, new_owner())  # taken over at once, not after the lease runs out
        alive = f"{socket.gethostname()}:{os.getppid()}:alive"
        RebalanceRun.objects.filter(pk=run.pk).update(lease_owner=alive)
        with pytest.raises(ExecutionBusy):
            lease_claim(run, new_owner())
    finally:
        exited.wait()


def test_an_executor_that_lost_its_lease_stores_and_sends_nothing_more(portfolio, monkeypatch):
    run = planned_run(portfolio)

    def taken_over(run, step):
        if step == "sells_done":  # say, the process stalled past its lease and another took over
            RebalanceRun.objects.filter(pk=run.pk).update(lease_owner="host:1:other")

    monkeypatch.setattr(flow, "checkpoint", taken_over)
    with pytest.raises(ExecutionBusy, match="lease was lost"):
        execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.execution_step == "sells_done" and run.lease_owner == "host:1:other"
    assert list(PaperOrder.objects.values_list("side", flat=True)) == ["sell"]
    assert not run.orders.filter(side="buy").exists()


def test_a_step_stored_under_the_lease_cannot_touch_the_frozen_plan(portfolio):
    run = planned_run(portfolio)
    lease_claim(run, "me")
    with pytest.raises(FrozenError, match="is frozen"):
        lease_store(run, execution_step="checked", drift_before=0)
    run.refresh_from_db()
    assert run.execution_step == ""
