"""An in-memory Interactive Brokers: `FakeIBGateway` (the account and TWS) and `FakeIB` (one
ib_async ``IB`` session), returning REAL ib_async types so adapters parse the real dataclasses.

`FakeIB` implements only what `brokers.adapters.ib.IBBroker` calls (anything else is an
AttributeError, which is the point): ``connectAsync``, ``isConnected``, ``disconnect``,
``managedAccounts``, ``client.getReqId``, ``client.updateReqId``, ``reqCurrentTimeAsync``,
``accountSummaryAsync``, ``reqPositionsAsync``, ``qualifyContractsAsync``, ``placeOrder``,
``cancelOrder``, ``trades``, ``openTrades``, ``reqAllOpenOrdersAsync``,
``reqCompletedOrdersAsync``, ``reqExecutionsAsync`` and the events ``errorEvent``,
``disconnectedEvent``, ``connectedEvent``, ``orderStatusEvent``, ``execDetailsEvent``,
``newOrderEvent`` (plus each Trade's own ``statusEvent``/``fillEvent``).

Test-facing API::

    gateway = FakeIBGateway(cash="100000", prices={"SPY": "500", "VTI": "250.10"})
    config = AccountConfig(..., options={"timeout_s": 0.3, "ib_factory": gateway.ib_factory})

    # What the next placed order does (first in, first out; then `gateway.default`, FILL):
    gateway.script(OnPlace.FILL)                    # Submitted, filled at the symbol's price
                                                    # (a limit order only when marketable)
    gateway.script(OnPlace.SUBMIT)                  # Submitted, rests
    gateway.script(OnPlace.PARTIAL, quantity="4")   # Submitted, 4 shares filled, rests
    gateway.script(OnPlace.REJECT, message="...")   # error 201 then status Inactive
    gateway.script(OnPlace.REJECT, message="...", status="Cancelled")  # error 201 only
    gateway.script(OnPlace.SILENT)                  # accepted (Submitted at the gateway), but no
                                                    # status reaches the session that placed it
    # Buys beyond the cash and sells beyond the holding are rejected like REJECT.

    # Acting on placed orders (any thread; runs on the connected session's loop):
    gateway.fill(order_ref, quantity=None, price=None)   # the rest (or `quantity`) at a price
    gateway.cancel_by_ib(order_ref, message="")          # IB cancels (error 202, Cancelled)
    gateway.confirm_cancels = False                      # API cancels stay PendingCancel

    # TWS has not recorded orders yet: orders placed from now on are missing from the next
    # `lookups` answers of each list (the session's trades and openTrades, reqAllOpenOrders,
    # reqCompletedOrders, reqExecutions; counted per order and per list). The adapter reads each
    # list once per lookup, so 1 hides a new order from exactly one lookup. `only` names the
    # lists to hide it from (the rest show it); 0 ends the hiding for later orders.
    gateway.hide_new_orders_for(1)
    gateway.hide_new_orders_for(1, only=("trades", "openTrades", "reqAllOpenOrdersAsync"))

    # An order entered by hand in TWS (client id 0, order id 0, no orderRef), resting:
    gateway.place_by_hand("SPY", "SELL", "2")

    # Connection:
    gateway.refuse_connections = True   # connectAsync raises ConnectionRefusedError
    gateway.drop_connection()           # the current session ends (disconnectedEvent)
    gateway.stall("reqExecutionsAsync") # that request never answers (the caller times out)
    gateway.delay_s = 1.0               # every request answers a second late (a slow TWS)
    gateway.on_call = callback          # called with each session call's method name as it arrives

    # State: gateway.cash, gateway.prices, gateway.set_position(symbol, qty, avg_cost),
    # gateway.account ("DU..." = paper), gateway.base_currency, gateway.current_time,
    # gateway.commission, gateway.extra_summary_rows / extra_positions (raw ib_async rows).
    # Inspection: gateway.placed_count, gateway.orders (GatewayOrder), gateway.order(ref),
    # gateway.calls [(method, thread)], gateway.sessions_started, gateway.cancel_requests,
    # gateway.modifications (GatewayOrder per modification), gateway.duplicate_refusals
    # [(client id, order id, orderRef)], gateway.highest_order_id(client_id).

Order ids behave as TWS's for an API client id: a session's ``client.getReqId()`` starts at one
more than the highest order id the gateway has seen for its client id (kept across sessions) and
counts up locally, so ids reserved but never placed are handed out again by a later session.
``placeOrder`` with ``order.orderId`` 0 takes the next one (as ib_async). Placed under an id:

- an open order of the same client id holds it: a modification of that order (its quantity,
  limit price, order type, time in force and orderRef replaced; no new order), its status
  published again;
- a finished order holds it, or it is not above the highest id of the client id: TWS refuses it
  with error 103 "Duplicate order id" and places nothing; the session's trade for it ends
  Cancelled with the 103 log entry (as ib_async does). When the session's own trade under that
  id is finished, ``placeOrder`` raises AssertionError after sending, as ib_async's does;
- otherwise a new order under that id.

A repeated orderRef is accepted like any other (as IB does): exactly once must not rely on the
gateway refusing it.

Sessions behave as IB does for one API client id: a new connection (`connectAsync` on a new
``IB``) starts with an empty `FakeIB.trades` list; orders from earlier sessions are visible only
as fresh objects from `openTrades` (open orders of this client id, re-sent by TWS at connect,
their fills NOT attached), ``reqAllOpenOrdersAsync`` (all clients), ``reqCompletedOrdersAsync``
(orderId 0 and only a status, as IB's completed-order message) and ``reqExecutionsAsync``. This
is stricter than ib_async, which also copies synced orders into ``trades()``: an adapter that
finds orders here finds them against the real thing. The gateway returns all executions (IB:
the current day's) and holds one connected session per client id.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from eventkit import Event
from ib_async import (
    AccountValue,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Order,
    OrderStatus,
    Position,
    Stock,
    Trade,
    TradeLogEntry,
)

T = TypeVar("T")

DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
#: The lists an adapter looks orders up in (see `FakeIBGateway.hide_new_orders_for`).
LOOKUPS = ("trades", "openTrades", "reqAllOpenOrdersAsync", "reqCompletedOrdersAsync", "reqExecutionsAsync")
DUPLICATE_ORDER_ID = (103, "Duplicate order id")
DEFAULT_PRICES = {"SPY": "500.00", "VTI": "250.00", "BND": "72.50", "AAPL": "190.00"}


class OnPlace(StrEnum):
    """What the gateway does with a placed order (see the module docstring)."""

    FILL = "fill"
    SUBMIT = "submit"
    PARTIAL = "partial"
    REJECT = "reject"
    SILENT = "silent"


@dataclass(frozen=True)
class Script:
    behaviour: OnPlace
    quantity: Decimal | None = None
    message: str = "rejected by the fake gateway"
    status: str = "Inactive"


@dataclass
class GatewayOrder:
    """The gateway's record of one placed order (quantities and prices as Decimals)."""

    order_id: int
    client_id: int
    perm_id: int
    contract: Contract
    order: Order
    status: str = "PendingSubmit"
    filled: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)
    message: str = ""
    #: Answers of each lookup list still to leave this order out of (TWS has not recorded it yet).
    hidden: dict[str, int] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.order.orderRef

    @property
    def quantity(self) -> Decimal:
        return Decimal(repr(self.order.totalQuantity))

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def buy(self) -> bool:
        return self.order.action == "BUY"


