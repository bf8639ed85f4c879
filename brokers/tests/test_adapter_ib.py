"""IBBroker against the in-memory IB of tests/fakes/ib.py (real ib_async types, no network)."""

from __future__ import annotations

import importlib.util
import logging
import math
import socket
import sys
import threading
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ib_async
import pytest

from brokers.adapters import ib as ib_module
from brokers.adapters.ib import BACKSTOP_GRACE_S, IBBroker
from brokers.adapters.ib_mapping import decimal_from_ib, float_for_ib, gather_facts, map_state, to_broker_order
from brokers.base import (
    AccountConfig,
    AccountInfo,
    BrokerError,
    BrokerOrder,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from tests.fakes.ib import FakeIBGateway, OnPlace

HOST, PORT, CLIENT_ID = "127.0.0.1", 7497, 3
#: Long enough for any in-memory call; tests that expect a timeout pass a short one.
TIMEOUT_S = 2.0
SHORT_TIMEOUT_S = 0.25
SECRET = "not-an-ib-credential-but-must-never-be-logged"


def make_broker(
    gateway: FakeIBGateway | None,
    *,
    timeout_s: float = TIMEOUT_S,
    live: bool = False,
    client_id: int = CLIENT_ID,
    **extra,
) -> IBBroker:
    options: dict[str, object] = {"timeout_s": timeout_s, **extra}
    if gateway is not None:
        options["ib_factory"] = gateway.ib_factory
    credentials = {"host": HOST, "port": str(PORT), "client_id": str(client_id), "password": SECRET}
    return IBBroker(AccountConfig(account_id=7, kind="ib", live=live, credentials=credentials, options=options))


def buy(client_order_id: str = "run1-spy", symbol: str = "SPY", quantity: str = "10", **kwargs) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id, symbol=symbol, side=Side.BUY, quantity=Decimal(quantity), **kwargs
    )


