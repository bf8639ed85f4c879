"""Sending orders: one by one, each state stored before the next call; resent only when the broker
never took them; every write decided on the row as stored."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.paper import PaperBroker
from brokers.base import Broker, BrokerError, BrokerOrder, OrderState, Side
from brokers.models import Order, OrderEvent, PaperOrder
from brokers.services.accounts import broker_for
from brokers.services.controls import kill_switch_set, trading_halt_reason
from brokers.services.orders import (
    MAX_SUBMIT_ATTEMPTS,
    order_apply,
    order_request,
    orders_send,
    orders_submit,
    redacted,
)
from portfolios.tests.execution_factories import order_row, paper_portfolio, planned_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(prices, clock):
    return planned_run(paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}))


def rows(run, *specs: tuple[str, str, str]) -> list[Order]:
    return [order_row(run, f"os-{number}", *spec) for number, spec in enumerate(specs, start=1)]


def history(order: Order) -> list[tuple[str, str]]:
    return list(order.events.values_list("kind", "state_after"))


def test_orders_are_sent_one_by_one_each_answer_stored_before_the_next_send(run):
    orders = rows(run, ("SPY", "sell", "1"), ("SPY", "sell", "100000"), ("BND", "sell", "2"))
    seen = []

    def sent(order):
        seen.append((order.client_order_id, Order.objects.get(pk=order.pk).state))
        assert PaperOrder.objects.count() == len(seen) - (len(seen) > 1)  # the refused one created nothing

    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, orders, sent=sent)
    assert (
        [(o.client_order_id, o.state) for o in done]
        == seen
        == [
            ("os-1", "filled"),
            ("os-2", "rejected"),
            ("os-3", "filled"),
        ]
    )
    stored = {o.client_order_id: o for o in Order.objects.filter(run=run)}
    assert stored["os-1"].filled_quantity == Decimal(1) and stored["os-1"].submit_attempts == 1
    assert stored["os-1"].submission_id == "os-1"  # the paper broker refuses a repeated client order id
    assert stored["os-2"].reject_reason.startswith("insufficient qty available for order")
    assert history(stored["os-1"]) == [("request", "submitting"), ("response", "filled")]
    assert history(stored["os-2"]) == [("request", "submitting"), ("error", "rejected")]
    assert sorted(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["os-1", "os-3"]


def test_the_kill_switch_read_before_each_send_cancels_the_unsent_orders(run):
    kill_switch_set(user=run.portfolio.owner, active=True, reason="incident")
    orders = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))  # written after it went on
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, orders, halted=lambda: trading_halt_reason(user_id=run.portfolio.owner_id))
    assert [o.state for o in done] == ["canceled", "canceled"] and PaperOrder.objects.count() == 0
    assert done[0].events.get().message == "not sent: kill switch on for this user: incident"


def unsaved(run, client_order_id, symbol, quantity):
    return Order(
        account=run.portfolio.broker_account,
        run=run,
        client_order_id=client_order_id,
        symbol=symbol,
        side="sell",
        quantity=Decimal(quantity),
        estimated_price_usd=Decimal(100),
    )


def test_new_orders_are_written_before_the_broker_takes_them_and_answered_together_or_canceled_unsent(run):
    seen = []

    def written():
        seen.append(list(Order.objects.order_by("id").values_list("client_order_id", "state")))
        assert PaperOrder.objects.count() == 0  # nothing is at the broker before its records exist

    with broker_for(run.portfolio.broker_account) as broker:
        placed = orders_send(
            broker, [unsaved(run, "op-1", "SPY", "1"), unsaved(run, "op-2", "SPY", "100000")], written=written
        )
        assert seen == [[("op-1", "submitting"), ("op-2", "submitting")]]  # the paper broker takes both in one call
        assert [(o.state, o.submit_attempts) for o in placed] == [("filled", 1), ("rejected", 1)]
        assert history(Order.objects.get(client_order_id="op-1")) == [("request", "submitting"), ("response", "filled")]
        assert history(Order.objects.get(client_order_id="op-2")) == [("request", "submitting"), ("error", "rejected")]
        kill_switch_set(user=run.portfolio.owner, active=True, reason="incident")
        halted = orders_send(
            broker,
            [unsaved(run, "op-3", "BND", "1")],
            halted=lambda: trading_halt_reason(user_id=run.portfolio.owner_id),
        )
    assert halted[0].state == "canceled" and halted[0].pk is not None
    assert halted[0].events.get().message == "not sent: kill switch on for this user: incident"
    assert list(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["op-1"]


class OneOrderPerCall(PaperBroker):
    """A broker that takes one order per request, as Alpaca and IB do."""

    max_orders_per_call = 1


def test_at_a_broker_taking_one_order_per_call_each_answer_is_stored_before_the_next_is_sent(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.OneOrderPerCall"}
    seen = []

    def sent(order):
        stored = list(Order.objects.order_by("id").values_list("client_order_id", "state"))
        seen.append((stored, PaperOrder.objects.count()))

    orders = [unsaved(run, "op-1", "SPY", "1"), unsaved(run, "op-2", "SPY", "100000"), unsaved(run, "op-3", "BND", "1")]
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_send(broker, orders, sent=sent)
    assert [o.state for o in done] == ["filled", "rejected", "filled"]
    # Each order is marked as being sent right before its own call, never before the previous answer is stored.
    assert seen == [
        ([("op-1", "filled"), ("op-2", "planned"), ("op-3", "planned")], 1),
        ([("op-1", "filled"), ("op-2", "rejected"), ("op-3", "planned")], 1),
        ([("op-1", "filled"), ("op-2", "rejected"), ("op-3", "filled")], 2),
    ]
    assert history(done[2]) == [("request", "submitting"), ("response", "filled")]


def test_a_kill_switch_turned_on_between_calls_cancels_the_orders_not_sent(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.OneOrderPerCall"}

    def sent(order):
        if order.client_order_id == "op-1":
            kill_switch_set(user=run.portfolio.owner, active=True, reason="incident")

    orders = [unsaved(run, "op-1", "SPY", "1"), unsaved(run, "op-2", "BND", "1")]
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_send(
            broker, orders, sent=sent, halted=lambda: trading_halt_reason(user_id=run.portfolio.owner_id)
        )
    assert [o.state for o in done] == ["filled", "canceled"]
    assert list(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["op-1"]
    assert [state for _, state in history(done[1])] == ["canceled"]  # never marked as being sent


def test_an_order_in_flight_is_looked_up_not_resent_while_the_planned_one_is_sent(run):
    in_flight, planned = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        broker.submit_order(order_request(in_flight))  # the broker took it; the answer was lost
    Order.objects.filter(pk=in_flight.pk).update(state=OrderState.SUBMITTING.value, submit_attempts=1)
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, [in_flight, planned])
    assert [o.state for o in done] == ["filled", "filled"] and PaperOrder.objects.count() == 2
    assert history(done[0]) == [("lookup", "filled")] and done[0].submit_attempts == 1


class LosesTheAnswer(PaperBroker):
    """A send whose outcome is unknown: the call failed, and nothing reached the account."""

    def submit_orders(self, requests):
        raise BrokerError("connection reset", unknown=True)


class RateLimited(PaperBroker):
    """A broker that refuses every send before looking at it (HTTP 429 on every attempt)."""

    def submit_orders(self, requests):
        raise BrokerError("rate limited: not taken", status_code=429)


def test_an_unknown_outcome_confirmed_absent_by_two_reads_goes_back_to_planned(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.LosesTheAnswer"}
    (order,) = rows(run, ("SPY", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        (done,) = orders_submit(broker, [order])
    # Neither the lookup nor the order list has it: it never arrived, and may be sent again.
    assert done.state == "planned" and done.submission_id == "os-1" and PaperOrder.objects.count() == 0
    assert history(done) == [
        ("request", "submitting"),
        ("error", "unknown"),
        ("lookup", "unknown"),
        ("lookup", "planned"),
    ]
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.adapters.paper.PaperBroker"}
    with broker_for(run.portfolio.broker_account) as broker:
        (done,) = orders_submit(broker, [done])
    assert done.state == "filled" and done.submit_attempts == 2 and PaperOrder.objects.count() == 1


def test_a_send_the_broker_refused_before_taking_it_is_not_an_attempt(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.RateLimited"}
    (order,) = rows(run, ("SPY", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        for _ in range(MAX_SUBMIT_ATTEMPTS + 2):
            (order,) = orders_submit(broker, [order])
            assert order.state == "planned" and order.submit_attempts == 0
    assert history(order)[-2:] == [("request", "submitting"), ("error", "planned")]
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.adapters.paper.PaperBroker"}
    with broker_for(run.portfolio.broker_account) as broker:
        (order,) = orders_submit(broker, [order])
    assert order.state == "filled" and order.submit_attempts == 1


def test_an_order_confirmed_absent_after_every_attempt_is_canceled_not_sent_again(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.LosesTheAnswer"}
    (order,) = rows(run, ("SPY", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        for attempt in range(1, MAX_SUBMIT_ATTEMPTS + 1):
            (order,) = orders_submit(broker, [order])
            assert (order.state, order.submit_attempts) == ("planned", attempt)
        (order,) = orders_submit(broker, [order])
    assert order.state == "canceled" and order.submit_attempts == MAX_SUBMIT_ATTEMPTS
    assert order.events.last().message == f"not sent again: the broker never took it in {MAX_SUBMIT_ATTEMPTS} attempts"


def test_the_default_batch_is_the_single_submit_for_each_request(run):
    first, second = rows(run, ("SPY", "sell", "1"), ("SPY", "sell", "100000"))
    with broker_for(run.portfolio.broker_account) as broker:
        answers = Broker.submit_orders(broker, [order_request(first), order_request(second)])
    assert answers[0].state == OrderState.FILLED and answers[0].client_order_id == "os-1"
    assert isinstance(answers[1], BrokerError) and answers[1].permanent


def test_a_decision_on_a_stale_copy_is_taken_again_on_the_stored_row(run):
    (order,) = rows(run, ("SPY", "sell", "1"))
    Order.objects.filter(pk=order.pk).update(state=OrderState.CANCELED.value, version=1)  # say, the kill switch
    assert order.state == "planned"  # the caller's copy
    with broker_for(run.portfolio.broker_account) as broker:
        (done,) = orders_submit(broker, [order])
    assert done.state == "canceled" and PaperOrder.objects.count() == 0 and OrderEvent.objects.count() == 0


def test_an_answer_never_overwrites_a_state_stored_meanwhile(run):
    (order,) = rows(run, ("SPY", "sell", "1"))
    copy = Order.objects.get(pk=order.pk)
    reported = BrokerOrder(
        client_order_id="os-1",
        broker_order_id="b-1",
        symbol="SPY",
        side=Side.SELL,
        state=OrderState.NEW,
        quantity=Decimal(1),
        notional_usd=None,
    )
    Order.objects.filter(pk=order.pk).update(state=OrderState.SUBMITTING.value, version=4)  # sent meanwhile
    order_apply(copy, reported)  # the copy says planned (from there "new" is impossible): decided again
    assert Order.objects.get(pk=order.pk).state == "new" and copy.version == 5
    assert history(copy) == [("response", "new")]


def test_event_payloads_redact_secret_looking_keys_at_any_depth():
    payload = {
        "symbol": "SPY",
        "quantity": Decimal("1.5"),
        "raw": {"API_Key": "k-1", "legs": [{"Authorization": "Bearer t", "side": "buy"}], "secret_key": "s"},
    }
    assert redacted(payload) == {
        "symbol": "SPY",
        "quantity": "1.5",
        "raw": {
            "API_Key": "(redacted)",
            "legs": [{"Authorization": "(redacted)", "side": "buy"}],
            "secret_key": "(redacted)",
        },
    }
    assert redacted(payload) == redacted(payload)  # the judged keys are remembered, not changed
