"""Sending a side's orders: together to a broker that takes batches, one by one to any other, with
the same records either way (a request and an answer event per order, each state stored)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.adapters.paper import PaperBroker
from brokers.base import Broker, BrokerError, OrderState
from brokers.models import Order, OrderEvent, PaperOrder
from brokers.services.accounts import broker_for
from brokers.services.controls import kill_switch_set, trading_halt_reason
from brokers.services.orders import order_request, orders_place, orders_submit, redacted
from brokers.states import IllegalTransition
from portfolios.tests.execution_factories import clock, order_row, paper_portfolio, planned_run, prices  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(prices, clock):  # noqa: F811
    return planned_run(paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}))


def rows(run, *specs: tuple[str, str, str]) -> list[Order]:
    return [order_row(run, f"os-{number}", *spec) for number, spec in enumerate(specs, start=1)]


def history(order: Order) -> list[tuple[str, str]]:
    return list(order.events.values_list("kind", "state_after"))


def test_a_batch_is_marked_sent_then_answered_order_by_order(run):
    orders = rows(run, ("SPY", "sell", "1"), ("SPY", "sell", "100000"), ("BND", "sell", "2"))
    seen = []
    with broker_for(run.portfolio.broker_account) as broker:
        assert broker.submits_in_batches
        done = orders_submit(broker, orders, sent=lambda order: seen.append((order.client_order_id, order.state)))
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
    assert stored["os-2"].reject_reason.startswith("insufficient qty available for order")
    assert history(stored["os-1"]) == [("request", "submitting"), ("response", "filled")]
    assert history(stored["os-2"]) == [("request", "submitting"), ("error", "rejected")]
    assert sorted(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["os-1", "os-3"]


def test_a_batch_is_marked_and_answered_in_one_statement_each_whatever_its_size(run):
    orders = rows(run, *[("SPY", "sell", "1")] * 4, ("BND", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker, CaptureQueriesContext(connection) as queries:
        done = orders_submit(broker, orders, fresh=True)
    assert [o.state for o in done] == ["filled"] * 5
    statements = [q["sql"].split()[0] for q in queries.captured_queries if '"brokers_order" ' in q["sql"]]
    assert statements == ["UPDATE", "UPDATE"]  # all marked submitting; all answers stored
    assert [o.filled_quantity for o in Order.objects.filter(run=run)] == [Decimal(1)] * 5


def test_the_kill_switch_read_before_the_batch_sends_none_of_it(run):
    kill_switch_set(user=run.portfolio.owner, active=True, reason="incident")
    orders = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))  # written after it went on
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, orders, halted=lambda: trading_halt_reason(user_id=run.portfolio.owner_id))
    assert [o.state for o in done] == ["canceled", "canceled"] and PaperOrder.objects.count() == 0
    assert done[0].events.get().message == "not sent: kill switch on for this user: incident"


def test_orders_placed_at_the_paper_broker_are_written_with_their_answers_or_canceled_unsent(run):
    def unsaved(client_order_id, symbol, quantity):
        return Order(
            account=run.portfolio.broker_account,
            run=run,
            client_order_id=client_order_id,
            symbol=symbol,
            side="sell",
            quantity=Decimal(quantity),
            estimated_price_usd=Decimal(100),
        )

    with broker_for(run.portfolio.broker_account) as broker:
        placed = orders_place(broker, [unsaved("op-1", "SPY", "1"), unsaved("op-2", "SPY", "100000")])
        assert [(o.state, o.submit_attempts) for o in placed] == [("filled", 1), ("rejected", 1)]
        assert history(Order.objects.get(client_order_id="op-1")) == [("request", "submitting"), ("response", "filled")]
        assert history(Order.objects.get(client_order_id="op-2")) == [("request", "submitting"), ("error", "rejected")]
        kill_switch_set(user=run.portfolio.owner, active=True, reason="incident")
        halted = orders_place(
            broker, [unsaved("op-3", "BND", "1")], halted=lambda: trading_halt_reason(user_id=run.portfolio.owner_id)
        )
    assert halted[0].state == "canceled" and halted[0].pk is not None
    assert halted[0].events.get().message == "not sent: kill switch on for this user: incident"
    assert list(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["op-1"]


def test_an_order_in_flight_is_looked_up_not_resent_while_the_planned_ones_go_together(run):
    in_flight, planned = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        broker.submit_order(order_request(in_flight))  # the broker took it; the answer was lost
    Order.objects.filter(pk=in_flight.pk).update(state=OrderState.SUBMITTING.value, submit_attempts=1)
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, [in_flight, planned])
    assert [o.state for o in done] == ["filled", "filled"] and PaperOrder.objects.count() == 2
    assert history(done[0]) == [("lookup", "filled")] and done[0].submit_attempts == 1


class LosesTheBatch(PaperBroker):
    """A batch whose outcome is unknown (the call failed; nothing reached the account)."""

    def submit_orders(self, requests):
        raise BrokerError("connection reset", unknown=True)


def test_a_batch_with_an_unknown_outcome_is_looked_up_and_never_assumed_failed(run, settings):
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "brokers.tests.test_orders_submit.LosesTheBatch"}
    orders = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))
    with broker_for(run.portfolio.broker_account) as broker:
        done = orders_submit(broker, orders)
    # The lookup finds nothing: each stays unknown, to be sent again under its own id.
    assert [o.state for o in done] == ["unknown", "unknown"] and PaperOrder.objects.count() == 0
    assert history(done[0]) == [("request", "submitting"), ("error", "unknown"), ("lookup", "unknown")]


def test_the_default_batch_is_the_single_submit_for_each_request(run):
    first, second = rows(run, ("SPY", "sell", "1"), ("SPY", "sell", "100000"))
    with broker_for(run.portfolio.broker_account) as broker:
        answers = Broker.submit_orders(broker, [order_request(first), order_request(second)])
    assert answers[0].state == OrderState.FILLED and answers[0].client_order_id == "os-1"
    assert isinstance(answers[1], BrokerError) and answers[1].permanent


def test_orders_changed_behind_a_stale_copy_stop_the_batch_before_anything_is_sent(run):
    first, second = rows(run, ("SPY", "sell", "1"), ("BND", "sell", "1"))
    Order.objects.filter(pk=second.pk).update(state=OrderState.CANCELED.value)  # say, the kill switch
    with broker_for(run.portfolio.broker_account) as broker, pytest.raises(IllegalTransition, match="1 of the orders"):
        orders_submit(broker, [first, second], fresh=True)  # the caller's copies say planned
    assert PaperOrder.objects.count() == 0 and OrderEvent.objects.count() == 0
    assert Order.objects.get(pk=first.pk).state == "planned"


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
