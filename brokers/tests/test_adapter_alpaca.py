"""AlpacaBroker through the real alpaca-py TradingClient against the fake Alpaca server on 127.0.0.1.

No SDK mocks: every test sends real HTTP to `tests.fakes.alpaca_server.FakeAlpacaServer`,
which keeps account state (cash, positions, orders) and scripts fills and faults. Timeouts
are 0.3 s and SDK retry waits 0.01 s so the whole file stays fast.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR
from decimal import Decimal as D

import pytest
from alpaca.trading.client import TradingClient

from brokers.adapters.alpaca import AlpacaBroker
from brokers.adapters.alpaca_json import order_state
from brokers.base import AccountConfig, BrokerError, OrderRequest, OrderState, OrderType, Side, TimeInForce
from brokers.registry import adapter_class, broker_from_config
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault, Step

KEY = "fake-key-id"
SECRET = "fake-secret-key"
TIMEOUT_S = 0.3
RETRIES = 2
FAST_OPTIONS = {"timeout_s": TIMEOUT_S, "retry_attempts": RETRIES, "retry_wait_s": 0.01}
ORDERS = "/v2/orders"


@pytest.fixture
def server() -> Iterator[FakeAlpacaServer]:
    """The fake with $10,000 cash, VTI at $250.00 (fractionable) and BND at $72.50 (not fractionable)."""
    with FakeAlpacaServer() as fake:
        fake.cash = "10000"
        fake.add_asset("VTI", "250.00")
        fake.add_asset("BND", "72.50", fractionable=False)
        yield fake


def make_broker(server: FakeAlpacaServer, *, live: bool = False, credentials=None, **options) -> AlpacaBroker:
    url_key = "live_url" if live else "paper_url"
    config = AccountConfig(
        account_id=7,
        kind="alpaca",
        live=live,
        credentials={"api_key": server.api_key, "secret_key": server.secret_key}
        if credentials is None
        else credentials,
        options={url_key: server.url, **FAST_OPTIONS, **options},
    )
    return AlpacaBroker(config)


@pytest.fixture
def broker(server: FakeAlpacaServer) -> Iterator[AlpacaBroker]:
    with make_broker(server) as adapter:
        yield adapter


def buy(client_order_id: str, symbol: str = "VTI", qty: str | None = "1", **fields) -> OrderRequest:
    quantity = None if qty is None else D(qty)
    return OrderRequest(client_order_id, symbol, Side.BUY, quantity=quantity, **fields)


def sell(client_order_id: str, symbol: str = "VTI", qty: str = "1", **fields) -> OrderRequest:
    return OrderRequest(client_order_id, symbol, Side.SELL, quantity=D(qty), **fields)


def posted_bodies(server: FakeAlpacaServer) -> list[dict]:
    return [request.json() for request in server.requests_to(ORDERS, "POST")]


def unused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- construction and configuration ----------------------------------------------------------------------


def test_the_registry_builds_the_alpaca_adapter(server):
    assert adapter_class("alpaca") is AlpacaBroker
    config = AccountConfig(1, "alpaca", credentials={"api_key": KEY, "secret_key": SECRET}, options={})
    assert isinstance(broker_from_config(config), AlpacaBroker)


def test_construction_does_no_network_io(server):
    make_broker(server)
    AlpacaBroker(
        AccountConfig(
            1, "alpaca", credentials={"api_key": KEY, "secret_key": SECRET}, options={"paper_url": unused_url()}
        )
    )

    assert server.requests == []


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [
        pytest.param({}, "api_key, secret_key", id="none"),
        pytest.param({"api_key": "AK-present-value-1"}, "secret_key", id="no-secret"),
        pytest.param({"secret_key": "sk-present-value-2"}, "api_key", id="no-key"),
        pytest.param({"api_key": "AK-present-value-1", "secret_key": "  "}, "secret_key", id="blank-secret"),
    ],
)
def test_missing_credentials_are_permanent_and_name_only_what_is_missing(server, credentials, missing):
    with pytest.raises(BrokerError) as caught:
        make_broker(server, credentials=credentials)

    message = str(caught.value)
    assert caught.value.permanent
    assert f"missing credentials: {missing}" in message
    assert "present-value" not in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        pytest.param({"timeout_s": 0}, "timeout_s", id="zero-timeout"),
        pytest.param({"retry_attempts": -1}, "retry_attempts", id="negative-retries"),
        pytest.param({"retry_wait_s": "soon"}, "retry_wait_s", id="wait-not-a-number"),
        pytest.param({"paper_url": "ftp://example"}, "paper_url", id="not-http"),
        pytest.param({"paper_url": "https://api.alpaca.markets"}, "live trading URL", id="paper-pointing-at-live"),
    ],
)
def test_bad_options_are_permanent(options, fragment):
    config = AccountConfig(1, "alpaca", credentials={"api_key": KEY, "secret_key": SECRET}, options=options)

    with pytest.raises(BrokerError) as caught:
        AlpacaBroker(config)

    assert caught.value.permanent
    assert fragment in str(caught.value)


def test_live_accounts_use_the_live_url_and_paper_accounts_the_paper_url(server):
    with make_broker(server, live=True, paper_url=unused_url()) as live:
        assert live.options.base_url == server.url
        assert live.account().cash_usd == D("10000")
    with make_broker(server, live=False, live_url=unused_url()) as paper:
        assert paper.options.base_url == server.url
        assert paper.account().cash_usd == D("10000")


# --- reads -----------------------------------------------------------------------------------------------


def test_account_is_exact_decimals(server, broker):
    server.set_position("VTI", "2.5", avg_entry_price="200")
    server.cash = "1234.56"

    account = broker.account()

    assert account.cash_usd == D("1234.56")
    assert account.buying_power_usd == D("1234.56")
    assert account.equity_usd == D("1234.56") + D("2.5") * D("250.00")
    assert account.currency == "USD"
    assert account.trading_blocked is False


def test_blocked_account_is_reported_and_its_orders_refused(server, broker):
    server.trading_blocked = True

    assert broker.account().trading_blocked is True
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("blocked-1"))
    assert caught.value.permanent
    assert "not allowed to trade" in str(caught.value)


def test_positions_are_long_positions_with_exact_quantities(server, broker):
    server.set_position("VTI", "3.123456789", avg_entry_price="201.17")
    server.set_position("BND", "10")

    positions = {p.symbol: p for p in broker.positions()}

    assert set(positions) == {"VTI", "BND"}
    assert positions["VTI"].quantity == D("3.123456789")
    assert positions["VTI"].avg_entry_price_usd == D("201.17")
    assert positions["VTI"].market_value_usd == D("3.123456789") * D("250.00")
    assert positions["BND"].quantity == D("10")


def test_a_short_position_is_permanent_and_named_never_dropped(server, broker):
    server.set_position("VTI", "5")
    server.set_position("BND", "-4")

    with pytest.raises(BrokerError) as caught:
        broker.positions()

    assert caught.value.permanent
    assert "BND (-4 shares)" in str(caught.value)


def test_clock_is_timezone_aware(server, broker):
    opens = datetime(2024, 1, 3, 14, 30, tzinfo=UTC)
    closes = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)
    server.set_clock(False, timestamp=datetime(2024, 1, 2, 22, 0, tzinfo=UTC), next_open=opens, next_close=closes)

    clock = broker.clock()

    assert clock.is_open is False
    assert clock.next_open == opens
    assert clock.next_close == closes
    assert clock.timestamp == datetime(2024, 1, 2, 22, 0, tzinfo=UTC)
    assert all(stamp.tzinfo is not None for stamp in (clock.timestamp, clock.next_open, clock.next_close))


def test_asset_reports_tradable_and_fractionable(server, broker):
    server.add_asset("OLD", "5.00", tradable=False, status="inactive")

    vti, bnd, old = broker.asset("VTI"), broker.asset("BND"), broker.asset("OLD")

    assert (vti.symbol, vti.tradable, vti.fractionable) == ("VTI", True, True)
    assert (bnd.tradable, bnd.fractionable) == (True, False)
    assert old.tradable is False


def test_unknown_asset_is_permanent(broker):
    with pytest.raises(BrokerError) as caught:
        broker.asset("NOPE")

    assert caught.value.permanent
    assert caught.value.status_code == 404
    assert "NOPE" in str(caught.value)


def test_transient_read_failures_carry_neither_flag(server, broker):
    server.fail_next(1, 500)

    with pytest.raises(BrokerError) as caught:
        broker.account()

    assert not caught.value.permanent and not caught.value.unknown
    assert caught.value.status_code == 500


def test_unreadable_read_answer_carries_neither_flag(server, broker):
    server.fail_next(1, 200, {"unexpected": True})

    with pytest.raises(BrokerError) as caught:
        broker.account()

    assert not caught.value.permanent and not caught.value.unknown
    assert "unreadable" in str(caught.value)


def test_unreachable_broker_read_carries_neither_flag():
    adapter = AlpacaBroker(
        AccountConfig(
            1, "alpaca", credentials={"api_key": KEY, "secret_key": SECRET}, options={"paper_url": unused_url()}
        )
    )

    with pytest.raises(BrokerError) as caught:
        adapter.clock()

    assert not caught.value.permanent and not caught.value.unknown


def test_a_read_that_hangs_times_out_within_the_timeout(server, broker):
    server.hang_next(1, 3.0, method="GET", path="/v2/account", effect="never")

    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        broker.account()
    elapsed = time.monotonic() - started

    assert not caught.value.permanent and not caught.value.unknown
    assert f"no answer within {TIMEOUT_S:g} s" in str(caught.value)
    assert elapsed < TIMEOUT_S + 1.0


def test_a_read_rate_limited_beyond_the_retries_carries_neither_flag(server, broker):
    server.rate_limit_next(RETRIES + 1, method="GET", path="/v2/positions")

    with pytest.raises(BrokerError) as caught:
        broker.positions()

    assert not caught.value.permanent and not caught.value.unknown
    assert caught.value.status_code == 429
    assert len(server.requests_to("/v2/positions")) == RETRIES + 1


def test_retry_attempts_come_from_the_options(server):
    server.rate_limit_next(1, method="GET", path="/v2/clock")

    with make_broker(server, retry_attempts=0) as adapter, pytest.raises(BrokerError):
        adapter.clock()

    assert len(server.requests_to("/v2/clock")) == 1


# --- submitting --------------------------------------------------------------------------------------------


def test_market_buy_fills_at_submit_and_moves_cash_and_position(server, broker):
    order = broker.submit_order(buy("buy-1", qty="4"))

    assert order.state == OrderState.FILLED
    assert order.broker_status == "filled"
    assert (order.client_order_id, order.symbol, order.side) == ("buy-1", "VTI", Side.BUY)
    assert order.quantity == D("4") and order.notional_usd is None
    assert order.filled_quantity == D("4")
    assert order.filled_avg_price_usd == D("250.00")
    assert order.submitted_at is not None and order.submitted_at.tzinfo is not None
    assert server.cash == D("9000.00")
    assert server.positions() == {"VTI": D("4")}
    assert broker.account().cash_usd == D("9000.00")


def test_the_order_is_posted_with_decimal_strings_and_the_client_order_id(server, broker):
    broker.submit_order(buy("exact-1", qty="0.123456789"))

    (body,) = posted_bodies(server)
    assert body == {
        "symbol": "VTI",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": "exact-1",
        "qty": "0.123456789",
    }


def test_fractional_quantity_round_trips_exactly(server, broker):
    order = broker.submit_order(buy("exact-2", qty="0.123456789"))

    assert order.quantity == D("0.123456789")
    assert order.filled_quantity == D("0.123456789")
    assert broker.get_order("exact-2").filled_quantity == D("0.123456789")
    assert broker.account().cash_usd == D("10000") - D("0.123456789") * D("250.00")
    assert {p.symbol: p.quantity for p in broker.positions()} == {"VTI": D("0.123456789")}


def test_notional_buy_sends_the_notional_as_a_string(server, broker):
    order = broker.submit_order(buy("notional-1", qty=None, notional_usd=D("100.00")))

    (body,) = posted_bodies(server)
    assert body["notional"] == "100.00" and "qty" not in body
    assert order.notional_usd == D("100.00") and order.quantity is None
    assert order.state == OrderState.FILLED
    assert order.filled_quantity == D("0.4")


def test_sell_fills_and_credits_cash(server, broker):
    server.set_position("VTI", "10", avg_entry_price="200")

    order = broker.submit_order(sell("sell-1", qty="4"))

    assert order.state == OrderState.FILLED
    assert server.cash == D("11000.00")
    assert server.positions() == {"VTI": D("6")}


def test_limit_order_rests_until_marketable(server, broker):
    order = broker.submit_order(buy("limit-1", qty="2", order_type=OrderType.LIMIT, limit_price_usd=D("240.00")))

    assert order.state == OrderState.NEW
    assert posted_bodies(server)[0]["limit_price"] == "240.00"
    server.set_price("VTI", "239.50")
    assert server.fill_open_orders() == 1
    filled = broker.get_order("limit-1")
    assert filled.state == OrderState.FILLED
    assert filled.filled_avg_price_usd == D("239.50")


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            buy("f-1", qty="0.5", order_type=OrderType.LIMIT, limit_price_usd=D("250")), id="fractional-limit"
        ),
        pytest.param(buy("f-2", qty="0.5", time_in_force=TimeInForce.GTC), id="fractional-gtc"),
        pytest.param(buy("f-3", qty=None, notional_usd=D("50"), time_in_force=TimeInForce.GTC), id="notional-gtc"),
        pytest.param(buy("f-4", qty="0.1234567891"), id="ten-decimals"),
    ],
)
def test_orders_alpaca_cannot_take_are_refused_before_sending(server, broker, request_):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(request_)

    assert caught.value.permanent
    assert server.requests_to(ORDERS) == []


def test_fractional_order_on_a_non_fractionable_asset_is_permanent(server, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("bnd-frac", symbol="BND", qty="1.5"))

    assert caught.value.permanent
    assert caught.value.status_code == 422
    assert "BND is not fractionable" in str(caught.value)
    assert server.orders_created == 0


def test_notional_order_on_a_non_fractionable_asset_is_permanent(server, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("bnd-notional", symbol="BND", qty=None, notional_usd=D("100")))

    assert caught.value.permanent
    assert server.orders_created == 0


def test_insufficient_buying_power_is_permanent_with_alpacas_message(server, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("too-big", qty="41"))  # $10,250 > $10,000

    assert caught.value.permanent
    assert caught.value.status_code == 403
    assert "insufficient buying power" in str(caught.value)
    assert server.orders_created == 0


def test_selling_more_than_held_is_permanent(server, broker):
    server.set_position("VTI", "2")

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(sell("oversell", qty="3"))

    assert caught.value.permanent
    assert "insufficient qty available" in str(caught.value)
    assert server.positions() == {"VTI": D("2")}


def test_other_validation_errors_are_permanent(server, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("subpenny", order_type=OrderType.LIMIT, limit_price_usd=D("250.001")))

    assert caught.value.permanent
    assert "sub-penny" in str(caught.value)


def test_unknown_symbol_order_is_permanent(server, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("nope-1", symbol="NOPE"))

    assert caught.value.permanent
    assert server.orders_created == 0


# --- order states ---------------------------------------------------------------------------------------

WORKING_WORDS = [
    "new",
    "accepted",
    "pending_new",
    "accepted_for_bidding",
    "pending_review",
    "held",
    "calculated",
    "stopped",
    "suspended",
    "partially_filled",
    "done_for_day",
    "pending_cancel",
    "pending_replace",
    "replaced",
    "a_status_from_the_future",
]
TERMINAL_WORDS = {
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}


@pytest.mark.parametrize("word", WORKING_WORDS)
def test_working_statuses_map_by_filled_quantity(server, broker, word):
    server.script_next_order(Step.status(word))
    server.script_next_order(Step.fill("1"), Step.status(word))

    unfilled = broker.submit_order(buy("w-0", qty="3"))
    broker.submit_order(buy("w-1", qty="3"))
    partly = broker.get_order("w-1")

    assert (unfilled.state, unfilled.broker_status) == (OrderState.NEW, word)
    assert (partly.state, partly.broker_status, partly.filled_quantity) == (OrderState.PARTIALLY_FILLED, word, D(1))


@pytest.mark.parametrize(("word", "state"), TERMINAL_WORDS.items())
def test_terminal_statuses_map_to_terminal_states(server, broker, word, state):
    server.script_next_order(Step.fill("1"), Step.status(word))

    broker.submit_order(buy("t-1", qty="3"))
    order = broker.get_order("t-1")

    assert (order.state, order.broker_status) == (state, word)
    assert order.state.terminal
    assert order.filled_quantity == D(1)


def test_order_state_table():
    for word in WORKING_WORDS:
        assert order_state(word, D(0)) == OrderState.NEW
        assert order_state(word, D("0.5")) == OrderState.PARTIALLY_FILLED
    for word, state in TERMINAL_WORDS.items():
        assert order_state(word, D(0)) == state
        assert order_state(word, D(2)) == state


def test_partial_fills_then_fill_over_polls(server, broker):
    server.script_next_order(Step.hold(), Step.fill("1"), Step.fill("1", price="251.00"), Step.fill())

    submitted = broker.submit_order(buy("partial-1", qty="3"))
    first, second, last = (broker.get_order("partial-1") for _ in range(3))

    assert submitted.state == OrderState.NEW
    assert (first.state, first.filled_quantity) == (OrderState.PARTIALLY_FILLED, D(1))
    assert (second.state, second.filled_quantity, second.filled_avg_price_usd) == (
        OrderState.PARTIALLY_FILLED,
        D(2),
        D("250.5"),
    )
    assert (last.state, last.filled_quantity) == (OrderState.FILLED, D(3))
    assert last.filled_avg_price_usd == D("751.00") / 3
    assert server.cash == D("10000") - D("751.00")
    assert server.positions() == {"VTI": D("3")}


def test_rejected_order(server, broker):
    server.script_next_order(Step.hold(), Step.reject())

    assert broker.submit_order(buy("rej-1")).state == OrderState.NEW
    rejected = broker.get_order("rej-1")

    assert rejected.state == OrderState.REJECTED
    assert rejected.filled_quantity == 0
    assert server.cash == D("10000")


def test_expired_at_end_of_day(server, broker):
    server.auto_fill = False
    broker.submit_order(buy("eod-1"))

    assert server.end_of_day() == 1
    assert broker.get_order("eod-1").state == OrderState.EXPIRED


def test_sell_then_buy_with_the_proceeds_once_the_sell_fills(server, broker):
    """The execution flow: sells first, poll until filled, then buys sized to the cash."""
    server.cash = "0"
    server.set_position("VTI", "4")
    server.fill_after_polls = 2

    sold = broker.submit_order(sell("flow-sell", qty="4"))
    with pytest.raises(BrokerError) as too_early:  # proceeds count only once the sell fills
        broker.submit_order(buy("flow-buy-early", symbol="BND", qty="1"))
    polls = [broker.get_order("flow-sell").state for _ in range(2)]
    cash = broker.account().cash_usd
    shares = (cash / D("72.50")).to_integral_value(rounding=ROUND_FLOOR)
    bought = broker.submit_order(buy("flow-buy", symbol="BND", qty=str(shares)))
    polls_of_buy = [broker.get_order("flow-buy").state for _ in range(2)]

    assert sold.state == OrderState.NEW
    assert too_early.value.permanent
    assert polls == [OrderState.NEW, OrderState.FILLED]
    assert cash == D("1000.00")
    assert bought.state == OrderState.NEW and shares == 13
    assert polls_of_buy == [OrderState.NEW, OrderState.FILLED]
    assert server.positions() == {"BND": D("13")}
    assert server.cash == D("1000.00") - 13 * D("72.50")
    assert server.orders_created == 2


def test_market_closed_order_stays_new_until_the_open(server, broker):
    server.set_clock(False)

    order = broker.submit_order(buy("closed-1", qty="2"))

    assert broker.clock().is_open is False
    assert (order.state, order.broker_status) == (OrderState.NEW, "accepted")
    assert broker.get_order("closed-1").state == OrderState.NEW
    assert server.cash == D("10000")
    server.set_clock(True)
    server.fill_open_orders()
    assert broker.get_order("closed-1").state == OrderState.FILLED
    assert server.cash == D("9500.00")


# --- looking up and cancelling ---------------------------------------------------------------------------


def test_get_order_returns_none_for_an_unknown_client_order_id(broker):
    assert broker.get_order("never-sent") is None


def test_open_orders_lists_every_open_order_and_filters_by_symbol(server, broker):
    server.cash = "100000"
    server.set_position("BND", "100")
    server.auto_fill = False
    for index in range(60):  # more than Alpaca's default page of 50
        broker.submit_order(buy(f"open-{index}", qty="1"))
    broker.submit_order(sell("open-bnd", symbol="BND", qty="5"))
    server.fill_order("open-0")

    everything = broker.open_orders()
    bnd_only = broker.open_orders(["BND"])

    assert len(everything) == 60
    assert {o.client_order_id for o in everything} == {f"open-{i}" for i in range(1, 60)} | {"open-bnd"}
    assert all(o.state == OrderState.NEW for o in everything)
    assert [o.client_order_id for o in bnd_only] == ["open-bnd"]
    assert server.requests_to(ORDERS, "GET")[-1].query["symbols"] == "BND"
    assert broker.open_orders([]) == []


def test_cancel_an_open_order(server, broker):
    server.auto_fill = False
    broker.submit_order(buy("cancel-1", qty="2"))

    broker.cancel_order("cancel-1")

    assert broker.get_order("cancel-1").state == OrderState.CANCELED
    assert len(server.requests_to(ORDERS + "/" + server.order("cancel-1").id, "DELETE")) == 1
    assert broker.account().buying_power_usd == D("10000")


def test_cancelling_a_finished_order_is_not_an_error_and_sends_no_delete(server, broker):
    broker.submit_order(buy("done-1"))

    broker.cancel_order("done-1")

    assert [r for r in server.requests if r.method == "DELETE"] == []
    assert broker.get_order("done-1").state == OrderState.FILLED


def test_an_order_that_finishes_before_the_cancel_arrives_is_not_an_error(server, broker):
    server.auto_fill = False
    broker.submit_order(buy("race-1"))
    server.inject(Fault(422, method="DELETE", body={"code": 42210000, "message": 'order is already in "filled" state'}))

    broker.cancel_order("race-1")


def test_cancelling_an_unknown_order_is_permanent(broker):
    with pytest.raises(BrokerError) as caught:
        broker.cancel_order("never-sent")

    assert caught.value.permanent


def test_a_cancel_that_fails_transiently_is_unknown(server, broker):
    server.auto_fill = False
    broker.submit_order(buy("cancel-500"))
    server.inject(Fault(500, method="DELETE"))

    with pytest.raises(BrokerError) as caught:
        broker.cancel_order("cancel-500")

    assert caught.value.unknown


# --- faults: exactly one order --------------------------------------------------------------------------


def test_accept_then_504_is_unknown_not_retried_and_the_lookup_finds_the_single_order(server, broker):
    server.accept_then_fail(504)

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("a504-1", qty="2"))
    found = broker.get_order("a504-1")

    assert caught.value.unknown
    assert found is not None and found.state == OrderState.FILLED
    assert server.orders_created == 1
    # A 504'd POST may have been processed: the SDK does not send it again, the lookup decides.
    assert len(server.requests_to(ORDERS, "POST")) == 1
    assert server.cash == D("9500.00")


def test_accept_then_504_without_sdk_retries_is_unknown(server):
    server.accept_then_fail(504)

    with make_broker(server, retry_attempts=0) as adapter:
        with pytest.raises(BrokerError) as caught:
            adapter.submit_order(buy("a504-2"))
        assert caught.value.unknown
        assert caught.value.status_code == 504
        assert adapter.get_order("a504-2") is not None
    assert server.orders_created == 1


def test_a_504_at_a_broker_that_accepts_repeated_ids_still_creates_one_order(server, broker):
    server.accept_repeated_client_order_ids = True
    server.accept_then_fail(504)

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("a504-3"))

    assert caught.value.unknown
    assert broker.get_order("a504-3") is not None
    assert server.orders_created == 1


def test_orders_since_lists_open_and_closed_orders_at_once_while_lookups_lag(server, broker):
    server.lookup_misses = 5
    server.auto_fill = False
    resting = broker.submit_order(buy("list-1"))
    server.auto_fill = True
    filled = broker.submit_order(buy("list-2"))

    assert broker.get_order("list-1") is None  # Alpaca's lookup lags the accepted order
    listed = {order.client_order_id: order.state for order in broker.orders_since(datetime(2020, 1, 1, tzinfo=UTC))}
    assert (
        listed
        == {"list-1": resting.state, "list-2": filled.state}
        == {
            "list-1": OrderState.NEW,
            "list-2": OrderState.FILLED,
        }
    )
    assert broker.orders_since(datetime(2100, 1, 1, tzinfo=UTC)) == []


def test_a_refusal_after_only_429s_is_permanent(server, broker):
    server.rate_limit_next(1, method="POST", path=ORDERS)

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("r429-403", qty="100"))

    assert caught.value.permanent
    assert "insufficient buying power" in str(caught.value)


def test_a_429_storm_within_the_retries_creates_exactly_one_order(server, broker):
    server.rate_limit_next(RETRIES, method="POST", path=ORDERS)

    order = broker.submit_order(buy("storm-1"))

    assert order.state == OrderState.FILLED
    assert len(server.requests_to(ORDERS, "POST")) == RETRIES + 1
    assert server.orders_created == 1


def test_a_429_storm_outlasting_the_retries_is_not_taken_and_a_resubmit_creates_one_order(server, broker):
    server.rate_limit_next(RETRIES + 1, method="POST", path=ORDERS)

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("storm-2"))

    # Alpaca's rate limit refuses before processing: the order was not taken (neither flag).
    assert not caught.value.unknown and not caught.value.permanent
    assert "did not take it" in str(caught.value)
    assert caught.value.status_code == 429
    assert server.orders_created == 0
    assert broker.get_order("storm-2") is None
    # Nothing exists, so the caller resubmits under the same client order id.
    assert broker.submit_order(buy("storm-2")).state == OrderState.FILLED
    assert server.orders_created == 1


def test_a_post_that_hangs_is_unknown_within_the_timeout_and_the_order_is_found(server, broker):
    server.hang_next(1, 3.0, method="POST", path=ORDERS, effect="before")

    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("hang-1"))
    elapsed = time.monotonic() - started

    assert caught.value.unknown
    assert elapsed < TIMEOUT_S + 1.0
    assert broker.get_order("hang-1").state == OrderState.FILLED
    assert server.orders_created == 1
    assert len(server.requests_to(ORDERS, "POST")) == 1  # timeouts are never retried by the SDK


def test_a_post_processed_after_the_client_gave_up_never_makes_a_second_order(server, broker):
    server.hang_next(1, 0.6, method="POST", path=ORDERS, effect="after")

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("late-1"))
    assert caught.value.unknown
    assert broker.get_order("late-1") is None  # not processed yet
    broker.submit_order(buy("late-1"))  # the caller resubmits under the same id
    server.settle()  # the late first attempt now reaches Alpaca: a duplicate, refused

    assert server.orders_created == 1
    assert broker.get_order("late-1").state == OrderState.FILLED


def test_a_post_that_hangs_and_is_lost_creates_nothing(server, broker):
    server.hang_next(1, 3.0, method="POST", path=ORDERS, effect="never")

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("lost-1"))

    assert caught.value.unknown
    assert broker.get_order("lost-1") is None
    assert server.orders_created == 0


def test_a_duplicate_client_order_id_is_unknown_and_the_lookup_returns_the_original(server, broker):
    original = broker.submit_order(buy("dup-1", qty="2"))

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("dup-1", qty="5"))
    found = broker.get_order("dup-1")

    assert caught.value.unknown
    assert caught.value.status_code == 422
    assert found.broker_order_id == original.broker_order_id
    assert found.quantity == D("2")
    assert server.orders_created == 1


def test_a_server_error_on_submit_is_unknown(server, broker):
    server.inject(Fault(503, method="POST", path=ORDERS))

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("s503-1"))

    assert caught.value.unknown
    assert server.orders_created == 0


def test_an_unreadable_answer_to_a_processed_submit_is_unknown(server, broker):
    server.accept_then_fail(200, body=b"<html>proxy says hello</html>")

    with pytest.raises(BrokerError) as caught:
        broker.submit_order(buy("garbled-1"))

    assert caught.value.unknown
    assert broker.get_order("garbled-1") is not None


def test_an_unreachable_broker_makes_a_submit_unknown():
    adapter = AlpacaBroker(
        AccountConfig(
            1, "alpaca", credentials={"api_key": KEY, "secret_key": SECRET}, options={"paper_url": unused_url()}
        )
    )

    with pytest.raises(BrokerError) as caught:
        adapter.submit_order(buy("nowhere-1"))

    assert caught.value.unknown


# --- secrets ---------------------------------------------------------------------------------------------

LOUD_KEY = "AKLOUDKEY0123456789"
LOUD_SECRET = "sk-very-secret-abcdefghijklmnop"


def test_rejected_credentials_are_permanent_and_never_echoed(server):
    adapter = make_broker(server, credentials={"api_key": LOUD_KEY, "secret_key": LOUD_SECRET})
    with pytest.raises(BrokerError) as caught:
        adapter.account()

    message = str(caught.value)
    assert caught.value.permanent
    assert "credentials rejected" in message and "401" in message
    assert LOUD_KEY not in message and LOUD_SECRET not in message


def test_a_secret_never_appears_in_any_error_or_log_line(caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"message": f"key {LOUD_KEY} secret {LOUD_SECRET}"}
    errors: list[BrokerError] = []
    with FakeAlpacaServer(api_key=LOUD_KEY, secret_key=LOUD_SECRET) as fake:
        fake.add_asset("VTI", "250.00")
        adapter = make_broker(fake)
        scenarios = [
            lambda: fake.fail_next(1, 401, echo),
            lambda: fake.fail_next(1, 403, echo),
            lambda: fake.fail_next(1, 422, echo),
            lambda: fake.fail_next(1, 500, echo),
            lambda: fake.fail_next(1, 200, echo),
            lambda: fake.hang_next(1, TIMEOUT_S + 0.1, effect="never"),
            lambda: fake.accept_then_fail(504, body=echo),
            lambda: fake.inject(Fault(503, method="POST", body=echo)),
        ]
        calls = [adapter.account, lambda: adapter.submit_order(buy(f"secret-{len(errors)}")), adapter.positions]
        for scenario in scenarios:
            for call in calls:
                scenario()
                try:
                    call()
                except BrokerError as exc:
                    errors.append(exc)
                fake.settle()
                fake.clear_faults()  # a scenario's fault the call did not use must not leak into the next

    assert len(errors) >= len(scenarios) * 2
    for exc in errors:
        assert LOUD_KEY not in str(exc) and LOUD_SECRET not in str(exc), str(exc)
        assert exc.__cause__ is None and exc.__suppress_context__
    for record in caplog.records:
        text = record.getMessage()
        assert LOUD_KEY not in text and LOUD_SECRET not in text, text


# --- the fake's fidelity ----------------------------------------------------------------------------------


def test_the_sdks_own_models_parse_the_fakes_answers(server):
    """The fake's JSON is what alpaca-py's pydantic models accept, so other tests may use them too."""
    server.set_position("VTI", "2")
    server.auto_fill = False
    client = TradingClient(KEY, SECRET, url_override=server.url)

    with make_broker(server) as adapter:
        adapter.submit_order(buy("sdk-1", qty="0.5"))
    order = client.get_order_by_client_id("sdk-1")

    assert client.get_account().cash == "10000"
    assert client.get_all_positions()[0].qty == "2"
    assert client.get_clock().next_close > datetime.now(UTC) - timedelta(minutes=1)
    assert client.get_asset("BND").fractionable is False
    assert (order.qty, order.status.value) == ("0.5", "new")
    assert len(client.get_orders()) == 1