class FakeIBGateway:
    """The account and TWS behind any number of `FakeIB` sessions; see the module docstring."""

    def __init__(
        self,
        *,
        cash: str | Decimal = "100000",
        prices: Mapping[str, str | Decimal] | None = None,
        account: str = "DU1234567",
        commission: str | Decimal = "1.00",
    ):
        self.cash = Decimal(cash)
        self.prices = {s: Decimal(p) for s, p in (prices or DEFAULT_PRICES).items()}
        self.account = account
        self.commission = Decimal(commission)
        self.base_currency = "USD"
        self.current_time: datetime | None = None
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}
        self.extra_summary_rows: list[AccountValue] = []
        self.extra_positions: list[Position] = []
        self.default = Script(OnPlace.FILL)
        self.refuse_connections = False
        #: Seconds every request waits before its answer (a slow TWS or network).
        self.delay_s = 0.0
        #: Called with the method's name as each session call arrives (on the caller's thread).
        self.on_call: Callable[[str], None] | None = None
        self.confirm_cancels = True
        self.orders: list[GatewayOrder] = []
        self.modifications: list[GatewayOrder] = []
        self.duplicate_refusals: list[tuple[int, int, str]] = []
        self.calls: list[tuple[str, threading.Thread]] = []
        self.cancel_requests: list[int] = []
        self.sessions_started = 0
        self.session: FakeIB | None = None
        self._stalled: set[str] = set()
        self._scripts: deque[Script] = deque()
        self._lock = threading.RLock()
        self._highest_ids: dict[int, int] = {}  # client id -> highest order id placed under it
        self._hide_new: dict[str, int] = {}
        self._perm_ids = itertools.count(1_000_001)
        self._exec_ids = itertools.count(1)
        self._con_ids = {symbol: 100_000 + n for n, symbol in enumerate(sorted(self.prices))}

    # -- test-facing API -----------------------------------------------------------------------

    def ib_factory(self) -> FakeIB:
        """A new ``IB``-like object (not connected); pass as ``options["ib_factory"]``."""
        return FakeIB(self)

    def script(self, behaviour: OnPlace, *, quantity: str | Decimal | None = None, **kwargs: str) -> None:
        """Queue what the next placed order does."""
        self._scripts.append(Script(behaviour, Decimal(quantity) if quantity is not None else None, **kwargs))

    def stall(self, method: str) -> None:
        """Make the async request ``method`` never answer."""
        self._stalled.add(method)

    def hide_new_orders_for(self, lookups: int, *, only: Iterable[str] = LOOKUPS) -> None:
        """Orders placed from now on are missing from the next ``lookups`` answers of each list in
        ``only`` (see the module docstring)."""
        names = tuple(only)
        assert set(names) <= set(LOOKUPS), names
        self._hide_new = {name: lookups for name in names}

    def place_by_hand(self, symbol: str, action: str, quantity: str | Decimal) -> GatewayOrder:
        """An order entered in TWS by hand: client id 0, order id 0, no orderRef; it rests."""
        order = Order(action=action, totalQuantity=float(Decimal(quantity)), orderType="MKT")
        with self._lock:
            gorder = GatewayOrder(
                order_id=0, client_id=0, perm_id=next(self._perm_ids), contract=self._stock(symbol), order=order
            )
            gorder.order.permId = gorder.perm_id
            gorder.status = "Submitted"
            self.orders.append(gorder)
        return gorder

    def highest_order_id(self, client_id: int) -> int:
        """The highest order id placed under ``client_id`` (0: none yet)."""
        return self._highest_ids.get(client_id, 0)

    def set_position(self, symbol: str, quantity: str | Decimal, avg_cost: str | Decimal = "0") -> None:
        with self._lock:
            self.positions[symbol] = (Decimal(quantity), Decimal(avg_cost))

    @property
    def placed_count(self) -> int:
        """Orders actually placed (every placeOrder call that created an order)."""
        return len(self.orders)

    def order(self, order_ref: str) -> GatewayOrder:
        matches = [o for o in self.orders if o.ref == order_ref]
        assert len(matches) == 1, f"{len(matches)} gateway orders with orderRef {order_ref!r}"
        return matches[0]

    def fill(self, order_ref: str, quantity: str | Decimal | None = None, price: str | Decimal | None = None) -> None:
        """Execute ``quantity`` (default: all remaining) shares of the order at ``price``."""

        def act() -> None:
            gorder = self.order(order_ref)
            amount = Decimal(quantity) if quantity is not None else gorder.remaining
            at = Decimal(price) if price is not None else self.prices[gorder.contract.symbol]
            self._execute(gorder, amount, at)

        self._dispatch(act)

    def cancel_by_ib(self, order_ref: str, message: str = "") -> None:
        """IB cancels the order on its own (a day order's end, a risk check)."""
        self._dispatch(lambda: self._cancelled(self.order(order_ref), message))

    def drop_connection(self) -> None:
        """End the connected session from the gateway's side (like a TWS restart)."""
        session = self.session
        if session is not None:
            self._dispatch(session._drop)

    def now(self) -> datetime:
        return self.current_time or datetime.now(UTC)

    # -- internals (state under the lock; session views updated on the session's loop) ----------

    def _dispatch(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the connected session's loop thread (waiting for it), else here."""
        session = self.session
        loop = session.loop if session is not None else None
        if loop is None or threading.current_thread() is session.thread or not loop.is_running():
            return action()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as error:
                done.set_exception(error)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=5)

    def _record(self, method: str) -> None:
        self.calls.append((method, threading.current_thread()))
        if self.on_call is not None:
            self.on_call(method)

    def _next_script(self) -> Script:
        return self._scripts.popleft() if self._scripts else self.default

    def _con_id(self, symbol: str) -> int | None:
        return self._con_ids.get(symbol)

    def _stock(self, symbol: str) -> Contract:
        return Stock(
            symbol,
            "",
            "USD",
            conId=self._con_ids[symbol],
            primaryExchange="ARCA",
            localSymbol=symbol,
            tradingClass=symbol,
        )

    def _place(
        self, client_id: int, order_id: int, contract: Contract, order: Order
    ) -> tuple[str, GatewayOrder | None, Script | None]:
        """TWS receiving a placement under ``order_id``: ("new", order, script), ("modify", the open
        order it changes, None) or ("duplicate", None, None) (see the module docstring)."""
        with self._lock:
            held = next((o for o in self.orders if (o.client_id, o.order_id) == (client_id, order_id)), None)
            if held is not None and not held.done:
                for name in ("totalQuantity", "lmtPrice", "orderType", "tif", "orderRef"):
                    setattr(held.order, name, getattr(order, name))
                self.modifications.append(held)
                return "modify", held, None
            if held is not None or order_id <= self.highest_order_id(client_id):
                self.duplicate_refusals.append((client_id, order_id, order.orderRef))
                return "duplicate", None, None
            placed = copy.copy(order)
            placed.orderId, placed.clientId = order_id, client_id
            gorder = GatewayOrder(
                order_id=order_id,
                client_id=client_id,
                perm_id=next(self._perm_ids),
                contract=copy.copy(contract),
                order=placed,
                hidden=dict(self._hide_new),
            )
            gorder.order.permId = gorder.perm_id
            self.orders.append(gorder)
            self._highest_ids[client_id] = order_id
            return "new", gorder, self._next_script()

    def _visible(self, gorder: GatewayOrder, lookup: str) -> bool:
        """Whether ``gorder`` is in this answer of ``lookup`` (each hidden answer is used up)."""
        with self._lock:
            if gorder.hidden.get(lookup, 0) > 0:
                gorder.hidden[lookup] -= 1
                return False
            return True

    def _apply(self, gorder: GatewayOrder, script: Script) -> None:
        """What happens at the gateway after placement (runs on the placing session's loop)."""
        if script.behaviour == OnPlace.SILENT:
            gorder.status = "Submitted"  # at the gateway only: nothing is published
            return
        if script.behaviour == OnPlace.REJECT:
            self._reject(gorder, script.message, script.status)
            return
        refusal = self._refusal(gorder)
        if refusal:
            self._reject(gorder, refusal, "Inactive")
            return
        self._set_status(gorder, "Submitted")
        if script.behaviour == OnPlace.PARTIAL:
            self._execute(gorder, script.quantity or gorder.remaining / 2, self.prices[gorder.contract.symbol])
        elif script.behaviour == OnPlace.FILL and self._marketable(gorder):
            self._execute(gorder, gorder.remaining, self.prices[gorder.contract.symbol])

    def _refusal(self, gorder: GatewayOrder) -> str:
        """IB's pre-trade checks: no buying on credit, no short sales."""
        symbol = gorder.contract.symbol
        if symbol not in self.prices:
            return f"No security definition has been found for {symbol}"
        price = self.prices[symbol]
        if gorder.order.orderType == "LMT":
            price = Decimal(repr(gorder.order.lmtPrice))
        if gorder.buy and gorder.quantity * price + self.commission > self.cash:
            return "YOUR ORDER IS NOT ACCEPTED. INSUFFICIENT FUNDS"
        held = self.positions.get(symbol, (Decimal(0), Decimal(0)))[0]
        if not gorder.buy and gorder.quantity > held:
            return "YOUR ORDER IS NOT ACCEPTED. SHORT SALES ARE NOT ALLOWED IN THIS ACCOUNT"
        return ""

    def _marketable(self, gorder: GatewayOrder) -> bool:
        if gorder.order.orderType != "LMT":
            return True
        limit, price = Decimal(repr(gorder.order.lmtPrice)), self.prices[gorder.contract.symbol]
        return price <= limit if gorder.buy else price >= limit

    def _execute(self, gorder: GatewayOrder, quantity: Decimal, price: Decimal) -> None:
        with self._lock:
            assert not gorder.done and 0 < quantity <= gorder.remaining, (gorder.status, quantity, gorder.remaining)
            total = gorder.filled + quantity
            gorder.avg_price = (gorder.filled * gorder.avg_price + quantity * price) / total
            gorder.filled = total
            self._book(gorder.contract.symbol, quantity if gorder.buy else -quantity, price)
            when = self.now()
            exec_id = f"0000e0d5.{next(self._exec_ids):08d}.01.01"
            execution = Execution(
                execId=exec_id,
                time=when,
                acctNumber=self.account,
                exchange="ARCA",
                side="BOT" if gorder.buy else "SLD",
                shares=float(quantity),
                price=float(price),
                permId=gorder.perm_id,
                clientId=gorder.client_id,
                orderId=gorder.order_id,
                cumQty=float(total),
                avgPrice=float(gorder.avg_price),
                orderRef=gorder.ref,
            )
            report = CommissionReport(execId=exec_id, commission=float(self.commission), currency="USD")
            fill = Fill(copy.copy(gorder.contract), execution, report, when)
            gorder.fills.append(fill)
            gorder.status = "Filled" if gorder.remaining == 0 else "Submitted"
        self._publish(gorder, fill=fill)

    def _book(self, symbol: str, shares: Decimal, price: Decimal) -> None:
        """Move cash and the position for an execution of ``shares`` (negative: a sale)."""
        self.cash -= shares * price + self.commission
        held, cost = self.positions.get(symbol, (Decimal(0), Decimal(0)))
        after = held + shares
        if after == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = (after, (held * cost + shares * price) / after if shares > 0 else cost)

    def _set_status(self, gorder: GatewayOrder, status: str, error: tuple[int, str] | None = None) -> None:
        with self._lock:
            gorder.status = status
            if error:
                gorder.message = error[1]
        self._publish(gorder, error=error)

    def _reject(self, gorder: GatewayOrder, message: str, status: str) -> None:
        text = f"Order rejected - reason:{message}"
        with self._lock:
            gorder.status, gorder.message = status, text
        # As TWS: error 201 (ib_async marks the trade Cancelled), then the Inactive status.
        self._publish(gorder, error=(201, text), status="Cancelled")
        if status != "Cancelled":
            self._publish(gorder)

    def _cancelled(self, gorder: GatewayOrder, message: str = "") -> None:
        if not gorder.done:
            self._set_status(gorder, "Cancelled", (202, f"Order Canceled - reason:{message}"))

    def _publish(
        self, gorder: GatewayOrder, *, fill: Fill | None = None, error: tuple[int, str] | None = None, status: str = ""
    ) -> None:
        """Tell the connected session, if it follows this order, what changed."""
        session = self.session
        if session is not None:
            session._update(gorder, fill, error, status or gorder.status)

    # -- views handed to sessions (fresh objects, as decoded from IB's messages) ----------------

    def _open_trade(self, gorder: GatewayOrder) -> Trade:
        return Trade(
            copy.copy(gorder.contract),
            copy.copy(gorder.order),
            OrderStatus(
                orderId=gorder.order_id,
                status=gorder.status,
                filled=float(gorder.filled),
                remaining=float(gorder.remaining),
                avgFillPrice=float(gorder.avg_price),
                permId=gorder.perm_id,
                clientId=gorder.client_id,
            ),
            [],
            [],
        )

    def _completed_trade(self, gorder: GatewayOrder) -> Trade:
        order = copy.copy(gorder.order)
        order.orderId, order.clientId = 0, 0  # IB's completed-order message carries neither
        order.filledQuantity = float(gorder.filled)
        return Trade(copy.copy(gorder.contract), order, OrderStatus(orderId=0, status=gorder.status), [], [])


