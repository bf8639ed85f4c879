"""What Interactive Brokers' objects mean to the project: numbers (IB's doubles and "unset"
markers to exact decimals and back), order statuses, one order's facts gathered from the places
IB reports it (trades, open and completed orders, executions), the account summary and positions.
Pure functions over ib_async's objects (or anything shaped like them): no connection here.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from brokers.base import (
    AccountInfo,
    BrokerError,
    BrokerOrder,
    OrderState,
    Position,
    Side,
)

logger = logging.getLogger(__name__)

#: IB paper trading account ids start with this letter (DU..., DF...).
PAPER_ACCOUNT_PREFIX = "D"
#: The account summary tags read by `IBBroker.account` (values in the account's base currency).
CASH_TAG, BUYING_POWER_TAG, EQUITY_TAG = "TotalCashValue", "BuyingPower", "NetLiquidation"
#: IB error code "Order rejected - reason: ...".
ORDER_REJECTED_CODE = 201
#: IB error code "Duplicate order id": TWS refused the placement; no order was made by it.
DUPLICATE_ORDER_ID_CODE = 103
#: IB sends "Warning"-class messages with codes 2100-2199 (farm connections and the like).
INFO_CODES = range(2100, 2200)
#: ib_async's (and IB's) "value not set" marker for doubles.
UNSET_DOUBLE = sys.float_info.max
_NANO = Decimal("1e-9")

# IB status words (strings, so that this module does not need the SDK to be importable).
ACTIVE_STATUSES = frozenset(
    {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel", "ApiUpdate", "ValidationError"}
)
CANCELLED_STATUSES = frozenset({"Cancelled", "ApiCancelled"})
DONE_STATUSES = CANCELLED_STATUSES | {"Filled", "Inactive"}
#: Statuses that only TWS sends: the order reached IB (PendingSubmit/ApiPending are set locally by
#: ib_async when placing, ValidationError on a warning, so they prove nothing).
ACKNOWLEDGED_STATUSES = DONE_STATUSES | {"PreSubmitted", "Submitted", "PendingCancel"}


# -- numbers ---------------------------------------------------------------------------------


def decimal_from_ib(value: float | Decimal | str | None) -> Decimal | None:
    """An IB number as a Decimal without binary noise: rounded to 9 decimal places, trailing zeros
    dropped, whole numbers without exponent (3.0 -> 3, 1e2 -> 100, 0.1 + 0.2 -> 0.3).

    None for what IB uses as "not set": None, "", NaN, infinities, ``UNSET_DOUBLE``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= UNSET_DOUBLE:
            return None
        number = Decimal(repr(round(value, 9)))
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        with localcontext() as context:
            context.prec = 60  # large values must not lose digits while quantizing
            number = number.quantize(_NANO)
    return _tidy(number)


def _tidy(number: Decimal) -> Decimal:
    if number == 0:
        return Decimal(0)  # also turns -0 into 0
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def float_for_ib(value: Decimal, what: str) -> float:
    """``value`` as the float IB's API takes; `BrokerError(permanent=True)` when the float does not
    carry it exactly (more significant digits than a double holds)."""
    number = float(value)
    if not math.isfinite(number) or Decimal(repr(number)) != value:
        raise BrokerError(f"{what} {value} cannot be sent to IB exactly (IB's API takes a float)", permanent=True)
    return number


# -- status mapping --------------------------------------------------------------------------


def map_state(status: str, filled: Decimal, rejected: bool) -> OrderState:
    """The project state of an IB order; see the table in the module docstring.

    ``rejected``: IB's error 201 ("Order rejected") was reported for the order.
    """
    if status == "Filled":
        return OrderState.FILLED
    if status == "Inactive":
        return OrderState.REJECTED
    if status in CANCELLED_STATUSES:
        return OrderState.REJECTED if rejected and filled == 0 else OrderState.CANCELED
    if status not in ACTIVE_STATUSES:
        logger.warning("IB order status %r is not known to this adapter; treating the order as open", status)
    return OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.NEW


# -- one IB order from several sources -------------------------------------------------------


@dataclass
class OrderFacts:
    """Everything found about one IB order: its best record and its fills (by execution id).

    ``trade`` is an ib_async ``Trade`` (None when only executions were found). Lives on the
    loop thread; `to_broker_order` turns it into the project's dataclass.
    """

    order_ref: str
    trade: Any | None = None
    fills: dict[str, Any] = field(default_factory=dict)
    error: tuple[int, str] | None = None

    def add_fills(self, fills: Iterable[Any]) -> None:
        for fill in fills:
            self.fills.setdefault(fill.execution.execId, fill)


def trade_perm_id(trade: Any) -> int:
    return int(trade.order.permId or trade.orderStatus.permId or 0)


