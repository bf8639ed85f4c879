"""The order state machine: which state may follow which. Pure; `brokers.services.orders`
applies it to `Order` rows.

    planned -> submitting -> new -> partially_filled -> filled
       ^           |           \\-> canceled | expired | rejected
       |           +-> unknown -> (any state the broker reports)
       |           |      |
       +-----------+------+  back to planned only when the broker never took the order: it
                             refused the request before looking at it, or reported the order
                             absent twice (`brokers.services.orders.order_resolve`)
    planned -> canceled (never sent: a kill switch or a stopped run)

Otherwise states only move forward: a broker's late, stale answer (an older "new" after
"filled") is ignored rather than applied, and the filled quantity never decreases.
"""

from __future__ import annotations

from decimal import Decimal

from brokers.base import BROKER_STATES, OrderState

S = OrderState

ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    S.PLANNED: frozenset({S.SUBMITTING, S.CANCELED}),
    S.SUBMITTING: BROKER_STATES | {S.UNKNOWN, S.PLANNED},
    S.UNKNOWN: BROKER_STATES | {S.PLANNED},
    S.NEW: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}

#: States in which the broker may hold the order (a lookup can tell more).
IN_FLIGHT = frozenset({S.SUBMITTING, S.UNKNOWN, S.NEW, S.PARTIALLY_FILLED})


class IllegalTransition(Exception):
    """A state change the machine forbids (a bug, or a broker answer that contradicts the record)."""


def can_move(current: OrderState, new: OrderState) -> bool:
    return new in ALLOWED[current]


def is_stale(current: OrderState, new: OrderState) -> bool:
    """True when ``new`` is an earlier point of the same path (a late answer): ignore it."""
    if current == new:
        return current != S.PARTIALLY_FILLED
    order = [S.PLANNED, S.SUBMITTING, S.UNKNOWN, S.NEW, S.PARTIALLY_FILLED]
    if current.terminal:
        return new in order
    return new in order and current in order and order.index(new) < order.index(current)


def check_fill(previous: Decimal, new: Decimal, ordered: Decimal | None) -> None:
    """The filled quantity never decreases nor exceeds the order's quantity."""
    if new < previous:
        raise IllegalTransition(f"filled quantity would decrease from {previous} to {new}")
    if ordered is not None and new > ordered:
        raise IllegalTransition(f"filled quantity {new} exceeds the ordered {ordered}")