class FakeClient:
    """The part of ib_async's ``Client`` the adapter uses: the session's order id sequence."""

    def __init__(self, session: FakeIB):
        self._session = session
        self._next_id = 0

    def getReqId(self) -> int:
        self._session._gateway._record("getReqId")
        self._session._require_connection()
        reserved, self._next_id = self._next_id, self._next_id + 1
        return reserved

    def updateReqId(self, minReqId: int) -> None:
        self._next_id = max(self._next_id, minReqId)


class FakeIB:
    """One ib_async ``IB`` session against a `FakeIBGateway` (see the module docstring)."""

    def __init__(self, gateway: FakeIBGateway):
        self._gateway = gateway
        self.client = FakeClient(self)
        self.errorEvent = Event("errorEvent")
        self.disconnectedEvent = Event("disconnectedEvent")
        self.connectedEvent = Event("connectedEvent")
        self.orderStatusEvent = Event("orderStatusEvent")
        self.execDetailsEvent = Event("execDetailsEvent")
        self.newOrderEvent = Event("newOrderEvent")
        self.client_id = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._connected = False
        # This client id's trades, by order id (as ib_async keys them); the gateway order each one
        # shows (none for a placement TWS refused); the order ids placed in this session, in order.
        self._views: dict[int, Trade] = {}
        self._backing: dict[int, GatewayOrder] = {}
        self._own: list[int] = []

    # -- connection ----------------------------------------------------------------------------

    async def connectAsync(
        self, host: str = "127.0.0.1", port: int = 7497, clientId: int = 1, timeout: float = 4, **_: Any
    ) -> FakeIB:
        gateway = self._gateway
        gateway._record("connectAsync")
        await asyncio.sleep(0)
        if gateway.refuse_connections:
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        with gateway._lock:
            current = gateway.session
            if current is not None and current._connected and current.client_id == int(clientId):
                raise ConnectionError(f"API client id {clientId} is already in use (error 326)")
            self._forget()
            self.client_id = int(clientId)
            # TWS's nextValidId: above every id it has seen for this client id, whatever was reserved.
            self.client._next_id = gateway.highest_order_id(self.client_id) + 1
            self.loop, self.thread = asyncio.get_running_loop(), threading.current_thread()
            self._connected = True
            gateway.session = self
            gateway.sessions_started += 1
            for gorder in gateway.orders:  # TWS re-sends this client's open orders at connect
                if gorder.client_id == self.client_id and not gorder.done:
                    self._views[gorder.order_id] = gateway._open_trade(gorder)
                    self._backing[gorder.order_id] = gorder
        self.connectedEvent.emit()
        return self

    def isConnected(self) -> bool:
        return self._connected

    def disconnect(self) -> str | None:
        self._gateway._record("disconnect")
        if not self._connected:
            return None
        self._drop()
        return "disconnected"

    def _drop(self) -> None:
        with self._gateway._lock:
            self._connected = False
            self._forget()
            if self._gateway.session is self:
                self._gateway.session = None
        self.disconnectedEvent.emit()

    def _forget(self) -> None:
        self._views.clear()
        self._backing.clear()
        self._own.clear()

    def managedAccounts(self) -> list[str]:
        self._gateway._record("managedAccounts")
        return [self._gateway.account]

    # -- requests ------------------------------------------------------------------------------

    async def _request(self, method: str, answer: Callable[[], T]) -> T:
        gateway = self._gateway
        gateway._record(method)
        self._require_connection()
        if method in gateway._stalled:
            await asyncio.Event().wait()  # never set: only the caller's timeout ends this
        await asyncio.sleep(gateway.delay_s)  # a network round trip: let other callbacks run
        with gateway._lock:
            return answer()

    def _require_connection(self) -> None:
        if not self._connected:
            raise ConnectionError("Not connected")

    def reqCurrentTimeAsync(self) -> Any:
        return self._request("reqCurrentTimeAsync", self._gateway.now)

    def accountSummaryAsync(self, account: str = "") -> Any:
        return self._request("accountSummaryAsync", self._summary)

    def reqPositionsAsync(self) -> Any:
        return self._request("reqPositionsAsync", self._positions)

    def qualifyContractsAsync(self, *contracts: Contract, returnAll: bool = False) -> Any:
        return self._request("qualifyContractsAsync", lambda: [self._qualify(c) for c in contracts])

    def reqAllOpenOrdersAsync(self) -> Any:
        return self._request("reqAllOpenOrdersAsync", self._all_open_orders)

    def reqCompletedOrdersAsync(self, apiOnly: bool) -> Any:
        gateway = self._gateway
        name = "reqCompletedOrdersAsync"
        return self._request(
            name, lambda: [gateway._completed_trade(o) for o in gateway.orders if o.done and gateway._visible(o, name)]
        )

    def reqExecutionsAsync(self, execFilter: Any = None) -> Any:
        gateway = self._gateway
        name = "reqExecutionsAsync"
        return self._request(
            name,
            lambda: [
                copy.deepcopy(f) for o in gateway.orders if o.fills and gateway._visible(o, name) for f in o.fills
            ],
        )

    def _all_open_orders(self) -> list[Trade]:
        gateway = self._gateway
        listed = [o for o in gateway.orders if not o.done and gateway._visible(o, "reqAllOpenOrdersAsync")]
        for gorder in listed:  # ib_async: ids above every open order seen, of any client
            self.client.updateReqId(gorder.order_id + 1)
        return [gateway._open_trade(o) for o in listed]

    def _summary(self) -> list[AccountValue]:
        gateway = self._gateway
        held = sum((q * gateway.prices.get(s, c) for s, (q, c) in gateway.positions.items()), Decimal(0))
        currency = gateway.base_currency
        rows = [("AccountType", "INDIVIDUAL", ""), ("NetLiquidation", gateway.cash + held, currency)]
        rows += [("TotalCashValue", gateway.cash, currency), ("BuyingPower", gateway.cash, currency)]
        rows += [("GrossPositionValue", held, currency)]
        values = [
            AccountValue(gateway.account, tag, value if isinstance(value, str) else f"{value:.2f}", cur, "")
            for tag, value, cur in rows
        ]
        return values + list(gateway.extra_summary_rows)

    def _positions(self) -> list[Position]:
        gateway = self._gateway
        rows = [
            Position(gateway.account, gateway._stock(symbol), float(quantity), float(cost))
            for symbol, (quantity, cost) in sorted(gateway.positions.items())
        ]
        return rows + list(gateway.extra_positions)

    def _qualify(self, contract: Contract) -> Contract | None:
        con_id = self._gateway._con_id(contract.symbol)
        if contract.secType != "STK" or contract.currency != "USD" or con_id is None:
            return None  # ib_async 2.x: None in the unknown contract's slot
        contract.conId, contract.primaryExchange = con_id, "ARCA"
        contract.localSymbol = contract.tradingClass = contract.symbol
        return contract

    # -- orders --------------------------------------------------------------------------------

    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        gateway = self._gateway
        gateway._record("placeOrder")
        self._require_connection()
        order_id = order.orderId or self.client.getReqId()
        outcome, gorder, script = gateway._place(self.client_id, order_id, contract, order)
        # TWS answers later, never inside placeOrder.
        loop = asyncio.get_running_loop()
        if outcome == "new":
            loop.call_soon(gateway._apply, gorder, script)
        elif outcome == "modify":
            loop.call_soon(gateway._publish, gorder)
        else:
            loop.call_soon(self._refused_as_duplicate, order_id, contract)
        # The session's own record, as ib_async keeps it (the message is already on its way).
        now = gateway.now()
        trade = self._views.get(order_id)
        if trade is not None:
            assert trade.orderStatus.status not in DONE  # ib_async's own check, after sending
            trade.log.append(TradeLogEntry(now, trade.orderStatus.status, "Modify"))
            return trade
        order.orderId, order.clientId = order_id, self.client_id
        trade = Trade(
            contract,
            order,
            OrderStatus(orderId=order_id, status="PendingSubmit"),
            [],
            [TradeLogEntry(now, "PendingSubmit")],
        )
        self._views[order_id] = trade
        if gorder is not None:
            self._backing[order_id] = gorder
        self._own.append(order_id)
        self.newOrderEvent.emit(trade)
        return trade

    def _refused_as_duplicate(self, order_id: int, contract: Contract) -> None:
        """TWS's error 103 for a placement: ib_async marks the session's trade for it Cancelled."""
        code, message = DUPLICATE_ORDER_ID
        trade = self._views.get(order_id)
        if trade is not None and trade.orderStatus.status not in DONE and self._connected:
            text = f"Error {code}, reqId {order_id}: {message}"
            trade.orderStatus.status = "Cancelled"
            trade.log.append(TradeLogEntry(self._gateway.now(), "Cancelled", text, code))
            self.orderStatusEvent.emit(trade)
            trade.statusEvent.emit(trade)
        if self._connected:
            self.errorEvent.emit(order_id, code, message, contract)

    def cancelOrder(self, order: Order, manualCancelOrderTime: str = "") -> Trade | None:
        gateway = self._gateway
        gateway._record("cancelOrder")
        self._require_connection()
        gateway.cancel_requests.append(order.orderId)
        matches = [
            o for o in gateway.orders if (o.client_id, o.order_id) == (self.client_id, order.orderId) and order.orderId
        ]
        if not matches:
            self.errorEvent.emit(
                order.orderId, 10147, f"OrderId {order.orderId} that needs to be cancelled is not found.", None
            )
            return None
        gorder = matches[0]
        trade = self._views.get(gorder.order_id)
        if gorder.done:
            self.errorEvent.emit(order.orderId, 161, "Cancel attempted when order is not in a cancellable state.", None)
            return trade
        if trade is not None:  # as ib_async: PendingCancel locally until TWS confirms
            trade.orderStatus.status = "PendingCancel"
            trade.log.append(TradeLogEntry(gateway.now(), "PendingCancel"))
            trade.statusEvent.emit(trade)
        if gateway.confirm_cancels:
            asyncio.get_running_loop().call_soon(gateway._cancelled, gorder, "")
        return trade

    def trades(self) -> list[Trade]:
        return [self._views[order_id] for order_id in self._own if self._shown(order_id, "trades")]

    def openTrades(self) -> list[Trade]:
        return [
            trade
            for order_id, trade in self._views.items()
            if trade.orderStatus.status not in DONE and self._shown(order_id, "openTrades")
        ]

    def _shown(self, order_id: int, lookup: str) -> bool:
        gorder = self._backing.get(order_id)
        return gorder is None or self._gateway._visible(gorder, lookup)

    def _update(self, gorder: GatewayOrder, fill: Fill | None, error: tuple[int, str] | None, status: str) -> None:
        """Apply a gateway change to this session's Trade and emit ib_async's events."""
        if gorder.client_id != self.client_id or self._backing.get(gorder.order_id) is not gorder:
            return
        trade = self._views.get(gorder.order_id)
        if trade is None or not self._connected:
            return
        # ib_async: TWS's openOrder message moves the session's id sequence past the order's id.
        self.client.updateReqId(gorder.order_id + 1)
        when = self._gateway.now()
        if error is not None:
            message = f"Error {error[0]}, reqId {gorder.order_id}: {error[1]}"
            trade.log.append(TradeLogEntry(when, status, message, error[0]))
        if fill is not None:
            session_fill = copy.deepcopy(fill)
            trade.fills.append(session_fill)
            trade.log.append(TradeLogEntry(when, status, f"Fill {fill.execution.shares}@{fill.execution.price}"))
        trade.order.permId = gorder.perm_id
        state = trade.orderStatus
        state.status, state.permId, state.clientId = status, gorder.perm_id, gorder.client_id
        state.filled, state.remaining = float(gorder.filled), float(gorder.remaining)
        state.avgFillPrice = float(gorder.avg_price)
        if fill is not None:
            state.lastFillPrice = fill.execution.price
        if error is None and fill is None:
            trade.log.append(TradeLogEntry(when, status))
        if error is not None:
            self.errorEvent.emit(gorder.order_id, error[0], error[1], gorder.contract)
        if fill is not None:
            self.execDetailsEvent.emit(trade, session_fill)
            trade.fillEvent.emit(trade, session_fill)
        self.orderStatusEvent.emit(trade)
        trade.statusEvent.emit(trade)
