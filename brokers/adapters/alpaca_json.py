"""Alpaca's JSON, both ways: the order bodies this project POSTs and what Alpaca's answers mean
(accounts, positions, the clock, assets and orders, with their status words). Decimals travel
as strings and become `Decimal(str)` exactly; a body this module cannot read is `BadResponse`.
How the adapter calls Alpaca, and what its errors mean: `brokers.adapters.alpaca`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from brokers.base import AccountInfo, Asset, BrokerOrder, Clock, OrderRequest, OrderState, Position, Side

#: Alpaca statuses that end an order; every other word is a working order (see the module docstring).
TERMINAL_STATUSES: Mapping[str, OrderState] = {
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}
#: Working statuses Alpaca documents; any other word is mapped the same way but logged.
WORKING_STATUSES = frozenset(
    {
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
    }
)


def order_state(status: str, filled_qty: Decimal) -> OrderState:
    """The project's state for Alpaca's status word and the shares filled so far (see the table above)."""
    terminal = TERMINAL_STATUSES.get(status)
    if terminal is not None:
        return terminal
    return OrderState.PARTIALLY_FILLED if filled_qty > 0 else OrderState.NEW


class BadResponse(ValueError):
    """Alpaca answered 2xx with a body this module cannot read."""


# --- requests --------------------------------------------------------------------


def order_body(request: OrderRequest) -> dict[str, str]:
    """The POST /v2/orders body: decimals as plain-notation strings, never floats."""
    body = {
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.order_type.value,
        "time_in_force": request.time_in_force.value,
        "client_order_id": request.client_order_id,
    }
    if request.quantity is not None:
        body["qty"] = wire_decimal(request.quantity)
    else:
        assert request.notional_usd is not None  # OrderRequest guarantees exactly one
        body["notional"] = wire_decimal(request.notional_usd)
    if request.limit_price_usd is not None:
        body["limit_price"] = wire_decimal(request.limit_price_usd)
    return body


def wire_decimal(value: Decimal) -> str:
    """A Decimal as Alpaca takes it: "0.123456789", "100" (plain notation, never "1E+2")."""
    return format(value, "f")


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def describe_request(request: OrderRequest) -> str:
    """ "buy 2 VTI", "sell $150.00 of BND"."""
    amount = request.quantity if request.quantity is not None else f"${request.notional_usd} of"
    return f"{request.side} {amount} {request.symbol}"


# --- responses -------------------------------------------------------------------


def parse_account(raw: Any) -> AccountInfo:
    """`GET /v2/account` -> AccountInfo; blocked if Alpaca blocks trading or the account is not ACTIVE."""
    raw = _mapping(raw, "account")
    blocked = any(bool(raw.get(flag)) for flag in ("trading_blocked", "account_blocked", "trade_suspended_by_user"))
    equity = raw.get("equity") if raw.get("equity") is not None else raw.get("portfolio_value")
    return AccountInfo(
        cash_usd=_decimal(raw, "cash"),
        buying_power_usd=_decimal(raw, "buying_power"),
        equity_usd=_to_decimal(equity, "equity"),
        currency=str(raw.get("currency") or "USD"),
        trading_blocked=blocked or raw.get("status") != "ACTIVE",
    )


def parse_positions(raw: Any) -> list[Position]:
    """`GET /v2/positions` -> Positions, shorts as negative quantities (the caller refuses those)."""
    if not isinstance(raw, list):
        raise BadResponse(f"positions: expected a list, got {type(raw).__name__}")
    positions = []
    for item in raw:
        item = _mapping(item, "position")
        quantity = _decimal(item, "qty")
        if item.get("side") == "short" and quantity > 0:
            quantity = -quantity
        positions.append(
            Position(
                symbol=_text(item, "symbol"),
                quantity=quantity,
                avg_entry_price_usd=_optional_decimal(item, "avg_entry_price"),
                market_value_usd=_optional_decimal(item, "market_value"),
            )
        )
    return positions


def parse_clock(raw: Any) -> Clock:
    raw = _mapping(raw, "clock")
    is_open = raw.get("is_open")
    if not isinstance(is_open, bool):
        raise BadResponse(f"clock: is_open is {is_open!r}")
    return Clock(
        timestamp=_timestamp(raw, "timestamp"),
        is_open=is_open,
        next_open=_timestamp(raw, "next_open"),
        next_close=_timestamp(raw, "next_close"),
    )


def parse_asset(raw: Any) -> Asset:
    """`GET /v2/assets/{symbol}` -> Asset; tradable only while Alpaca lists it as active and tradable."""
    raw = _mapping(raw, "asset")
    return Asset(
        symbol=_text(raw, "symbol"),
        tradable=raw.get("tradable") is True and raw.get("status", "active") == "active",
        fractionable=raw.get("fractionable") is True,
    )


def parse_orders(raw: Any) -> list[BrokerOrder]:
    if not isinstance(raw, list):
        raise BadResponse(f"orders: expected a list, got {type(raw).__name__}")
    return [parse_order(item) for item in raw]


def parse_order(raw: Any) -> BrokerOrder:
    """One Alpaca order JSON -> BrokerOrder (status mapped by `order_state`, the word kept)."""
    raw = _mapping(raw, "order")
    status = _text(raw, "status")
    filled = _optional_decimal(raw, "filled_qty") or Decimal(0)
    side = _text(raw, "side")
    if side not in (Side.BUY, Side.SELL):
        raise BadResponse(f"order side {side!r}")
    average = _optional_decimal(raw, "filled_avg_price")
    return BrokerOrder(
        client_order_id=_text(raw, "client_order_id"),
        broker_order_id=_text(raw, "id"),
        symbol=_text(raw, "symbol"),
        side=Side(side),
        state=order_state(status, filled),
        quantity=_optional_decimal(raw, "qty"),
        notional_usd=_optional_decimal(raw, "notional"),
        filled_quantity=filled,
        # Alpaca may send "0" before anything filled: only a price something filled at is a price.
        filled_avg_price_usd=average if filled > 0 else None,
        submitted_at=_optional_timestamp(raw, "submitted_at"),
        updated_at=_optional_timestamp(raw, "updated_at"),
        broker_status=status,
        raw=dict(raw),
    )


def _mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise BadResponse(f"{what}: expected an object, got {type(raw).__name__}")
    return raw


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise BadResponse(f"{name} is {value!r}")
    return value


def _decimal(raw: Mapping[str, Any], name: str) -> Decimal:
    return _to_decimal(raw.get(name), name)


def _optional_decimal(raw: Mapping[str, Any], name: str) -> Decimal | None:
    value = raw.get(name)
    return None if value is None or value == "" else _to_decimal(value, name)


def _to_decimal(value: Any, name: str) -> Decimal:
    """Alpaca's decimal strings exactly; a JSON number (not Alpaca's habit) via its shortest repr."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadResponse(f"{name} is {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise BadResponse(f"{name} is {value!r}") from None
    if not result.is_finite():
        raise BadResponse(f"{name} is {value!r}")
    return result


def _timestamp(raw: Mapping[str, Any], name: str) -> datetime:
    """An RFC 3339 timestamp, timezone-aware (nanoseconds are cut to microseconds)."""
    value = raw.get(name)
    if not isinstance(value, str):
        raise BadResponse(f"{name} is {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadResponse(f"{name} is {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadResponse(f"{name} has no timezone: {value!r}")
    return parsed


def _optional_timestamp(raw: Mapping[str, Any], name: str) -> datetime | None:
    return None if raw.get(name) is None else _timestamp(raw, name)
