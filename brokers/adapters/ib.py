"""Interactive Brokers adapter: `IBBroker`, over ib_async (or ib_insync, the same API).

Connection. TWS or IB Gateway at ``credentials["host"]:credentials["port"]`` with API client id
``credentials["client_id"]``. The connection and every ib_async object live on a private asyncio
loop in a dedicated thread (`brokers.adapters.ib_runner.LoopThread`); the public methods are
synchronous, run one at a time, and wait at most ``options["timeout_s"]`` seconds (one deadline
per call, covering connecting, the requests and, for an order, its acknowledgement). Results are
converted to the project's dataclasses on that thread: no ib_async object leaves the adapter.
A dropped connection is re-established on the next call (a new ib_async ``IB`` session).

Paper or live. IB chooses by the account TWS is logged into, not by an endpoint, so the adapter
checks it: unless ``config.live``, every account TWS manages must be a paper account (IB paper
account ids start with "D": DU..., DF...), else `BrokerError(permanent=True)` before anything is
read or sent.

Failures (see `brokers.base`): cannot connect, a read that times out or loses the connection:
`BrokerError()` (transient, host:port in the message). Placing an order: any failure from the
moment the order is handed to IB, and no acknowledgement within the deadline, is
``BrokerError(unknown=True)``; failures before that (connecting, the duplicate lookup) changed
nothing and are transient. Refusals the adapter can tell before sending (notional or fractional
orders, unknown symbols, a quantity a float cannot carry) are ``permanent``.

Exactly once. IB has no server-side idempotency key: it accepts any number of orders with one
orderRef. Two things stand in for it:

- Lookup. Every order carries the client order id in ``order.orderRef``, and
  `IBBroker.submit_order` first looks for an order with that orderRef: the session's trades, its
  open trades, all clients' open orders (``reqAllOpenOrders``), completed orders
  (``reqCompletedOrders``) and executions (``reqExecutions``; IB reports the current day's).
  Found: that order is returned and nothing is placed. `IBBroker.get_order` searches the same
  places, so orders placed in an earlier session (before a reconnect or restart) are found with
  their fills.
- Order id. TWS refuses an order id it has seen for the API client id ("Duplicate order id",
  error 103) and takes an order placed under the id of one of its open orders as a modification
  of that order. `IBBroker.reserve_submission_id` reserves an id from the live session
  (``"<client id>:<order id>"``, stored by the caller before the first send) and `submit_order`
  places the order under it, so a resend whose lookup missed an order TWS has not recorded yet
  modifies that order or is refused; it never makes a second one. Before placing, an id held by
  another order of this client id (reserved, never used, and handed out again by a later
  session, as TWS does; seen open, or finished in this session or in the executions), or one
  reserved under another client id, is ``BrokerError()`` with neither flag: nothing was placed,
  and the caller reserves a new id. TWS's error 103 is ``unknown`` (ib_async marks the refused
  trade Cancelled; the adapter does not report it as a canceled order): the caller resolves it
  by its lookups, which ignore the refused placement.

`IBBroker.orders_since` lists every order the lookups see, once each (by orderRef; orders placed
by hand in TWS, which have none, by permId with client order id ""): the second witness before an
order is declared absent, ``settlement_delay_s`` after the first. IB gives no submit time for
open or completed orders and reports completed orders and executions of the current day only, so
``since`` can only leave out: an order is omitted when a time IB reports for it (its placement in
this session, a fill), which is never earlier than its submission, is before ``since``; orders
with no such time are always listed.

Status mapping (IB ``OrderStatus.status`` -> `OrderState`):

    ==============================================  ==============================================
    IB status                                       project state
    ==============================================  ==============================================
    PendingSubmit, ApiPending, PreSubmitted,        NEW, or PARTIALLY_FILLED when filled > 0
    Submitted, PendingCancel, ApiUpdate,            (PendingCancel: the cancel is not confirmed;
    ValidationError (ib_async: a warning, the       ValidationError: the order is still live)
    order is still live)
    Filled                                          FILLED (filled quantity = order quantity)
    Cancelled, ApiCancelled                         CANCELED; REJECTED when IB's error 201
                                                    ("Order rejected") is on the order, nothing
                                                    filled (ib_async marks rejected orders
                                                    Cancelled)
    Inactive                                        REJECTED, reason from the trade log or the
                                                    error event
    (no order record, only executions)              PARTIALLY_FILLED, quantity None: the fills
                                                    are real, the order's size and end are not
                                                    known yet (non-terminal, so it is re-read)
    anything else                                   NEW (logged): non-terminal is the safe guess
    ==============================================  ==============================================

Numbers. IB reports floats; they become Decimals rounded to 9 decimal places with trailing zeros
dropped (3.0 -> 3, 0.30000000000000004 -> 0.3). Account values arrive as strings and convert
exactly. Quantities and limit prices go to IB as floats and are refused when the float does not
carry the Decimal exactly.

Assets. `IBBroker.asset` qualifies ``Stock(symbol, "SMART", "USD")``. ``fractionable`` is always
False: IB's API accepts fractional quantities only for accounts with the fractional-share
permission and eligible contracts, and reports neither; orders for fractional quantities are
refused before sending (``permanent``), consistently with that answer. ``tradable`` is True for
any qualified contract (trading permissions are only known when an order is placed).

Options: ``timeout_s`` (seconds, default 10), ``settlement_delay_s`` (seconds after which TWS
shows an order it accepted in its lists, default 2) and, for tests, ``ib_factory`` (a
zero-argument callable returning an ``IB``-like object, called on the loop thread, instead of
``IB()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, TypeVar

from brokers.adapters.ib_mapping import (
    ACKNOWLEDGED_STATUSES,
    DONE_STATUSES,
    DUPLICATE_ORDER_ID_CODE,
    INFO_CODES,
    OrderFacts,
    account_info,
    collect_facts,
    float_for_ib,
    gather_facts,
    is_paper_account,
    refused_as_duplicate,
    to_broker_order,
    to_positions,
    trade_perm_id,
)
from brokers.adapters.ib_runner import LoopThread, LoopTimeout
from brokers.base import (
    AccountConfig,
    AccountInfo,
    Asset,
    Broker,
    BrokerError,
    BrokerOrder,
    Clock,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from marketdata import calendar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Tried in this order; ib_insync is the unmaintained original with the same API.
SDK_MODULES = ("ib_async", "ib_insync")
DEFAULT_TIMEOUT_S = 10.0
#: Seconds after which TWS lists an order it accepted (the two "absent" reads are this far apart).
DEFAULT_SETTLEMENT_DELAY_S = 2.0
#: Extra wait, past the call's own deadline, before the caller gives up on the loop thread (the
#: coroutine normally reports its own timeout first, with the right error flag).
BACKSTOP_GRACE_S = 1.0
#: Replaced by tests to simulate a missing package.
_import_module: Callable[[str], ModuleType] = importlib.import_module


# -- SDK and configuration -------------------------------------------------------------------


def load_sdk() -> ModuleType:
    """The ib_async module, else ib_insync; `BrokerError(permanent=True)` when neither imports."""
    failures = []
    for name in SDK_MODULES:
        try:
            return _import_module(name)
        except ImportError as error:
            failures.append(f"{name}: {error}")
    raise BrokerError(
        "the Interactive Brokers adapter needs the ib_async package: pip install ib_async "
        f"(ib_insync also works); import failed: {'; '.join(failures)}",
        permanent=True,
    )


@dataclass(frozen=True)
class Endpoint:
    """Where TWS / IB Gateway listens and the API client id to use (not secrets)."""

    host: str
    port: int
    client_id: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def endpoint_from(credentials: Mapping[str, str]) -> Endpoint:
    """Host, port and client id from the account's credentials; permanent error when invalid."""
    host = str(credentials.get("host") or "").strip()
    if not host:
        raise BrokerError("IB credentials: host is required", permanent=True)
    numbers = {}
    for key, low, high in (("port", 1, 65535), ("client_id", 0, 2**31 - 1)):
        try:
            value = int(str(credentials.get(key, "")).strip())
        except ValueError:
            raise BrokerError(f"IB credentials: {key} must be an integer", permanent=True) from None
        if not low <= value <= high:
            raise BrokerError(f"IB credentials: {key} must be within {low}..{high}", permanent=True)
        numbers[key] = value
    return Endpoint(host, numbers["port"], numbers["client_id"])


