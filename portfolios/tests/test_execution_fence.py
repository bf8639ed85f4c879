"""The execution lease is a fence (PostgreSQL; executors in threads, each with its own connection):
an executor that lost its lease neither sends nor stores anything, one whose broker is slow keeps
its lease through every call, and a lease shorter than a broker call is refused before anything
is sent. Each case runs against a broker that accepts a repeated client order id."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from portfolios.models import RebalanceRun
from portfolios.services.execution import ExecutionBusy, ExecutionRefused, execute_run
from tests.fakes import pausing
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.ib import FakeIBGateway, OnPlace

from .execution_factories import alpaca_portfolio, ib_portfolio, planned_run, use_fake_alpaca, use_fake_ib

pytestmark = pytest.mark.django_db(transaction=True)
Status = RebalanceRun.Status


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: executors in other threads cannot share SQLite's in-memory test database")


@pytest.fixture
def pause(settings):
    settings.BROKER_ADAPTERS = {
        **settings.BROKER_ADAPTERS,
        "alpaca": "tests.fakes.pausing.PausingAlpacaBroker",
        "ib": "tests.fakes.pausing.PausingIBBroker",
    }
    with pausing.armed() as pause:
        yield pause


class Executor(threading.Thread):
    """`execute_run` of one run in a thread of its own; ``error`` holds what it raised."""

    def __init__(self, run: RebalanceRun):
        super().__init__(daemon=True)
        self.run_id = run.pk
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            execute_run(run=RebalanceRun(pk=self.run_id), submit=True)
        except BaseException as error:
            self.error = error
        finally:
            connection.close()


def second_executors_while_the_first_runs(run: RebalanceRun, arrived: threading.Event) -> int:
    """Run a first executor in a thread and, each time the broker hears from it (``arrived``), try a
    second one here: how many were refused. Fails if a second one got in or the first one failed."""
    first = Executor(run)
    first.start()
    refused = 0
    while first.is_alive():
        if not arrived.wait(0.2):
            continue
        arrived.clear()
        try:
            result = execute_run(run=run, submit=True)
        except ExecutionBusy:
            refused += 1
            continue
        assert not first.is_alive() and result.run.status == Status.EXECUTED, "a second executor got in"
    first.join()
    assert first.error is None, first.error
    return refused


def lease_runs_out(run: RebalanceRun, clock) -> None:
    """The paused executor's lease ends (the test's clock stands still: its end is moved instead)."""
    RebalanceRun.objects.filter(pk=run.pk).update(lease_until=clock.now - timedelta(seconds=1))


def planned_after(run: RebalanceRun) -> dict[str, Decimal]:
    after = {s: Decimal(h["quantity"]) for s, h in run.snapshot["holdings"].items()}
    for trade in run.trades.select_related("instrument"):
        after[trade.instrument.symbol] += trade.quantity if trade.side == "buy" else -trade.quantity
    return after


@pytest.fixture
def alpaca(settings):
    with FakeAlpacaServer() as fake:
        fake.accept_repeated_client_order_ids = True
        use_fake_alpaca(settings, fake)
        yield fake


def test_an_alpaca_executor_paused_past_its_lease_stores_nothing_after_another_finished_the_run(
    prices, clock, alpaca, pause
):
    alpaca.fill_after_polls = 1  # accepted as "new" at submit, filled when next looked at
    portfolio = alpaca_portfolio(alpaca)
    run = planned_run(portfolio)
    pause.symbol = "SPY"
    first = pause.thread = Executor(run)
    first.start()
    assert pause.paused.wait(30), first.error
    lease_runs_out(run, clock)
    second = execute_run(run=run, submit=True)  # takes the run over and finishes it
    assert second.run.status == Status.EXECUTED
    pause.resume.set()
    first.join(30)
    assert isinstance(first.error, ExecutionBusy) and "lease was lost" in str(first.error)
    run.refresh_from_db()
    sell = run.orders.get(side="sell")
    # The paused executor's answer ("new", nothing filled) never overwrote what the broker reports.
    assert run.status == Status.EXECUTED and sell.state == "filled" and sell.filled_quantity == sell.quantity
    assert not sell.events.filter(kind="response").exists()
    assert alpaca.orders_created == 2 == len({o.client_order_id for o in alpaca.orders})
    held = {h.instrument.symbol: h.quantity for h in run.portfolio.holdings.select_related("instrument")}
    assert held == planned_after(run)


def test_a_slow_alpaca_broker_never_lets_a_second_executor_in(prices, running_clock, settings):
    with FakeAlpacaServer() as server:
        server.accept_repeated_client_order_ids = True
        use_fake_alpaca(settings, server, timeout_s=1.5, retry_attempts=0)
        settings.EXECUTION_LEASE_SECONDS = 4  # the whole execution takes several times as long
        settings.EXECUTION_WAIT_SECONDS = 10
        settings.EXECUTION_POLL_SECONDS = 0.05
        server.fill_after_polls = 6  # each order is polled for longer than the lease, with nothing to store
        portfolio = alpaca_portfolio(server)
        run = planned_run(portfolio)
        arrived = threading.Event()
        server.on_request = lambda request: arrived.set()
        server.delay_s = 1.0  # every answer
        refused = second_executors_while_the_first_runs(run, arrived)
        run.refresh_from_db()
        took = (run.updated_at - run.created_at).total_seconds()
        assert run.status == Status.EXECUTED and took > 2 * settings.EXECUTION_LEASE_SECONDS
        assert refused >= 5
        assert server.orders_created == 2 == len({o.client_order_id for o in server.orders})


def test_a_lease_shorter_than_a_broker_call_is_refused_before_anything_is_sent(prices, clock, alpaca, settings):
    use_fake_alpaca(settings, alpaca, timeout_s=3, retry_attempts=2, retry_wait_s=1)  # up to 11 s a call
    settings.EXECUTION_LEASE_SECONDS = 10
    run = planned_run(alpaca_portfolio(alpaca))
    with pytest.raises(ExecutionRefused, match="EXECUTION_LEASE_SECONDS=10 is too short"):
        execute_run(run=run, submit=True)
    run.refresh_from_db()
    assert run.status == Status.PLANNED and run.lease_owner == "" and alpaca.orders_created == 0


@pytest.fixture
def gateway(settings):
    fake = FakeIBGateway(cash="0", commission="0")
    use_fake_ib(settings, fake, timeout_s=2.0, settlement_delay_s=0.05)
    return fake


def test_an_ib_executor_paused_past_its_lease_stores_nothing_after_another_finished_the_run(
    prices, clock, gateway, pause
):
    gateway.script(OnPlace.SUBMIT)  # the sell rests at first
    run = planned_run(ib_portfolio(gateway, client_id=7))
    pause.symbol = "SPY"
    first = pause.thread = Executor(run)
    first.start()
    assert pause.paused.wait(30), first.error
    sell = run.orders.get(side="sell")
    gateway.fill(sell.client_order_id)
    gateway.drop_connection()  # TWS lets the stalled client's session go
    lease_runs_out(run, clock)
    second = execute_run(run=run, submit=True)
    assert second.run.status == Status.EXECUTED
    pause.resume.set()
    first.join(30)
    assert isinstance(first.error, ExecutionBusy) and "lease was lost" in str(first.error)
    sell.refresh_from_db()
    assert sell.state == "filled" and sell.filled_quantity == sell.quantity
    assert not sell.events.filter(kind="response").exists()
    assert gateway.placed_count == 2
    held = {h.instrument.symbol: h.quantity for h in run.portfolio.holdings.select_related("instrument")}
    assert held == planned_after(RebalanceRun.objects.get(pk=run.pk))


def test_a_slow_ib_gateway_never_lets_a_second_executor_in(prices, running_clock, gateway, settings):
    gateway.current_time = None  # TWS's time runs with the test's clock
    gateway.now = lambda: running_clock()
    settings.BROKER_OPTIONS = {
        **settings.BROKER_OPTIONS,
        "ib": {**settings.BROKER_OPTIONS["ib"], "timeout_s": 2.5},
    }
    settings.EXECUTION_LEASE_SECONDS = 8  # the whole execution takes longer
    settings.EXECUTION_POLL_SECONDS = 0.05
    run = planned_run(ib_portfolio(gateway, client_id=7))
    arrived = threading.Event()
    gateway.on_call = lambda method: arrived.set()
    gateway.delay_s = 1.0
    refused = second_executors_while_the_first_runs(run, arrived)
    run.refresh_from_db()
    took = (run.updated_at - run.created_at).total_seconds()
    assert run.status == Status.EXECUTED and took > settings.EXECUTION_LEASE_SECONDS
    assert refused >= 5 and gateway.placed_count == 2