def _record_rank(trade: Any, source: int) -> tuple[bool, int]:
    """Which record of an order to believe: a finished one (IB's last word) first, then the most
    live source (lower ``source`` = the session's own, live-updated objects)."""
    return (trade.orderStatus.status in DONE_STATUSES, -source)


def gather_facts(order_ref: str, sources: Sequence[Iterable[Any]], fills: Iterable[Any]) -> OrderFacts | None:
    """The facts about the order tagged ``order_ref``, from trade lists (most live first) and
    executions; None when nothing carries that orderRef."""
    facts = OrderFacts(order_ref)
    best: tuple[tuple[bool, int], Any] | None = None
    perm_ids: set[int] = set()
    for source, trades in enumerate(sources):
        for trade in trades:
            if trade.order.orderRef != order_ref:
                continue
            facts.add_fills(trade.fills)
            perm_ids.add(trade_perm_id(trade))
            rank = _record_rank(trade, source)
            if best is None or rank > best[0]:
                best = (rank, trade)
    facts.add_fills(f for f in fills if f.execution.orderRef == order_ref)
    perm_ids.update(f.execution.permId for f in facts.fills.values())
    perm_ids.discard(0)  # not yet acknowledged by TWS: no permId
    if len(perm_ids) > 1:
        # The adapter never places a second order for one orderRef; this is someone else's doing
        # (or a manual order): report loudly, keep every fill so positions stay explainable.
        logger.error("IB holds several orders with orderRef %s (permIds %s)", order_ref, sorted(perm_ids))
    if best is None and not facts.fills:
        return None
    facts.trade = best[1] if best else None
    return facts


def collect_facts(sources: Sequence[Iterable[Any]], fills: Iterable[Any]) -> list[OrderFacts]:
    """Every order in trade lists (most live first) and executions, once each: grouped by orderRef,
    or by permId for orders without one (placed by hand in TWS; their ``order_ref`` is ""), then
    gathered as `gather_facts` does. Records with neither (not yet acknowledged by TWS) identify
    no order and are left out."""
    sources = [list(trades) for trades in sources]
    grouped: dict[str | int, tuple[list[list[Any]], list[Any]]] = {}

    def group(key: str | int) -> tuple[list[list[Any]], list[Any]]:
        return grouped.setdefault(key, ([[] for _ in sources], []))

    for index, trades in enumerate(sources):
        for trade in trades:
            key = trade.order.orderRef or trade_perm_id(trade)
            if key:
                group(key)[0][index].append(trade)
    for fill in fills:
        key = fill.execution.orderRef or fill.execution.permId
        if key:
            group(key)[1].append(fill)
    gathered = (gather_facts(key if isinstance(key, str) else "", *members) for key, members in grouped.items())
    return [facts for facts in gathered if facts is not None]


def refused_as_duplicate(trade: Any) -> bool:
    """Whether TWS refused this placement as a duplicate order id (error 103): the trade is only
    ib_async's local record of a message TWS turned down, not an order."""
    return any(entry.errorCode == DUPLICATE_ORDER_ID_CODE for entry in trade.log)


def _fill_totals(fills: Iterable[Any]) -> tuple[Decimal, Decimal | None]:
    """(shares filled, volume-weighted average price) of executions."""
    shares, value = Decimal(0), Decimal(0)
    for fill in fills:
        quantity = decimal_from_ib(fill.execution.shares) or Decimal(0)
        price = decimal_from_ib(fill.execution.price) or Decimal(0)
        shares += quantity
        value += quantity * price
    return shares, (decimal_from_ib(value / shares) if shares else None)