def seconds_from(options: Mapping[str, object], name: str, default: float, *, zero_allowed: bool = False) -> float:
    """``options[name]`` as seconds (default ``default``): positive, or also 0 when ``zero_allowed``;
    a permanent error naming the option otherwise."""
    try:
        value = float(options.get(name, default))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and (value > 0 or (zero_allowed and value == 0))):
        expected = "a number of seconds >= 0" if zero_allowed else "a positive number of seconds"
        raise BrokerError(f"IB options: {name} must be {expected}", permanent=True)
    return value


def submission_id_for(client_id: int, order_id: int) -> str:
    """The stored form of an order id reserved under an API client id: ``"<client id>:<order id>"``."""
    return f"{client_id}:{order_id}"


def parse_submission_id(submission_id: str) -> tuple[int, int]:
    """(API client id, order id) of a stored submission id; ValueError when it is not one."""
    match = re.fullmatch(r"(\d+):(\d+)", submission_id, flags=re.ASCII)
    if match is None or int(match[2]) <= 0:
        raise ValueError(f"not an IB order id reservation: {submission_id!r}")
    return int(match[1]), int(match[2])


# -- the adapter -----------------------------------------------------------------------------


class IBBroker(Broker):
    """An Interactive Brokers account through TWS / IB Gateway; see the module docstring."""

    kind = "ib"

    def __init__(self, config: AccountConfig):
        super().__init__(config)
        self.sdk = load_sdk()
        self.endpoint = endpoint_from(config.credentials)
        self.timeout_s = seconds_from(config.options, "timeout_s", DEFAULT_TIMEOUT_S)
        self.settlement_delay_s = seconds_from(
            config.options, "settlement_delay_s", DEFAULT_SETTLEMENT_DELAY_S, zero_allowed=True
        )
        # A call ends at its own deadline, or at the latest when the caller's backstop gives up on it.
        self.max_call_s = self.timeout_s + BACKSTOP_GRACE_S
        factory = config.options.get("ib_factory")
        self._factory: Callable[[], Any] = factory if callable(factory) else self.sdk.IB
        self._runner = LoopThread(f"ib-loop-{config.account_id}")
        self._closed = False
        # Touched only on the loop thread:
        self._ib: Any | None = None
        self._lock: asyncio.Lock | None = None
        self._errors: dict[int, tuple[int, str]] = {}

    @property
    def sdk_name(self) -> str:
        """The package the adapter runs on: "ib_async" or "ib_insync"."""
        return self.sdk.__name__

    @property
    def loop_thread(self) -> threading.Thread | None:
        """The thread the IB connection lives on (None before the first call)."""
        return self._runner.thread

    # -- Broker interface ----------------------------------------------------------------------

    def account(self) -> AccountInfo:
        return self._call("read the account summary", self._account)

    def positions(self) -> list[Position]:
        return self._call("read positions", self._positions)

    def clock(self) -> Clock:
        now = self._call("read the server time", self._server_time)
        try:
            is_open, next_open, next_close = calendar.market_clock(now)
        except ValueError as error:  # CalendarRangeError included: the calendar needs updating
            raise BrokerError(f"market clock at {now.isoformat()}: {error}", permanent=True) from error
        return Clock(timestamp=now, is_open=is_open, next_open=next_open, next_close=next_close)

    def asset(self, symbol: str) -> Asset:
        ib_symbol = self._call(f"look up {symbol}", lambda deadline: self._qualified(symbol, deadline))
        return Asset(symbol=ib_symbol, tradable=True, fractionable=False)

    def reserve_submission_id(self, request: OrderRequest) -> str:
        """An order id reserved from the live session (connecting if needed), as
        ``"<client id>:<order id>"``: the id TWS refuses to take twice for this client id."""
        order_id = self._call(f"reserve an order id for {request.client_order_id}", self._reserved_order_id)
        return submission_id_for(self.endpoint.client_id, order_id)

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place the order unless IB already has one with this client order id (then that one is
        returned), under the reserved order id ``request.submission_id`` when there is one.
        Returns the order as IB acknowledged it (a rejection is a REJECTED order, not an
        exception); ``unknown`` when IB's acknowledgement does not arrive in time or TWS refuses
        the order id as a duplicate; neither flag when the reserved id cannot be used (nothing
        placed: reserve a new one)."""
        self._check_sendable(request)
        return self._call(
            f"place order {request.client_order_id}",
            lambda deadline: self._submit(request, deadline),
            unknown_on_failure=True,
        )

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order tagged with this client order id (this session's or an earlier one's)."""
        return self._call(f"look up order {client_order_id}", lambda deadline: self._find(client_order_id, deadline))

    def orders_since(self, since: datetime) -> list[BrokerOrder]:
        """Every order IB lists, open and closed, and those known only by their executions, each once;
        orders placed by hand in TWS have ``client_order_id`` "". An order is left out only when a
        time IB reports for it is before ``since`` (see the module docstring)."""
        return self._call("list orders", lambda deadline: self._orders_since(since, deadline))

    def open_orders(self, symbols: Sequence[str] | None = None) -> list[BrokerOrder]:
        """Every open order of the account (all API clients), ``symbols`` filtering when given.
        Orders placed by hand in TWS carry no orderRef: their ``client_order_id`` is ""."""
        wanted = {s.upper() for s in symbols} if symbols else None
        return self._call("read open orders", lambda deadline: self._open_orders(wanted, deadline))

    def cancel_order(self, client_order_id: str) -> None:
        """Send IB a cancel for the order (nothing when it is finished); permanent error when IB
        has no such order. IB confirms asynchronously: `get_order` tells the outcome."""
        self._call(
            f"cancel order {client_order_id}",
            lambda deadline: self._cancel(client_order_id, deadline),
            unknown_on_failure=True,
        )

    def close(self) -> None:
        """Disconnect from IB and stop the loop thread (waits at most ``timeout_s`` for each)."""
        if self._closed:
            return
        self._closed = True
        if self._runner.started:
            try:
                self._runner.run(self._disconnect, self.timeout_s)
            except Exception:
                logger.warning("IB %s: disconnecting failed; stopping the loop anyway", self.endpoint, exc_info=True)
        self._runner.stop(self.timeout_s)

    # -- calls on the loop thread ----------------------------------------------------------------

    def _call(self, what: str, operation: Callable[[float], Awaitable[T]], *, unknown_on_failure: bool = False) -> T:
        """Run ``operation(deadline)`` on the loop thread, connected, one call at a time.

        BrokerErrors raised by the operation pass through with their own flags. Anything else,
        and the caller's backstop timeout, becomes BrokerError: ``unknown`` when
        ``unknown_on_failure`` (a write that may have reached IB), else transient.
        """
        if self._closed:
            raise RuntimeError("IBBroker is closed")

        async def guarded() -> T:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                try:
                    await self._connected(deadline)
                    return await operation(deadline)
                except BrokerError:
                    raise
                except Exception as error:
                    raise self._error(f"{what} failed: {error!r}", unknown_on_failure) from error

        try:
            return self._runner.run(guarded, self.timeout_s + BACKSTOP_GRACE_S)
        except LoopTimeout:
            raise self._error(f"{what}: no answer within {self.timeout_s:g} s", unknown_on_failure) from None

    def _error(self, message: str, unknown: bool) -> BrokerError:
        suffix = "; the order may or may not be at IB: look it up by its client order id" if unknown else ""
        return BrokerError(f"IB {self.endpoint}: {message}{suffix}", unknown=unknown)

    async def _wait(self, awaitable: Awaitable[T], deadline: float, what: str) -> T:
        """Await an IB request until ``deadline``; timeouts and lost connections are transient."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(awaitable, max(remaining, 0.0))
        except TimeoutError:
            raise BrokerError(f"IB {self.endpoint}: {what} timed out after {self.timeout_s:g} s") from None
        except OSError as error:  # ConnectionError included (ib_async: "Socket disconnect")
            raise BrokerError(f"IB {self.endpoint}: connection lost during {what}: {error!r}") from error

    async def _connected(self, deadline: float) -> Any:
        """The connected ``IB`` object; connects (a new session) when there is none or it dropped."""
        if self._ib is not None and self._ib.isConnected():
            return self._ib
        await self._disconnect()
        ib = self._factory()
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        self._ib = ib
        endpoint = self.endpoint
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        try:
            await asyncio.wait_for(
                ib.connectAsync(endpoint.host, endpoint.port, clientId=endpoint.client_id, timeout=remaining),
                remaining,
            )
        except Exception as error:
            await self._disconnect()
            raise BrokerError(
                f"IB: cannot connect to {endpoint} (client id {endpoint.client_id}): {error!r}"
            ) from error
        logger.info("IB: connected to %s as client %s", endpoint, endpoint.client_id)
        try:
            self._check_account_kind(ib.managedAccounts())
        except BrokerError:
            # Stay disconnected: the next call must not find a connection that skipped this check.
            await self._disconnect()
            raise
        return ib

    def _check_account_kind(self, accounts: Sequence[str]) -> None:
        """Refuse a live account unless the config is live (fail closed)."""
        if not accounts:
            raise BrokerError(f"IB {self.endpoint}: TWS reported no account; cannot tell paper from live")
        if not self.config.live and not all(is_paper_account(a) for a in accounts):
            raise BrokerError(
                f"IB {self.endpoint} is logged into a live account but this broker account is not enabled "
                "for live trading; connect it to a paper TWS / IB Gateway",
                permanent=True,
            )

    async def _disconnect(self) -> None:
        ib, self._ib = self._ib, None
        self._errors.clear()
        if ib is None:
            return
        ib.errorEvent -= self._on_error
        ib.disconnectedEvent -= self._on_disconnected
        ib.disconnect()

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        """ib_async's errorEvent; order errors (req_id = order id) explain rejections."""
        if code in INFO_CODES:
            logger.debug("IB %s: message %s: %s", self.endpoint, code, message)
            return
        logger.info("IB %s: error %s (request %s): %s", self.endpoint, code, req_id, message)
        # A duplicate order id refuses a placement: it says nothing about the order holding the id.
        if req_id > 0 and code != DUPLICATE_ORDER_ID_CODE:
            self._errors[req_id] = (code, message)

    def _session_error(self, trade: Any | None) -> tuple[int, str] | None:
        """The last error this session received for ``trade`` (errors come by this client's order ids)."""
        if trade is None or trade.order.clientId != self.endpoint.client_id:
            return None
        return self._errors.get(trade.order.orderId)

    def _on_disconnected(self) -> None:
        logger.warning("IB %s: disconnected; the next call reconnects", self.endpoint)

    # -- operations (loop thread) -----------------------------------------------------------------

    async def _account(self, deadline: float) -> AccountInfo:
        rows = await self._wait(self._ib.accountSummaryAsync(), deadline, "account summary")
        return account_info(rows)

    async def _positions(self, deadline: float) -> list[Position]:
        return to_positions(await self._wait(self._ib.reqPositionsAsync(), deadline, "positions"))

    async def _server_time(self, deadline: float) -> datetime:
        now = await self._wait(self._ib.reqCurrentTimeAsync(), deadline, "current time")
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    async def _qualified(self, symbol: str, deadline: float) -> str:
        """The symbol as IB knows it; permanent error for an unknown or ambiguous one."""
        return (await self._contract(symbol, deadline)).symbol

    async def _contract(self, symbol: str, deadline: float) -> Any:
        contract = self.sdk.Stock(symbol.upper(), "SMART", "USD")
        # ib_async fills the contract in place (None in its result when unknown); ib_insync
        # returns only the qualified ones: conId tells both apart.
        await self._wait(self._ib.qualifyContractsAsync(contract), deadline, f"contract lookup for {symbol}")
        if not contract.conId:
            raise BrokerError(f"IB knows no single US stock {symbol!r} (unknown or ambiguous symbol)", permanent=True)
        return contract

    async def _order_lists(self, deadline: float, what: str) -> tuple[list[list[Any]], list[Any]]:
        """What a lookup searches: trade lists, most live first (the session's trades, its open
        trades, all clients' open orders, completed orders), and the executions IB reports.
        Placements TWS refused as duplicate order ids are no orders and are left out."""
        ib = self._ib
        open_all, completed, executions = await self._wait(
            asyncio.gather(ib.reqAllOpenOrdersAsync(), ib.reqCompletedOrdersAsync(False), ib.reqExecutionsAsync()),
            deadline,
            what,
        )
        session = [trade for trade in ib.trades() if not refused_as_duplicate(trade)]
        return [session, list(ib.openTrades()), list(open_all), list(completed)], list(executions)

    def _gathered(
        self, order_ref: str, sources: Sequence[Iterable[Any]], executions: Iterable[Any]
    ) -> OrderFacts | None:
        facts = gather_facts(order_ref, sources, executions)
        if facts is not None:
            facts.error = self._session_error(facts.trade)
        return facts

    async def _facts(self, order_ref: str, deadline: float) -> OrderFacts | None:
        """Everything IB has on the order tagged ``order_ref`` (see the module docstring)."""
        sources, executions = await self._order_lists(deadline, "order lookup")
        return self._gathered(order_ref, sources, executions)

    async def _find(self, order_ref: str, deadline: float) -> BrokerOrder | None:
        facts = await self._facts(order_ref, deadline)
        return None if facts is None else to_broker_order(facts)

    async def _orders_since(self, since: datetime, deadline: float) -> list[BrokerOrder]:
        sources, executions = await self._order_lists(deadline, "order listing")
        listed = []
        for facts in collect_facts(sources, executions):
            facts.error = self._session_error(facts.trade)
            order = to_broker_order(facts)
            # The times IB reports for an order (placement, fills) are never earlier than its
            # submission: one before ``since`` rules it out; none known keeps it listed.
            if order.submitted_at is None or order.submitted_at >= since:
                listed.append(order)
        return listed

    async def _reserved_order_id(self, deadline: float) -> int:
        return int(self._ib.client.getReqId())

    async def _open_orders(self, symbols: set[str] | None, deadline: float) -> list[BrokerOrder]:
        ib = self._ib
        open_all, executions = await self._wait(
            asyncio.gather(ib.reqAllOpenOrdersAsync(), ib.reqExecutionsAsync()), deadline, "open orders"
        )
        result: dict[object, BrokerOrder] = {}
        for trade in [*ib.openTrades(), *open_all]:
            key = trade_perm_id(trade) or (trade.order.clientId, trade.order.orderId)
            if key in result or trade.orderStatus.status in DONE_STATUSES:
                continue
            if symbols is not None and trade.contract.symbol.upper() not in symbols:
                continue
            facts = OrderFacts(trade.order.orderRef, trade=trade, error=self._session_error(trade))
            facts.add_fills(trade.fills)
            perm_id = trade_perm_id(trade)
            facts.add_fills(
                f
                for f in executions
                if (perm_id and f.execution.permId == perm_id)
                or (trade.order.orderRef and f.execution.orderRef == trade.order.orderRef)
            )
            result[key] = to_broker_order(facts)
        return list(result.values())

    def _check_sendable(self, request: OrderRequest) -> None:
        """Refuse, before anything is sent, what this adapter does not send to IB."""
        if request.notional_usd is not None:
            raise BrokerError("IB: notional (dollar amount) orders are not supported; send a quantity", permanent=True)
        if request.fractional:
            raise BrokerError(
                f"IB: fractional quantity {request.quantity} for {request.symbol}: this adapter reports IB "
                "assets as not fractionable and sends whole shares only",
                permanent=True,
            )
        float_for_ib(request.quantity, "quantity")  # type: ignore[arg-type]
        if request.limit_price_usd is not None:
            float_for_ib(request.limit_price_usd, "limit price")

    def _new_order(self, request: OrderRequest) -> Any:
        action = "BUY" if request.side == Side.BUY else "SELL"
        quantity = float_for_ib(request.quantity, "quantity")  # type: ignore[arg-type]
        tif = "GTC" if request.time_in_force == TimeInForce.GTC else "DAY"
        common = {"tif": tif, "orderRef": request.client_order_id, "outsideRth": False, "transmit": True}
        if request.order_type == OrderType.LIMIT:
            price = float_for_ib(request.limit_price_usd, "limit price")  # type: ignore[arg-type]
            return self.sdk.LimitOrder(action, quantity, price, **common)
        return self.sdk.MarketOrder(action, quantity, **common)

    async def _submit(self, request: OrderRequest, deadline: float) -> BrokerOrder:
        ref = request.client_order_id
        sources, executions = await self._order_lists(deadline, "order lookup")
        existing = self._gathered(ref, sources, executions)
        if existing is not None:
            logger.warning("IB %s: order %s is already at IB; not placing it again", self.endpoint, ref)
            return to_broker_order(existing)
        order_id = self._usable_order_id(request, sources, executions)
        contract = await self._contract(request.symbol, deadline)
        order = self._new_order(request)
        if order_id is not None:
            order.orderId = order_id
        try:
            trade = self._ib.placeOrder(contract, order)
        except Exception as error:
            raise self._error(f"placing order {ref} failed: {error!r}", unknown=True) from error
        if order_id is not None:
            # ib_async's own sequence learns of an id only from TWS's answer: until then this session
            # could hand the id out again, to an order TWS would take as a modification of this one.
            self._ib.client.updateReqId(order_id + 1)
        logger.info(
            "IB %s: placed order %s as order id %s (%s %s %s)",
            self.endpoint,
            ref,
            trade.order.orderId,
            order.action,
            order.totalQuantity,
            contract.symbol,
        )
        if not await self._acknowledged(trade, deadline):
            raise self._error(f"order {ref} sent, no status from IB within {self.timeout_s:g} s", unknown=True)
        if refused_as_duplicate(trade):
            # An order under that id exists, maybe this very one unseen by the lookup: not a cancel.
            raise self._error(
                f"TWS refused order id {trade.order.orderId} for order {ref} as a duplicate (error 103)", unknown=True
            )
        facts = OrderFacts(ref, trade=trade, error=self._session_error(trade))
        facts.add_fills(trade.fills)
        return to_broker_order(facts)

    def _usable_order_id(
        self, request: OrderRequest, sources: Sequence[Iterable[Any]], executions: Iterable[Any]
    ) -> int | None:
        """The order id reserved for ``request`` (None: it has none, IB's session picks one), after
        checking that placing under it cannot touch another order; ``BrokerError()`` with neither
        flag (nothing placed, reserve a new id) when it could."""
        if not request.submission_id:
            return None
        ref = request.client_order_id
        try:
            client_id, order_id = parse_submission_id(request.submission_id)
        except ValueError as error:
            raise BrokerError(f"IB {self.endpoint}: order {ref}: {error}; nothing placed, reserve a new id") from None
        if client_id != self.endpoint.client_id:
            raise BrokerError(
                f"IB {self.endpoint}: order {ref} has order id {order_id} reserved under API client id {client_id}, "
                f"this connection is client id {self.endpoint.client_id}; nothing placed, reserve a new id"
            )
        # The id was reserved, never used, and handed out again by a later session to another order:
        # placing under it would modify that order (open) or be refused (finished). IB's completed
        # orders carry no order id, so a finished one is seen here only through this session or its
        # executions; otherwise TWS's refusal (error 103) tells.
        holders = [
            (trade.order.orderRef, trade.orderStatus.status)
            for trades in sources
            for trade in trades
            if (trade.order.clientId, trade.order.orderId) == (client_id, order_id)
        ] + [
            (fill.execution.orderRef, "executed")
            for fill in executions
            if (fill.execution.clientId, fill.execution.orderId) == (client_id, order_id)
        ]
        for holder_ref, status in holders:
            if holder_ref != ref:
                raise BrokerError(
                    f"IB {self.endpoint}: order id {order_id} reserved for order {ref} is held by order "
                    f"{holder_ref or '(placed in TWS)'} ({status}); nothing placed, reserve a new id"
                )
        return order_id

    async def _acknowledged(self, trade: Any, deadline: float) -> bool:
        """Wait until TWS reports a status for ``trade`` (or a fill), at most until ``deadline``."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def on_update(*_args: Any) -> None:
            changed.set()

        trade.statusEvent += on_update
        trade.fillEvent += on_update
        try:
            while not (trade.orderStatus.status in ACKNOWLEDGED_STATUSES or trade.fills):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                changed.clear()
                with contextlib.suppress(TimeoutError):  # the loop condition decides
                    await asyncio.wait_for(changed.wait(), remaining)
            return True
        finally:
            trade.statusEvent -= on_update
            trade.fillEvent -= on_update

    async def _cancel(self, order_ref: str, deadline: float) -> None:
        facts = await self._facts(order_ref, deadline)
        if facts is None:
            raise BrokerError(f"IB {self.endpoint}: no order {order_ref}", permanent=True, status_code=404)
        trade = facts.trade
        if trade is None or trade.orderStatus.status in DONE_STATUSES:
            return  # finished (or known only by its executions): nothing IB could cancel
        try:
            self._ib.cancelOrder(trade.order)
        except Exception as error:
            raise self._error(f"cancelling order {order_ref} failed: {error!r}", unknown=True) from error
        logger.info("IB %s: cancel requested for order %s", self.endpoint, order_ref)