@pytest.fixture(autouse=True)
def _no_leaked_loop_threads() -> Iterator[None]:
    """Every adapter a test makes is closed by its end, and closing stops its thread."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("ib-loop-") and t.is_alive()]
    assert leaked == []


@pytest.fixture
def gateway() -> FakeIBGateway:
    return FakeIBGateway(cash="100000", prices={"SPY": "500", "VTI": "250.10", "BND": "72.5"})


@pytest.fixture
def broker(gateway: FakeIBGateway) -> Iterator[IBBroker]:
    adapter = make_broker(gateway)
    yield adapter
    adapter.close()
    assert adapter.loop_thread is None or not adapter.loop_thread.is_alive()


@pytest.fixture
def quick(gateway: FakeIBGateway) -> Iterator[IBBroker]:
    """An adapter with a short timeout, for the tests that wait for one."""
    adapter = make_broker(gateway, timeout_s=SHORT_TIMEOUT_S)
    yield adapter
    adapter.close()


# -- conversions and mapping (no connection) ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3.0, "3"),
        (100.0, "100"),
        (0.1 + 0.2, "0.3"),
        (12.3456, "12.3456"),
        (250.1, "250.1"),
        (-0.0, "0"),
        (1e-12, "0"),
        ("100000.00", "100000"),
        ("72.50", "72.5"),
        (Decimal("1.2500"), "1.25"),
    ],
)
def test_decimal_from_ib_drops_binary_noise_and_trailing_zeros(value, expected):
    result = decimal_from_ib(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize("value", [None, "", float("nan"), math.inf, sys.float_info.max, "n/a"])
def test_decimal_from_ib_maps_ib_unset_markers_to_none(value):
    assert decimal_from_ib(value) is None


def test_float_for_ib_is_exact_or_refuses():
    assert float_for_ib(Decimal("3"), "quantity") == 3.0
    assert float_for_ib(Decimal("480.55"), "limit price") == 480.55
    with pytest.raises(BrokerError) as caught:
        float_for_ib(Decimal("1.00000000000000000001"), "quantity")
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("status", "filled", "rejected", "expected"),
    [
        ("PendingSubmit", "0", False, OrderState.NEW),
        ("ApiPending", "0", False, OrderState.NEW),
        ("PreSubmitted", "0", False, OrderState.NEW),
        ("Submitted", "0", False, OrderState.NEW),
        ("Submitted", "4", False, OrderState.PARTIALLY_FILLED),
        ("PreSubmitted", "1", False, OrderState.PARTIALLY_FILLED),
        ("PendingCancel", "0", False, OrderState.NEW),
        ("ValidationError", "0", False, OrderState.NEW),
        ("Filled", "10", False, OrderState.FILLED),
        ("Cancelled", "0", False, OrderState.CANCELED),
        ("ApiCancelled", "0", False, OrderState.CANCELED),
        ("Cancelled", "3", False, OrderState.CANCELED),
        ("Cancelled", "0", True, OrderState.REJECTED),
        ("Inactive", "0", False, OrderState.REJECTED),
        ("SomethingNew", "0", False, OrderState.NEW),
    ],
)
def test_status_mapping(status, filled, rejected, expected):
    assert map_state(status, Decimal(filled), rejected) == expected


def test_an_order_known_only_by_its_executions_stays_open():
    contract = ib_async.Stock("SPY", "", "USD", conId=1)
    execution = ib_async.Execution(
        execId="e1",
        time=datetime(2024, 1, 3, 15, tzinfo=UTC),
        side="BOT",
        shares=2.0,
        price=500.25,
        permId=9,
        orderRef="r1",
    )
    fill = ib_async.Fill(contract, execution, ib_async.CommissionReport(execId="e1"), execution.time)

    order = to_broker_order(gather_facts("r1", [], [fill]))

    assert order.state == OrderState.PARTIALLY_FILLED
    assert (order.quantity, order.filled_quantity, order.filled_avg_price_usd) == (None, Decimal(2), Decimal("500.25"))
    assert order.broker_order_id == "9" and order.side == Side.BUY
    assert gather_facts("other", [], [fill]) is None


def test_invalid_credentials_are_permanent_and_the_message_names_the_key(gateway):
    config = AccountConfig(account_id=1, kind="ib", credentials={"host": HOST, "port": "x", "client_id": "1"})
    with pytest.raises(BrokerError, match="port must be an integer") as caught:
        IBBroker(config)
    assert caught.value.permanent


# -- reads ---------------------------------------------------------------------------------------


def test_account_reads_cash_buying_power_and_equity_as_decimals(gateway, broker):
    gateway.set_position("SPY", "10", "400")

    info = broker.account()

    assert info == AccountInfo(
        cash_usd=Decimal("100000"), buying_power_usd=Decimal("100000"), equity_usd=Decimal("105000")
    )
    assert all(isinstance(v, Decimal) for v in (info.cash_usd, info.buying_power_usd, info.equity_usd))


def test_account_in_another_currency_is_permanent(gateway, broker):
    gateway.base_currency = "EUR"
    with pytest.raises(BrokerError, match="EUR") as caught:
        broker.account()
    assert caught.value.permanent


def test_several_accounts_at_one_login_are_refused(gateway, broker):
    gateway.extra_summary_rows = [ib_async.AccountValue("DU999", "NetLiquidation", "5.00", "USD", "")]
    with pytest.raises(BrokerError, match="2 accounts") as caught:
        broker.account()
    assert caught.value.permanent


def test_positions_are_us_stocks_with_exact_decimal_quantities(gateway, broker):
    gateway.set_position("VTI", "3", "250.1")
    gateway.set_position("BND", "12.3456", "72.123456789")
    noisy = ib_async.Stock("AAPL", "", "USD", conId=5)
    forex = ib_async.Forex("EURUSD", conId=6)
    gateway.extra_positions = [
        ib_async.Position(gateway.account, noisy, 0.1 + 0.2, 190.0),
        ib_async.Position(gateway.account, forex, 1000.0, 1.1),
        ib_async.Position(gateway.account, ib_async.Stock("GONE", "", "USD", conId=7), 0.0, 10.0),
    ]

    positions = broker.positions()

    assert positions == [
        Position("AAPL", Decimal("0.3"), Decimal("190")),
        Position("BND", Decimal("12.3456"), Decimal("72.123456789")),
        Position("VTI", Decimal("3"), Decimal("250.1")),
    ]
    assert str(positions[2].quantity) == "3"


def test_a_short_position_is_a_permanent_error(gateway, broker):
    gateway.set_position("SPY", "-5", "500")
    with pytest.raises(BrokerError, match="short position in SPY") as caught:
        broker.positions()
    assert caught.value.permanent


def test_clock_uses_ib_server_time_with_the_nyse_calendar(gateway, broker):
    gateway.current_time = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York

    clock = broker.clock()

    assert clock.timestamp == gateway.current_time
    assert clock.is_open
    assert clock.next_close == datetime(2024, 1, 3, 21, 0, tzinfo=UTC)
    assert clock.next_open == datetime(2024, 1, 4, 14, 30, tzinfo=UTC)

    gateway.current_time = datetime(2024, 1, 6, 15, 0, tzinfo=UTC)  # Saturday
    weekend = broker.clock()
    assert not weekend.is_open
    assert weekend.next_open == datetime(2024, 1, 8, 14, 30, tzinfo=UTC)


def test_asset_qualifies_a_us_stock_and_reports_it_not_fractionable(broker):
    asset = broker.asset("vti")
    assert (asset.symbol, asset.tradable, asset.fractionable) == ("VTI", True, False)


def test_unknown_symbol_is_permanent(broker):
    with pytest.raises(BrokerError, match="NOPE") as caught:
        broker.asset("NOPE")
    assert caught.value.permanent


def test_a_read_that_times_out_is_transient(gateway, quick):
    gateway.stall("accountSummaryAsync")
    with pytest.raises(BrokerError, match="timed out") as caught:
        quick.account()
    assert not caught.value.permanent and not caught.value.unknown


# -- orders --------------------------------------------------------------------------------------


def test_market_order_fills_and_carries_the_client_order_id_in_order_ref(gateway, broker):
    order = broker.submit_order(buy())

    assert isinstance(order, BrokerOrder)
    assert order.state == OrderState.FILLED
    assert (order.client_order_id, order.symbol, order.side) == ("run1-spy", "SPY", Side.BUY)
    assert (order.quantity, order.filled_quantity, order.filled_avg_price_usd) == (
        Decimal(10),
        Decimal(10),
        Decimal(500),
    )
    assert order.broker_order_id == str(gateway.order("run1-spy").perm_id)
    assert order.broker_status == "Filled" and order.submitted_at is not None
    placed = gateway.order("run1-spy").order
    assert (placed.orderRef, placed.action, placed.orderType, placed.tif) == ("run1-spy", "BUY", "MKT", "DAY")
    assert placed.totalQuantity == 10.0 and isinstance(placed.totalQuantity, float)
    assert gateway.cash == Decimal("100000") - 10 * 500 - Decimal("1.00")
    assert broker.positions() == [Position("SPY", Decimal(10), Decimal(500))]


def test_limit_gtc_order_rests_and_is_listed_open(gateway, broker):
    request = buy("run1-vti", "VTI", "4", order_type=OrderType.LIMIT, limit_price_usd=Decimal("240.55"))
    request = OrderRequest(**{**request.__dict__, "time_in_force": TimeInForce.GTC})

    order = broker.submit_order(request)

    assert order.state == OrderState.NEW and order.broker_status == "Submitted"
    placed = gateway.order("run1-vti").order
    assert (placed.orderType, placed.lmtPrice, placed.tif) == ("LMT", 240.55, "GTC")
    assert [o.client_order_id for o in broker.open_orders()] == ["run1-vti"]
    assert [o.client_order_id for o in broker.open_orders(["vti"])] == ["run1-vti"]
    assert broker.open_orders(["SPY"]) == []


def test_submitting_the_same_client_order_id_twice_places_one_order(gateway, broker):
    first = broker.submit_order(buy())
    second = broker.submit_order(buy())

    assert gateway.placed_count == 1
    assert second.broker_order_id == first.broker_order_id and second.state == OrderState.FILLED


def test_no_status_in_time_is_unknown_then_get_order_resolves_it(gateway, quick):
    gateway.script(OnPlace.SILENT)

    with pytest.raises(BrokerError) as caught:
        quick.submit_order(buy())
    assert caught.value.unknown and "look it up" in str(caught.value)
    assert gateway.placed_count == 1

    pending = quick.get_order("run1-spy")
    assert pending is not None and pending.state == OrderState.NEW

    gateway.fill("run1-spy")
    assert quick.get_order("run1-spy").state == OrderState.FILLED
    assert quick.submit_order(buy()).state == OrderState.FILLED  # resubmission after lookup
    assert gateway.placed_count == 1


def test_after_a_reconnect_an_earlier_order_is_found_with_its_fills(gateway, quick):
    gateway.script(OnPlace.SILENT)
    with pytest.raises(BrokerError):
        quick.submit_order(buy())
    gateway.fill("run1-spy", quantity="4", price="499.5")
    gateway.fill("run1-spy", price="500.5")
    gateway.drop_connection()

    order = quick.get_order("run1-spy")  # a new session: only completed orders and executions know it

    assert gateway.sessions_started == 2
    assert order.state == OrderState.FILLED
    assert (order.filled_quantity, order.filled_avg_price_usd) == (Decimal(10), Decimal("500.1"))
    assert len(order.raw["exec_ids"]) == 2
    assert quick.submit_order(buy()).state == OrderState.FILLED
    assert gateway.placed_count == 1


def test_an_open_order_from_an_earlier_session_is_not_placed_again(gateway, broker):
    gateway.script(OnPlace.PARTIAL, quantity="4")
    broker.submit_order(buy())
    gateway.drop_connection()

    again = broker.submit_order(buy())

    assert gateway.placed_count == 1 and gateway.sessions_started == 2
    assert (again.state, again.quantity) == (OrderState.PARTIALLY_FILLED, Decimal(10))
    assert (again.filled_quantity, again.filled_avg_price_usd) == (Decimal(4), Decimal(500))
    assert [o.client_order_id for o in broker.open_orders()] == ["run1-spy"]


def test_an_unfilled_open_order_from_an_earlier_session_is_not_placed_again(gateway, broker):
    gateway.script(OnPlace.SUBMIT)
    broker.submit_order(buy())
    gateway.drop_connection()

    again = broker.submit_order(buy())

    assert gateway.placed_count == 1
    assert (again.state, again.quantity, again.filled_quantity) == (OrderState.NEW, Decimal(10), Decimal(0))


def test_an_open_order_placed_under_another_client_id_is_not_placed_again(gateway):
    gateway.script(OnPlace.SUBMIT)
    with make_broker(gateway, client_id=3) as first:
        first.submit_order(buy())

    with make_broker(gateway, client_id=4) as second:  # its openTrades() do not show client 3's orders
        again = second.submit_order(buy())
        assert [o.client_order_id for o in second.open_orders()] == ["run1-spy"]

    assert gateway.placed_count == 1
    assert again.state == OrderState.NEW and again.raw["client_id"] == 3


def test_partial_then_full_fill(gateway, broker):
    gateway.script(OnPlace.PARTIAL, quantity="4")

    partial = broker.submit_order(buy())
    assert partial.state == OrderState.PARTIALLY_FILLED
    assert (partial.filled_quantity, partial.filled_avg_price_usd) == (Decimal(4), Decimal(500))

    gateway.fill("run1-spy", price="501")
    full = broker.get_order("run1-spy")
    assert full.state == OrderState.FILLED
    assert (full.filled_quantity, full.filled_avg_price_usd) == (Decimal(10), Decimal("500.6"))


@pytest.mark.parametrize("status", ["Inactive", "Cancelled"])
def test_a_rejected_order_is_rejected_with_ibs_message(gateway, broker, status):
    gateway.script(OnPlace.REJECT, message="no trading permissions", status=status)

    order = broker.submit_order(buy())

    assert order.state == OrderState.REJECTED
    assert "no trading permissions" in order.reject_reason
    assert broker.get_order("run1-spy").state == OrderState.REJECTED
    assert gateway.placed_count == 1


def test_insufficient_funds_is_rejected_by_ib(gateway, broker):
    order = broker.submit_order(buy(quantity="1000"))
    assert order.state == OrderState.REJECTED and "INSUFFICIENT FUNDS" in order.reject_reason


def test_cancel_an_open_order(gateway, broker):
    gateway.script(OnPlace.SUBMIT)
    broker.submit_order(buy())

    broker.cancel_order("run1-spy")

    assert broker.get_order("run1-spy").state == OrderState.CANCELED
    assert broker.open_orders() == []
    broker.cancel_order("run1-spy")  # finished: nothing is sent
    assert len(gateway.cancel_requests) == 1


def test_an_unconfirmed_cancel_leaves_the_order_open(gateway, broker):
    gateway.script(OnPlace.SUBMIT)
    gateway.confirm_cancels = False
    broker.submit_order(buy())

    broker.cancel_order("run1-spy")

    order = broker.get_order("run1-spy")
    assert (order.state, order.broker_status) == (OrderState.NEW, "PendingCancel")


def test_cancel_by_ib_is_canceled_with_the_reason(gateway, broker):
    gateway.script(OnPlace.SUBMIT)
    broker.submit_order(buy())
    gateway.cancel_by_ib("run1-spy", "day order expired")

    order = broker.get_order("run1-spy")

    assert order.state == OrderState.CANCELED and "day order expired" in order.reject_reason


def test_cancel_of_an_unknown_order_is_permanent(broker):
    with pytest.raises(BrokerError) as caught:
        broker.cancel_order("never-sent")
    assert caught.value.permanent


def test_get_order_of_an_unknown_client_order_id_is_none(broker):
    assert broker.get_order("never-sent") is None


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest(client_order_id="n1", symbol="SPY", side=Side.BUY, notional_usd=Decimal("100")),
        OrderRequest(client_order_id="f1", symbol="SPY", side=Side.BUY, quantity=Decimal("0.5")),
    ],
    ids=["notional", "fractional"],
)
def test_notional_and_fractional_orders_are_refused_before_anything_is_sent(gateway, broker, request_):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(request_)
    assert caught.value.permanent
    assert gateway.calls == [] and gateway.placed_count == 0


def test_an_order_for_an_unknown_symbol_is_permanent_and_not_placed(gateway, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy(symbol="NOPE"))
    assert caught.value.permanent and gateway.placed_count == 0


def test_a_lookup_timeout_before_placing_is_transient_and_places_nothing(gateway, quick):
    gateway.stall("reqExecutionsAsync")
    with pytest.raises(BrokerError) as caught:
        quick.submit_order(buy())
    assert not caught.value.unknown and not caught.value.permanent
    assert gateway.placed_count == 0


# -- order ids: exactly once although IB accepts a repeated orderRef -----------------------------


def reserve(adapter: IBBroker, client_order_id: str = "run1-spy") -> str:
    return adapter.reserve_submission_id(buy(client_order_id))


def test_the_fake_gateway_accepts_a_repeated_order_ref_as_ib_does(gateway, broker):
    # Why orders carry a reserved id: without one, a lookup that misses an order TWS has not
    # recorded yet lets a resend through as a second order.
    gateway.hide_new_orders_for(1)
    broker.submit_order(buy())
    broker.submit_order(buy())

    assert [o.ref for o in gateway.orders] == ["run1-spy", "run1-spy"]
    assert broker.positions() == [Position("SPY", Decimal(20), Decimal(500))]


def test_reserved_order_ids_name_the_client_id_and_rise_above_every_id_tws_has_seen(gateway, broker):
    first, second = reserve(broker), reserve(broker, "run1-vti")
    broker.submit_order(buy(submission_id=second))
    gateway.drop_connection()

    after_restart = reserve(broker, "run1-bnd")

    assert (first, second, after_restart) == ("3:1", "3:2", "3:3")
    assert gateway.sessions_started == 2


def test_a_session_never_hands_out_an_id_an_order_was_placed_under(gateway, quick):
    reserved_before_restart = [reserve(quick, f"run1-{n}") for n in range(3)]
    gateway.drop_connection()  # none was placed: the next session starts again at 1
    gateway.script(OnPlace.SILENT)  # no answer from TWS, which would move ib_async's own sequence
    with pytest.raises(BrokerError):
        quick.submit_order(buy(submission_id=reserved_before_restart[2]))

    reserved_after = [reserve(quick, f"run2-{n}") for n in range(3)]

    assert gateway.order("run1-spy").order_id == 3
    assert [int(text.split(":")[1]) for text in reserved_after] == [4, 5, 6]


def test_an_order_is_placed_under_its_reserved_order_id(gateway, broker):
    submission_id = reserve(broker)

    order = broker.submit_order(buy(submission_id=submission_id))

    placed = gateway.order("run1-spy")
    assert submission_id == f"{CLIENT_ID}:{placed.order_id}" and placed.client_id == CLIENT_ID
    assert order.state == OrderState.FILLED and order.raw["order_id"] == placed.order_id


def test_a_resend_after_a_crash_between_placement_and_answer_returns_the_first_order(gateway):
    with make_broker(gateway) as first:
        request = buy(submission_id=reserve(first))
        sent = first.submit_order(request)  # the caller dies before storing this answer

    with make_broker(gateway) as restarted:
        again = restarted.submit_order(request)

    assert gateway.placed_count == 1 and gateway.modifications == [] and gateway.duplicate_refusals == []
    assert again.broker_order_id == sent.broker_order_id and again.state == OrderState.FILLED


def test_a_resend_whose_lookup_misses_an_open_order_modifies_it_instead_of_placing_another(gateway):
    gateway.script(OnPlace.SUBMIT)
    gateway.hide_new_orders_for(1)  # TWS has not listed it by the next lookup
    with make_broker(gateway) as first:
        request = buy(submission_id=reserve(first))
        first.submit_order(request)

    with make_broker(gateway) as restarted:
        again = restarted.submit_order(request)
        assert [o.client_order_id for o in restarted.open_orders()] == ["run1-spy"]
        gateway.fill("run1-spy")
        assert restarted.positions() == [Position("SPY", Decimal(10), Decimal(500))]

    assert gateway.placed_count == 1 and gateway.modifications == [gateway.order("run1-spy")]
    assert (again.state, again.quantity, again.filled_quantity) == (OrderState.NEW, Decimal(10), Decimal(0))


def test_a_resend_whose_lookup_misses_a_filled_order_is_refused_by_tws_and_found_next(gateway):
    gateway.hide_new_orders_for(1)
    with make_broker(gateway) as first:
        request = buy(submission_id=reserve(first))
        first.submit_order(request)

    with make_broker(gateway) as restarted:
        with pytest.raises(BrokerError, match="error 103") as caught:
            restarted.submit_order(request)
        found = restarted.get_order("run1-spy")
        positions = restarted.positions()

    assert caught.value.unknown
    assert gateway.placed_count == 1 and gateway.duplicate_refusals == [(CLIENT_ID, 1, "run1-spy")]
    assert (found.state, found.filled_quantity) == (OrderState.FILLED, Decimal(10))
    assert positions == [Position("SPY", Decimal(10), Decimal(500))]


@pytest.mark.parametrize(
    ("behaviour", "seen_as"), [(OnPlace.SUBMIT, "Submitted"), (OnPlace.FILL, "Filled"), (OnPlace.FILL, "executed")]
)
def test_an_order_id_handed_out_again_after_a_restart_is_not_used_over_another_order(
    gateway, broker, behaviour, seen_as
):
    stale = reserve(broker)  # stored for run1-spy; its executor died before sending
    gateway.drop_connection()
    gateway.script(behaviour)
    reused = reserve(broker, "run2-vti")
    broker.submit_order(buy("run2-vti", "VTI", "4", submission_id=reused))
    if seen_as == "executed":
        gateway.drop_connection()  # a later session knows the filled order by its executions only

    with pytest.raises(BrokerError, match=rf"held by order run2-vti \({seen_as}\)") as caught:
        broker.submit_order(buy(submission_id=stale))

    assert reused == stale
    assert not caught.value.unknown and not caught.value.permanent
    assert gateway.placed_count == 1 and gateway.modifications == [] and gateway.duplicate_refusals == []
    other = gateway.order("run2-vti")
    assert (other.contract.symbol, other.order.totalQuantity, other.ref) == ("VTI", 4.0, "run2-vti")
    assert broker.submit_order(buy(submission_id=reserve(broker))).state == OrderState.FILLED
    assert gateway.placed_count == 2


@pytest.mark.parametrize("stored", [f"{CLIENT_ID + 1}:1", "run1-spy", f"{CLIENT_ID}:0"])
def test_a_stored_id_this_connection_cannot_use_places_nothing(gateway, broker, stored):
    with pytest.raises(BrokerError, match="nothing placed") as caught:
        broker.submit_order(buy(submission_id=stored))

    assert not caught.value.unknown and not caught.value.permanent
    assert gateway.placed_count == 0


@pytest.mark.parametrize("holder", ["an order rejected in an earlier session", "none, below the highest id"])
def test_a_duplicate_order_id_is_unknown_and_the_lookups_do_not_see_the_refused_placement(gateway, broker, holder):
    stale = reserve(broker)  # 3:1, never used
    if holder.startswith("an order"):
        gateway.drop_connection()  # the next session hands 3:1 out again
        gateway.script(OnPlace.REJECT)
    broker.submit_order(buy("run2-vti", "VTI", "4", submission_id=reserve(broker, "run2-vti")))
    gateway.drop_connection()  # IB's completed orders carry no order id: nothing shows who holds 3:1

    with pytest.raises(BrokerError, match=r"as a duplicate \(error 103\)") as caught:
        broker.submit_order(buy(submission_id=stale))

    assert caught.value.unknown
    assert gateway.placed_count == 1 and gateway.duplicate_refusals == [(CLIENT_ID, 1, "run1-spy")]
    assert broker.get_order("run1-spy") is None
    assert "run1-spy" not in {o.client_order_id for o in broker.orders_since(datetime(2000, 1, 1, tzinfo=UTC))}
    assert broker.submit_order(buy(submission_id=reserve(broker))).state == OrderState.FILLED
    assert gateway.placed_count == 2


def test_orders_since_lists_open_completed_executions_only_and_hand_placed_orders(gateway, broker):
    placed_at = datetime(2025, 7, 1, 14, 0, tzinfo=UTC)
    gateway.current_time = placed_at
    gateway.script(OnPlace.SUBMIT)
    broker.submit_order(buy("run1-vti", "VTI", "4"))
    broker.submit_order(buy("run1-spy"))
    # Known to the next lookup by its executions only.
    gateway.hide_new_orders_for(1, only=("trades", "openTrades", "reqAllOpenOrdersAsync", "reqCompletedOrdersAsync"))
    gateway.script(OnPlace.PARTIAL, quantity="3")
    broker.submit_order(buy("run1-bnd", "BND", "10"))
    gateway.hide_new_orders_for(0)
    gateway.place_by_hand("SPY", "SELL", "2")
    gateway.drop_connection()  # a new session: only IB's own lists know these orders

    listed = {o.client_order_id: o for o in broker.orders_since(placed_at - timedelta(hours=1))}

    assert sorted(listed) == ["", "run1-bnd", "run1-spy", "run1-vti"]
    assert (listed["run1-vti"].state, listed["run1-vti"].quantity) == (OrderState.NEW, Decimal(4))
    assert (listed["run1-spy"].state, listed["run1-spy"].filled_quantity) == (OrderState.FILLED, Decimal(10))
    executions_only = listed["run1-bnd"]
    assert (executions_only.broker_status, executions_only.state) == ("executions only", OrderState.PARTIALLY_FILLED)
    assert executions_only.filled_quantity == Decimal(3)
    by_hand = listed[""]
    assert (by_hand.symbol, by_hand.side, by_hand.state, by_hand.quantity) == ("SPY", Side.SELL, OrderState.NEW, 2)
    # Filled before `since`: left out; never filled (no time IB reports): always listed.
    later = broker.orders_since(placed_at + timedelta(hours=1))
    assert sorted(o.client_order_id for o in later) == ["", "run1-vti"]


def test_settlement_delay_and_longest_call_come_from_the_options(gateway):
    with make_broker(gateway) as default:
        assert default.settlement_delay_s == 2.0
        assert default.max_call_s == TIMEOUT_S + BACKSTOP_GRACE_S
    with make_broker(gateway, settlement_delay_s=0) as immediate:
        assert immediate.settlement_delay_s == 0.0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"settlement_delay_s": -1}, "settlement_delay_s"),
        ({"settlement_delay_s": "soon"}, "settlement_delay_s"),
        ({"settlement_delay_s": math.inf}, "settlement_delay_s"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_seconds_options_are_permanent_and_named(gateway, options, named):
    with pytest.raises(BrokerError, match=named) as caught:
        make_broker(gateway, **options)
    assert caught.value.permanent


def test_reserving_an_order_id_without_tws_is_transient(gateway, broker):
    gateway.refuse_connections = True
    with pytest.raises(BrokerError, match=f"{HOST}:{PORT}") as caught:
        reserve(broker)
    assert not caught.value.permanent and not caught.value.unknown


# -- connection, paper/live, thread ----------------------------------------------------------------


def test_connection_refused_is_transient_and_names_host_and_port(gateway, broker, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.refuse_connections = True

    with pytest.raises(BrokerError, match=f"{HOST}:{PORT}") as caught:
        broker.account()

    assert not caught.value.permanent and not caught.value.unknown
    assert SECRET not in caplog.text and SECRET not in str(caught.value)
    gateway.refuse_connections = False
    assert broker.account().cash_usd == Decimal(100000)  # the next call connects


def test_connection_refused_with_the_real_ib_async_client():
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = AccountConfig(
        account_id=1,
        kind="ib",
        credentials={"host": "127.0.0.1", "port": str(port), "client_id": "1"},
        options={"timeout_s": TIMEOUT_S},
    )
    with IBBroker(config) as adapter, pytest.raises(BrokerError, match=f"127.0.0.1:{port}") as caught:
        adapter.positions()
    assert not caught.value.permanent and not caught.value.unknown
    assert not adapter.loop_thread.is_alive()


def test_a_live_account_is_refused_unless_the_config_is_live(gateway):
    gateway.account = "U1234567"
    paper_only = make_broker(gateway)
    try:
        for _ in range(2):  # the refusal does not leave a usable connection behind
            with pytest.raises(BrokerError, match="live account") as caught:
                paper_only.account()
            assert caught.value.permanent
        assert "accountSummaryAsync" not in [method for method, _ in gateway.calls]
    finally:
        paper_only.close()
    with make_broker(gateway, live=True) as live:
        assert live.account().cash_usd == Decimal(100000)


def test_ib_runs_on_its_own_thread_and_close_stops_it(gateway):
    adapter = make_broker(gateway)
    assert adapter.loop_thread is None  # constructing connects nothing and starts nothing

    adapter.account()
    adapter.submit_order(buy())

    loop_thread = adapter.loop_thread
    assert loop_thread.is_alive() and loop_thread is not threading.current_thread()
    assert {thread for _, thread in gateway.calls} == {loop_thread}
    adapter.close()
    assert not loop_thread.is_alive() and loop_thread not in threading.enumerate()
    assert gateway.calls[-1][0] == "disconnect" and gateway.session is None
    with pytest.raises(RuntimeError):
        adapter.account()
    adapter.close()  # idempotent


def test_close_without_any_call_starts_no_thread(gateway):
    before = set(threading.enumerate())
    make_broker(gateway).close()
    assert set(threading.enumerate()) == before and gateway.calls == []


# -- SDK import ----------------------------------------------------------------------------------


def _without(monkeypatch, *names: str) -> None:
    real = importlib.import_module

    def fake_import(name: str):
        if name in names:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name)

    monkeypatch.setattr(ib_module, "_import_module", fake_import)


def test_falls_back_to_ib_insync_when_ib_async_is_missing(gateway, monkeypatch):
    if importlib.util.find_spec("ib_insync") is None:
        # Not installed here: stand one in with the same API (ib_async's classes) under its name.
        standin = types.ModuleType("ib_insync")
        for name in ("IB", "Stock", "MarketOrder", "LimitOrder"):
            setattr(standin, name, getattr(ib_async, name))
        monkeypatch.setitem(sys.modules, "ib_insync", standin)
    _without(monkeypatch, "ib_async")

    with make_broker(gateway) as adapter:
        assert adapter.sdk_name == "ib_insync"
        assert adapter.submit_order(buy()).state == OrderState.FILLED


def test_neither_sdk_installed_is_a_permanent_error_naming_the_package(gateway, monkeypatch):
    _without(monkeypatch, "ib_async", "ib_insync")
    with pytest.raises(BrokerError, match="pip install ib_async") as caught:
        make_broker(gateway)
    assert caught.value.permanent