def _aware(moment: Any) -> datetime | None:
    """A timezone-aware datetime after 1970, else None (ib_async uses datetime.min as unset)."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.year <= 1970:
        return None
    return moment


def _reject_reason(trade: Any, error: tuple[int, str] | None) -> tuple[bool, str]:
    """(IB's error 201 was seen, the most recent error message for the order)."""
    rejected = error is not None and error[0] == ORDER_REJECTED_CODE
    reason = error[1] if error else ""
    for entry in reversed(trade.log if trade is not None else []):
        if entry.errorCode:
            rejected = rejected or entry.errorCode == ORDER_REJECTED_CODE
            reason = reason or entry.message
    return rejected, reason


def to_broker_order(facts: OrderFacts) -> BrokerOrder:
    """The project's view of one IB order (see the status table in the module docstring)."""
    fills = sorted(facts.fills.values(), key=lambda f: f.execution.time)
    fill_shares, fill_price = _fill_totals(fills)
    trade = facts.trade
    if trade is None:
        first = fills[0]
        return BrokerOrder(
            client_order_id=facts.order_ref,
            broker_order_id=str(first.execution.permId),
            symbol=first.contract.symbol,
            side=Side.BUY if first.execution.side == "BOT" else Side.SELL,
            state=OrderState.PARTIALLY_FILLED,
            quantity=None,
            notional_usd=None,
            filled_quantity=fill_shares,
            filled_avg_price_usd=fill_price,
            submitted_at=_aware(first.execution.time),
            updated_at=_aware(fills[-1].execution.time),
            broker_status="executions only",
            raw={"perm_id": first.execution.permId, "exec_ids": [f.execution.execId for f in fills]},
        )
    order, status = trade.order, trade.orderStatus
    quantity = decimal_from_ib(order.totalQuantity)
    filled = max(
        fill_shares,
        decimal_from_ib(status.filled) or Decimal(0),
        decimal_from_ib(getattr(order, "filledQuantity", None)) or Decimal(0),
    )
    if status.status == "Filled" and quantity is not None:
        filled = max(filled, quantity)  # IB says done; fills may be older than today's report
    average = decimal_from_ib(status.avgFillPrice) if status.avgFillPrice and filled > fill_shares else None
    rejected, reason = _reject_reason(trade, facts.error)
    state = map_state(status.status, filled, rejected)
    if state == OrderState.REJECTED and not reason:
        reason = f"IB order status {status.status}"  # IB sent no message (e.g. a completed order)
    times = [t for t in (_aware(e.time) for e in trade.log) if t] + [
        t for t in (_aware(f.execution.time) for f in fills) if t
    ]
    perm_id = trade_perm_id(trade)
    return BrokerOrder(
        client_order_id=facts.order_ref,
        broker_order_id=str(perm_id) if perm_id else f"{order.clientId}/{order.orderId}",
        symbol=trade.contract.symbol,
        side=Side.BUY if order.action == "BUY" else Side.SELL,
        state=state,
        quantity=quantity,
        notional_usd=None,
        filled_quantity=filled,
        filled_avg_price_usd=(average or fill_price) if filled else None,
        submitted_at=min(times) if times else None,
        updated_at=max(times) if times else None,
        reject_reason=reason if state in (OrderState.REJECTED, OrderState.CANCELED) else "",
        broker_status=status.status,
        raw={
            "order_id": order.orderId,
            "client_id": order.clientId,
            "perm_id": perm_id,
            "ib_status": status.status,
            "exec_ids": [f.execution.execId for f in fills],
        },
    )


# -- account and positions -------------------------------------------------------------------


def account_info(rows: Iterable[Any]) -> AccountInfo:
    """Cash, buying power and net liquidation (USD) from IB account summary rows."""
    wanted = (CASH_TAG, BUYING_POWER_TAG, EQUITY_TAG)
    rows = [row for row in rows if row.tag in wanted]
    _single_account({row.account for row in rows})
    found = {row.tag: row for row in rows if row.currency == "USD"}
    if len(found) < len(wanted):
        other = sorted({row.currency for row in rows if row.currency != "USD"})
        if other:
            raise BrokerError(f"IB reports the account in {', '.join(other)}; this adapter needs USD", permanent=True)
        missing = ", ".join(tag for tag in wanted if tag not in found)
        raise BrokerError(f"IB's account summary has no {missing} yet")
    values = {tag: decimal_from_ib(row.value) for tag, row in found.items()}
    if any(value is None for value in values.values()):
        raise BrokerError("IB's account summary holds a value that is not a number")
    return AccountInfo(
        cash_usd=values[CASH_TAG],  # type: ignore[arg-type]
        buying_power_usd=values[BUYING_POWER_TAG],  # type: ignore[arg-type]
        equity_usd=values[EQUITY_TAG],  # type: ignore[arg-type]
    )


def _single_account(accounts: set[str]) -> None:
    if len(accounts) > 1:
        # Mixing several accounts' numbers would plan trades on money that is not there.
        raise BrokerError(
            f"IB reports {len(accounts)} accounts at this login; this adapter trades exactly one", permanent=True
        )


def to_positions(ib_positions: Iterable[Any]) -> list[Position]:
    """US stock positions (USD, shares > 0). Other instruments are skipped (logged); a short
    stock position is a permanent error: the rebalancer never opens one and cannot plan with it."""
    ib_positions = list(ib_positions)
    _single_account({p.account for p in ib_positions})
    result = []
    for item in ib_positions:
        contract = item.contract
        quantity = decimal_from_ib(item.position) or Decimal(0)
        if contract.secType != "STK" or contract.currency != "USD":
            logger.warning("IB position in %s %s %s ignored", contract.secType, contract.currency, contract.symbol)
            continue
        if quantity < 0:
            raise BrokerError(f"IB reports a short position in {contract.symbol} ({quantity})", permanent=True)
        if quantity == 0:
            continue
        result.append(
            Position(symbol=contract.symbol, quantity=quantity, avg_entry_price_usd=decimal_from_ib(item.avgCost))
        )
    return sorted(result, key=lambda p: p.symbol)


def is_paper_account(account: str) -> bool:
    return account.upper().startswith(PAPER_ACCOUNT_PREFIX)
