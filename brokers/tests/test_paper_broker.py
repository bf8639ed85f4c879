"""The built-in paper broker behaves like a real cash account: fills, hours, refusals, no duplicates."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from brokers.base import BrokerError, OrderRequest, OrderState, OrderType, Side, TimeInForce
from brokers.models import PaperAccount, PaperOrder, PaperPosition
from brokers.services.accounts import broker_account_create, broker_for
from brokers.services.paper import paper_account_reset
from marketdata.models import Instrument
from marketdata.selectors import latest_closes
from portfolios.tests.execution_factories import MARKET_CLOSED_NOW, MARKET_OPEN_NOW, NEW_YORK
from portfolios.tests.factories import close, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(prices, clock):
    account = broker_account_create(owner=make_user(), kind="paper", label="Paper")
    paper_account_reset(account=account, cash_usd=Decimal(10_000), positions={"SPY": (Decimal(10), close("SPY"))})
    return account


def raw_close(symbol: str) -> Decimal:
    """The stored close as the paper broker reads it (not rounded)."""
    return Decimal(str(latest_closes(symbols=[symbol], on_or_before=MARKET_OPEN_NOW.date())[symbol][1]))


def order(client_order_id: str, symbol: str, side: Side, quantity: str, **kwargs) -> OrderRequest:
    return OrderRequest(client_order_id=client_order_id, symbol=symbol, side=side, quantity=Decimal(quantity), **kwargs)


def test_a_market_buy_fills_at_the_close_plus_slippage_and_pays_the_commission(account):
    spy = raw_close("SPY")
    with broker_for(account, options={"slippage_bps": 10, "commission_per_trade_usd": 1}) as broker:
        filled = broker.submit_order(order("c-1", "SPY", Side.BUY, "2"))
        price = (spy * Decimal("1.001")).quantize(Decimal("0.000001"))
        assert filled.state == OrderState.FILLED
        assert filled.filled_quantity == Decimal(2) and filled.filled_avg_price_usd == price
        assert broker.account().cash_usd == Decimal(10_000) - (2 * price).quantize(Decimal("0.0001")) - 1
        assert {p.symbol: p.quantity for p in broker.positions()} == {"SPY": Decimal(12)}


def test_a_sell_gets_the_close_less_slippage_and_a_full_sale_removes_the_position(account):
    with broker_for(account, options={"slippage_bps": 10}) as broker:
        sold = broker.submit_order(order("c-1", "SPY", Side.SELL, "10"))
        assert sold.filled_avg_price_usd == (raw_close("SPY") * Decimal("0.999")).quantize(Decimal("0.000001"))
        assert broker.positions() == []


def test_refusals_create_no_order(account):
    Instrument.objects.filter(symbol="BND").update(fractionable=False)
    cases = [
        (order("c-1", "SPY", Side.BUY, "1000"), "insufficient buying power"),
        (order("c-2", "SPY", Side.SELL, "11"), "insufficient qty available"),
        (order("c-3", "ZZZZ", Side.BUY, "1"), "asset ZZZZ not found"),
        (order("c-4", "BND", Side.BUY, "0.5"), "fractional orders are not supported for BND"),
        (
            order("c-5", "SPY", Side.BUY, "0.5", order_type=OrderType.LIMIT, limit_price_usd=Decimal(1)),
            "must be market orders with time in force day",
        ),
    ]
    with broker_for(account) as broker:
        for request, message in cases:
            with pytest.raises(BrokerError, match=message) as raised:
                broker.submit_order(request)
            assert raised.value.permanent and not raised.value.unknown
    assert PaperOrder.objects.count() == 0


def test_a_client_order_id_is_used_once_and_the_resend_is_unknown_then_found(account):
    with broker_for(account) as broker:
        first = broker.submit_order(order("c-1", "SPY", Side.BUY, "1"))
        with pytest.raises(BrokerError, match="client order id must be unique") as raised:
            broker.submit_order(order("c-1", "SPY", Side.BUY, "1"))
        assert raised.value.unknown
        assert broker.get_order("c-1") == first
        assert broker.get_order("c-2") is None
    assert PaperOrder.objects.count() == 1


def test_outside_hours_an_order_waits_for_the_next_session_then_fills(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with broker_for(account) as broker:
        waiting = broker.submit_order(order("c-1", "SPY", Side.BUY, "1"))
        assert waiting.state == OrderState.NEW and not broker.clock().is_open
        assert [o.client_order_id for o in broker.open_orders()] == ["c-1"]
        # Cash is held back for the open buy.
        assert broker.account().buying_power_usd < broker.account().cash_usd
    clock.now = datetime(2025, 7, 2, 9, 31, tzinfo=NEW_YORK)
    with broker_for(account) as broker:
        assert broker.get_order("c-1").state == OrderState.FILLED


def test_outside_hours_a_rejecting_account_refuses(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with (
        broker_for(account, options={"outside_hours": "reject"}) as broker,
        pytest.raises(BrokerError, match="market is closed") as raised,
    ):
        broker.submit_order(order("c-1", "SPY", Side.BUY, "1"))
    assert raised.value.permanent and PaperOrder.objects.count() == 0


def test_a_limit_order_below_the_market_rests_and_expires_after_its_day(account, clock):
    low = (close("SPY") * Decimal("0.9")).quantize(Decimal("0.01"))
    with broker_for(account) as broker:
        resting = broker.submit_order(
            order(
                "c-1",
                "SPY",
                Side.BUY,
                "1",
                order_type=OrderType.LIMIT,
                limit_price_usd=low,
                time_in_force=TimeInForce.DAY,
            )
        )
        assert resting.state == OrderState.NEW
    clock.now = MARKET_OPEN_NOW + timedelta(days=1)
    with broker_for(account) as broker:
        assert broker.get_order("c-1").state == OrderState.EXPIRED
        assert broker.account().buying_power_usd == broker.account().cash_usd == Decimal(10_000)


def test_cancel_stops_an_open_order(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with broker_for(account) as broker:
        broker.submit_order(order("c-1", "SPY", Side.SELL, "3"))
        broker.cancel_order("c-1")
        assert broker.get_order("c-1").state == OrderState.CANCELED
        with pytest.raises(BrokerError, match="not found"):
            broker.cancel_order("c-9")


def test_the_clock_follows_nyse_hours_or_the_simulation(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with broker_for(account) as broker:
        assert not broker.clock().is_open and broker.follows_exchange_hours
        assert broker.clock().next_open == datetime(2025, 7, 2, 9, 30, tzinfo=NEW_YORK)
    PaperAccount.objects.filter(account=account).update(session_mode=PaperAccount.SessionMode.ALWAYS_OPEN)
    with broker_for(account) as broker:
        assert broker.clock().is_open and not broker.follows_exchange_hours
        assert broker.submit_order(order("c-1", "SPY", Side.BUY, "1")).state == OrderState.FILLED


def test_account_equity_values_positions_at_the_latest_close(account):
    with broker_for(account) as broker:
        info = broker.account()
        position = broker.positions()[0]
    assert position.market_value_usd == (10 * raw_close("SPY")).quantize(Decimal("0.0001"))
    assert info.equity_usd == Decimal(10_000) + position.market_value_usd


def test_positions_and_account_read_together_equal_the_separate_reads(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with broker_for(account) as broker:
        broker.submit_order(order("c-1", "SPY", Side.BUY, "2"))  # waits for the open: cash held back
        together = broker.positions_and_account()
        separate = (broker.positions(), broker.account())
    assert together == separate
    positions, info = together
    assert [(p.symbol, p.quantity) for p in positions] == [("SPY", Decimal(10))]
    assert info.buying_power_usd < info.cash_usd == Decimal(10_000)


def test_the_account_and_its_positions_are_read_together(account):
    paper = PaperAccount.objects.get(account=account)
    PaperPosition.objects.create(paper_account=paper, symbol="BND", quantity=Decimal("2.5"), avg_entry_price_usd=70)
    with broker_for(account) as broker:
        positions, info = broker.positions_and_account()
    assert [(p.symbol, p.quantity, p.avg_entry_price_usd) for p in positions] == [
        ("BND", Decimal("2.5"), Decimal(70)),
        ("SPY", Decimal(10), close("SPY")),
    ]
    assert info.cash_usd == Decimal(10_000)
    # An account without positions: its cash alone.
    paper.positions.all().delete()
    with broker_for(account) as broker:
        assert broker.positions() == [] and broker.account().equity_usd == Decimal(10_000)


def test_positions_read_by_the_call_that_fills_queued_orders_are_those_after_the_fills(account, clock):
    clock.now = MARKET_CLOSED_NOW
    with broker_for(account) as broker:
        broker.submit_orders([order("s-1", "SPY", Side.SELL, "10"), order("s-2", "BND", Side.BUY, "3")])
        assert [(p.symbol, p.quantity) for p in broker.positions()] == [("SPY", Decimal(10))]
    clock.now = datetime(2025, 7, 2, 9, 31, tzinfo=NEW_YORK)
    with broker_for(account) as broker:
        # This first call after the open fills both: SPY sold out, BND bought.
        positions, info = broker.positions_and_account()
    assert [(p.symbol, p.quantity) for p in positions] == [("BND", Decimal(3))]
    assert info.equity_usd == (info.cash_usd + positions[0].market_value_usd).quantize(Decimal("0.0001"))


def test_a_batch_answers_each_request_as_one_by_one_and_a_refusal_stops_none_of_the_others(account):
    spy = raw_close("SPY")
    requests = [
        order("b-1", "SPY", Side.SELL, "4"),
        order("b-2", "SPY", Side.SELL, "7"),  # 6 left after b-1: refused, nothing created
        order("b-3", "BND", Side.BUY, "3"),
        order("b-3", "BND", Side.BUY, "3"),  # the same id twice: the second is a resend
        order("b-4", "SPY", Side.SELL, "6"),  # the rest: the position goes
    ]
    with broker_for(account, options={"commission_per_trade_usd": 1}) as broker:
        answers = broker.submit_orders(requests)
        assert [a.state if not isinstance(a, BrokerError) else str(a) for a in answers] == [
            OrderState.FILLED,
            "insufficient qty available for order (requested: 7, available: 6)",
            OrderState.FILLED,
            "client order id must be unique",
            OrderState.FILLED,
        ]
        assert answers[1].permanent and answers[3].unknown and not answers[3].permanent
        assert {p.symbol: p.quantity for p in broker.positions()} == {"BND": Decimal(3)}
        spy, bnd = (price.quantize(Decimal("0.000001")) for price in (spy, raw_close("BND")))
        notional = [
            (quantity * price).quantize(Decimal("0.0001")) for quantity, price in ((4, spy), (6, spy), (3, bnd))
        ]
        # Three fills, one commission each.
        assert broker.account().cash_usd == Decimal(10_000) + notional[0] + notional[1] - notional[2] - 3
    assert sorted(PaperOrder.objects.values_list("client_order_id", flat=True)) == ["b-1", "b-3", "b-4"]
    # The same ids sent again are all refused as known, and nothing changes.
    with broker_for(account) as broker:
        again = broker.submit_orders([order("b-1", "SPY", Side.SELL, "1"), order("b-3", "BND", Side.BUY, "1")])
    assert all(isinstance(a, BrokerError) and a.unknown for a in again) and PaperOrder.objects.count() == 3


def test_a_batch_stores_the_positions_it_moved_once_whatever_the_number_of_fills(account):
    requests = [
        order("p-1", "SPY", Side.SELL, "10"),  # sold out...
        order("p-2", "SPY", Side.BUY, "2"),  # ... and bought back: the same row, at the new price
        order("p-3", "BND", Side.BUY, "5"),  # a new position
        order("p-4", "BND", Side.SELL, "1"),
    ]
    with broker_for(account) as broker, CaptureQueriesContext(connection) as queries:
        answers = broker.submit_orders(requests)
    assert [a.state for a in answers] == [OrderState.FILLED] * 4
    spy, bnd = (price.quantize(Decimal("0.000001")) for price in (raw_close("SPY"), raw_close("BND")))
    stored = PaperPosition.objects.values_list("symbol", "quantity", "avg_entry_price_usd").order_by("symbol")
    assert list(stored) == [("BND", Decimal(4), bnd), ("SPY", Decimal(2), spy)]
    writes = [q["sql"].split()[0] for q in queries.captured_queries if "brokers_paperposition" in q["sql"]]
    assert writes == ["SELECT", "UPDATE", "INSERT"]  # read once; one statement per kind of change


def test_in_a_batch_an_order_left_open_holds_its_cash_back_from_the_next(account, clock):
    clock.now = MARKET_CLOSED_NOW  # both wait for the next session
    spy, bnd = raw_close("SPY"), raw_close("BND")
    first = int(Decimal(6000) / spy) + 1  # over half of the 10,000 cash each
    second = int(Decimal(6000) / bnd) + 1
    with broker_for(account) as broker:
        answers = broker.submit_orders(
            [order("q-1", "SPY", Side.BUY, str(first)), order("q-2", "BND", Side.BUY, str(second))]
        )
        assert answers[0].state == OrderState.NEW and answers[0].updated_at is not None
        assert isinstance(answers[1], BrokerError) and "insufficient buying power" in str(answers[1])
        assert [o.client_order_id for o in broker.open_orders()] == ["q-1"]


def test_inside_a_callers_transaction_a_refusal_leaves_it_usable_and_a_batch_is_part_of_it(account):
    # The paper broker takes part in its caller's transaction (no savepoint of its own): a refusal
    # must not doom the caller's writes, and a batch is rolled back with them.
    class Abandoned(Exception):
        pass

    with broker_for(account) as broker:
        with transaction.atomic():
            with pytest.raises(BrokerError, match="order missing-1 not found"):
                broker.cancel_order("missing-1")
            assert broker.account().cash_usd == Decimal(10_000)  # the transaction goes on
        with pytest.raises(Abandoned), transaction.atomic():
            answers = broker.submit_orders([order("c-1", "SPY", Side.SELL, "4")])
            assert answers[0].state == OrderState.FILLED
            raise Abandoned
        assert not PaperOrder.objects.exists()
        assert {p.symbol: p.quantity for p in broker.positions()} == {"SPY": Decimal(10)}
        assert broker.account().cash_usd == Decimal(10_000)
