"""Orders through their life at a broker: sent once, looked up when the outcome is unknown.

Every function here saves each state change as soon as it happens (never inside a caller's
transaction: a "submitting" mark must be on disk before the broker is called, so that a crash
right after the call is resolved by a lookup instead of a second order). Each broker request,
answer and state change is an `OrderEvent`.

A broker whose batches are over when the call returns (the paper broker: one database
transaction) gets a side's orders in one call (`orders_submit`): the "submitting" marks of all of
them are stored together before the call and their answers together after it. A broker whose
orders live in this database (`Broker.shares_transactions`: the paper broker) gets new orders
through `orders_place` instead: records, events and the broker's own rows in one transaction,
which may be the caller's, so that none of it exists without the rest.

Exactly once: an order is sent under its own deterministic client order id; an ``unknown``
outcome is resolved with `Broker.get_order`; only when the broker says it has no such order is
the same request sent again, under the same id (brokers refuse a second order with an id they
have), at most `MAX_SUBMIT_ATTEMPTS` times.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokers.base import Broker, BrokerError, BrokerOrder, OrderRequest, OrderState, OrderType, Side, TimeInForce
from brokers.models import Order, OrderEvent
from brokers.states import IllegalTransition, can_move, check_fill, is_stale
from rebalancer_site.db import rows_update
from rebalancer_site.logcontext import log_context

logger = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 3
_SECRET_WORDS = ("secret", "key", "token", "password", "authorization")


@functools.lru_cache(maxsize=4096)
def _secret_looking(key: str) -> bool:
    """Whether a payload key names a secret (keys repeat in every event: each is judged once)."""
    return any(word in key.lower() for word in _SECRET_WORDS)


def redacted(payload: object) -> object:
    """``payload`` with values under secret-looking keys replaced (defence in depth: requests and
    answers logged here carry no credentials, but a broker's raw answer might)."""
    if isinstance(payload, dict):
        return {key: "(redacted)" if _secret_looking(str(key)) else redacted(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [redacted(value) for value in payload]
    if isinstance(payload, Decimal):
        return str(payload)
    if hasattr(payload, "isoformat"):
        return payload.isoformat()
    return payload


def _fields(answer: object) -> dict:
    """A request's or answer's fields, as they are (`dataclasses.asdict` deep-copies each value,
    a broker's whole raw answer included, for every event)."""
    return {f.name: getattr(answer, f.name) for f in fields(answer)}


def _event(order: Order, kind: str, *, message: str = "", payload: object = None, before: str = "") -> OrderEvent:
    """The event row (not saved) for what just happened to ``order``."""
    return OrderEvent(
        order=order,
        kind=kind,
        state_before=before or order.state,
        state_after=order.state,
        message=message[:2000],
        payload=redacted(payload or {}),
    )


def order_event(order: Order, kind: str, *, message: str = "", payload: object = None, before: str = "") -> OrderEvent:
    event = _event(order, kind, message=message, payload=payload, before=before)
    event.save()
    return event


def order_request(order: Order) -> OrderRequest:
    """The broker request for ``order``: the same every time it is (re)sent."""
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=Side(order.side),
        quantity=order.quantity,
        notional_usd=order.notional_usd,
        order_type=OrderType(order.order_type),
        limit_price_usd=order.limit_price_usd,
        time_in_force=TimeInForce(order.time_in_force),
    )


def _moved(order: Order, state: OrderState, *, kind: str, message: str = "", payload: object = None) -> OrderEvent:
    """Move ``order`` to ``state`` in memory; the event to store with it."""
    before = order.state
    if not can_move(OrderState(before), state):
        raise IllegalTransition(f"order {order.client_order_id}: {before} -> {state} is not allowed")
    order.state = state.value
    return _event(order, kind, message=message, payload=payload, before=before)


def _move(
    order: Order, state: OrderState, *, kind: str, message: str = "", payload: object = None, also: list[str] = ()
) -> None:
    """Move ``order`` to ``state`` (saving ``also`` with it) and store the event, together."""
    event = _moved(order, state, kind=kind, message=message, payload=payload)
    with transaction.atomic():
        order.save(update_fields=["state", "updated_at", *also])
        event.save()


#: What an answer from the broker changes on an order.
_ANSWER_FIELDS = [
    "state",
    "filled_quantity",
    "filled_avg_price_usd",
    "broker_order_id",
    "broker_status",
    "reject_reason",
    "updated_at",
]


def _applied(order: Order, reported: BrokerOrder, kind: str) -> tuple[OrderEvent, bool]:
    """Apply what the broker reports to ``order`` in memory: state forward only, fills never
    backward. The event to store, and whether the order changed.

    A stale answer (an earlier state than the one stored) is logged and ignored; one that
    contradicts the record (a filled order reported canceled) is logged as an error and the
    record kept, for a person to look at.
    """
    current = OrderState(order.state)
    new = reported.state
    payload = {**_fields(reported), "raw": None}
    if not can_move(current, new):
        if is_stale(current, new):
            return _event(order, kind, message=f"stale answer ({new}) ignored", payload=payload), False
        logger.error(
            "broker contradicts order record",
            extra={"client_order_id": order.client_order_id, "stored": current.value, "reported": new.value},
        )
        message = f"broker reported {new} after {current}; kept {current}"
        return _event(order, OrderEvent.Kind.ERROR, message=message, payload=payload), False
    try:
        check_fill(order.filled_quantity, reported.filled_quantity, order.quantity)
    except IllegalTransition as error:
        return _event(order, OrderEvent.Kind.ERROR, message=str(error), payload=payload), False
    before = order.state
    order.state = new.value
    order.filled_quantity = reported.filled_quantity
    order.filled_avg_price_usd = reported.filled_avg_price_usd
    order.broker_order_id = reported.broker_order_id or order.broker_order_id
    order.broker_status = reported.broker_status[:40]
    order.reject_reason = reported.reject_reason or order.reject_reason
    return _event(order, kind, message=reported.broker_status, payload=payload, before=before), True


def order_apply(order: Order, reported: BrokerOrder, *, kind: str = OrderEvent.Kind.RESPONSE) -> Order:
    """Record what the broker reports (see `_applied`): the order and its event, together."""
    event, changed = _applied(order, reported, kind)
    with transaction.atomic():
        if changed:
            order.save(update_fields=_ANSWER_FIELDS)
        event.save()
    return order


def order_submit(broker: Broker, order: Order, *, halted: Callable[[], str | None] = lambda: None) -> Order:
    """Send ``order`` (planned, or in flight with an unknown outcome) so that it exists once.

    In-flight orders are looked up first. ``halted`` is read right before sending: a reason
    there (the kill switch) cancels an order never sent instead.
    """
    order.refresh_from_db()  # the stored state decides, never a stale copy
    state = OrderState(order.state)
    if state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        order, answer = order_resolve(broker, order)
        if answer != ABSENT:
            return order
    elif state != OrderState.PLANNED:
        return order
    reason = halted()
    if reason:
        if OrderState(order.state) == OrderState.PLANNED:
            _move(order, OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=f"not sent: {reason}")
        return order
    if order.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
        order_event(order, OrderEvent.Kind.ERROR, message=f"not resent: {order.submit_attempts} attempts already made")
        return order
    request = order_request(order)
    order.submit_attempts += 1
    _move(
        order, OrderState.SUBMITTING, kind=OrderEvent.Kind.REQUEST, payload=_fields(request), also=["submit_attempts"]
    )
    try:
        reported = broker.submit_order(request)
    except BrokerError as error:
        if error.permanent:
            order.reject_reason = str(error)[:2000]
            order.save(update_fields=["reject_reason", "updated_at"])
            _move(order, OrderState.REJECTED, kind=OrderEvent.Kind.ERROR, message=str(error))
            return order
        # Unknown, or a failure whose effect cannot be ruled out: never assume it failed.
        _move(order, OrderState.UNKNOWN, kind=OrderEvent.Kind.ERROR, message=str(error))
        order, _ = order_resolve(broker, order)
        return order
    order = order_apply(order, reported)
    logger.info("order sent", extra={"symbol": order.symbol, "side": order.side, "state": order.state})
    return order


def orders_submit(
    broker: Broker,
    orders: Sequence[Order],
    *,
    halted: Callable[[], str | None] = lambda: None,
    sent: Callable[[Order], None] = lambda order: None,
    fresh: bool = False,
) -> list[Order]:
    """`order_submit` for each of ``orders`` (the orders as they end up, in the same order);
    ``sent(order)`` after each one's answer is stored.

    A broker that `submits_in_batches` gets the planned orders in one call: the kill switch is
    read once right before it, all are marked submitting in one transaction (on disk before the
    call, as one by one) and all answers are stored in one more. Orders in flight or already
    answered go through `order_submit` one by one first, as do all orders at any other broker.
    ``fresh``: the caller read or wrote ``orders`` just now and nothing else writes them (the
    run's lease), so their stored state is not read again.
    """
    if broker.submits_in_batches:
        if not fresh:
            stored = Order.objects.in_bulk([o.pk for o in orders])
            orders = [stored[o.pk] for o in orders]
        batch = [o for o in orders if o.state == OrderState.PLANNED and o.submit_attempts < MAX_SUBMIT_ATTEMPTS]
    else:
        batch = []
    singles = [o for o in orders if o not in batch]
    done = {}
    for order in singles:
        with log_context(client_order_id=order.client_order_id):
            done[order.pk] = order_submit(broker, order, halted=halted)
        sent(done[order.pk])
    if batch:
        reason = halted()
        answered = _submit_batch(broker, batch) if not reason else [_not_sent(o, reason) for o in batch]
        for order in answered:
            done[order.pk] = order
            sent(order)
    return [done[o.pk] for o in orders]


def _not_sent(order: Order, reason: str) -> Order:
    _move(order, OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=f"not sent: {reason}")
    return order


def _submit_batch(broker: Broker, batch: list[Order]) -> list[Order]:
    requests = [order_request(o) for o in batch]
    events = []
    for order, request in zip(batch, requests, strict=True):
        order.submit_attempts += 1
        events.append(_moved(order, OrderState.SUBMITTING, kind=OrderEvent.Kind.REQUEST, payload=_fields(request)))
    with transaction.atomic():
        # The same change for all, from the state they were read in (under the run's lease).
        marked = Order.objects.filter(pk__in=[o.pk for o in batch], state=OrderState.PLANNED.value).update(
            state=OrderState.SUBMITTING.value, submit_attempts=F("submit_attempts") + 1, updated_at=timezone.now()
        )
        if marked != len(batch):
            raise IllegalTransition(f"{len(batch) - marked} of the orders changed before they were sent; none sent")
        OrderEvent.objects.bulk_create(events)
    events, unknown = _answered(broker, batch, requests)
    with transaction.atomic():
        rows_update(batch, _ANSWER_FIELDS)
        OrderEvent.objects.bulk_create(events)
    return _resolved(broker, batch, unknown)


def _answered(broker: Broker, batch: list[Order], requests: list[OrderRequest]) -> tuple[list[OrderEvent], list[Order]]:
    """Send ``requests`` (of ``batch``, marked submitting) in one call and apply the answers in
    memory: the events to store, and the orders whose outcome is unknown."""
    try:
        answers = broker.submit_orders(requests)
    except BrokerError as error:
        answers = [error] * len(batch)
    events, unknown = [], []
    for order, answer in zip(batch, answers, strict=True):
        if isinstance(answer, BrokerOrder):
            events.append(_applied(order, answer, OrderEvent.Kind.RESPONSE)[0])
        elif answer.permanent:
            order.reject_reason = str(answer)[:2000]
            events.append(_moved(order, OrderState.REJECTED, kind=OrderEvent.Kind.ERROR, message=str(answer)))
        else:
            # Unknown, or a failure whose effect cannot be ruled out: never assume it failed.
            events.append(_moved(order, OrderState.UNKNOWN, kind=OrderEvent.Kind.ERROR, message=str(answer)))
            unknown.append(order)
    return events, unknown


def _resolved(broker: Broker, batch: list[Order], unknown: list[Order]) -> list[Order]:
    """``batch`` once its answers are stored: the unknown ones looked up, each logged."""
    for order in unknown:
        order_resolve(broker, order)
    for order in batch:
        logger.info(
            "order sent",
            extra={
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side,
                "state": order.state,
            },
        )
    return batch


def orders_place(
    broker: Broker,
    orders: Sequence[Order],
    *,
    halted: Callable[[], str | None] = lambda: None,
) -> list[Order]:
    """Write new ``orders`` (planned, not saved) and send them, at a broker that `shares_transactions`:
    the records, their request and answer events and the broker's own rows (its fills) are written
    in one transaction, so either all of it is stored or none (nothing sent). The orders as stored.

    The kill switch (``halted``) is read once before: a reason there stores them canceled, unsent.
    An `IntegrityError` (the orders were written already) leaves nothing; the caller reads them.
    """
    batch = list(orders)
    if not broker.shares_transactions or any(o.pk is not None or o.state != OrderState.PLANNED for o in batch):
        raise ValueError("orders_place: new planned orders, at a broker that shares transactions")
    reason = halted()
    if reason:
        message = f"not sent: {reason}"
        events = [_moved(o, OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=message) for o in batch]
    else:
        requests = [order_request(o) for o in batch]
        events = []
        for order, request in zip(batch, requests, strict=True):
            order.submit_attempts = 1
            events.append(_moved(order, OrderState.SUBMITTING, kind=OrderEvent.Kind.REQUEST, payload=_fields(request)))
    unknown: list[Order] = []
    with transaction.atomic(savepoint=False):  # a caller's transaction may take all of it in
        if not reason:
            answers, unknown = _answered(broker, batch, requests)
            events += answers
        Order.objects.bulk_create(batch)  # each with its answer (or canceled); the events find their keys
        OrderEvent.objects.bulk_create(events)
    return batch if reason else _resolved(broker, batch, unknown)


#: Answers of `order_resolve`.
FOUND, ABSENT, LOOKUP_FAILED = "found", "absent", "lookup_failed"


def order_resolve(broker: Broker, order: Order) -> tuple[Order, str]:
    """Look ``order`` up by its client order id: (order, `FOUND` | `ABSENT` | `LOOKUP_FAILED`).

    Absent leaves it ``unknown`` (a later `order_submit` sends it again under the same id); a
    failed lookup leaves it as it was, and nothing may be resent on its account.
    """
    try:
        reported = broker.get_order(order.client_order_id)
    except BrokerError as error:
        order_event(order, OrderEvent.Kind.ERROR, message=f"lookup failed: {error}")
        return order, LOOKUP_FAILED
    if reported is None:
        if OrderState(order.state) == OrderState.SUBMITTING:
            _move(order, OrderState.UNKNOWN, kind=OrderEvent.Kind.LOOKUP, message="broker has no such order")
        else:
            order_event(order, OrderEvent.Kind.LOOKUP, message="broker has no such order")
        return order, ABSENT
    return order_apply(order, reported, kind=OrderEvent.Kind.LOOKUP), FOUND


def order_refresh(broker: Broker, order: Order) -> Order:
    """The broker's latest word on an order it holds (new or partially filled)."""
    if OrderState(order.state) in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        return order_resolve(broker, order)[0]
    if OrderState(order.state) not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
        return order
    try:
        reported = broker.get_order(order.client_order_id)
    except BrokerError as error:
        logger.warning("order refresh failed", extra={"client_order_id": order.client_order_id, "error": str(error)})
        return order
    if reported is None:
        order_event(order, OrderEvent.Kind.ERROR, message="broker no longer reports this order")
        return order
    before = (order.state, order.filled_quantity)
    if (reported.state.value, reported.filled_quantity) != before:
        order_apply(order, reported, kind=OrderEvent.Kind.LOOKUP)
    return order


def orders_wait(
    broker: Broker,
    orders: Iterable[Order],
    *,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Order]:
    """Poll until every order is terminal or ``timeout_s`` passes; the orders as last seen."""
    orders = list(orders)
    deadline = clock() + timeout_s
    while True:
        orders = [order_refresh(broker, o) if not o.terminal else o for o in orders]
        if all(o.terminal for o in orders) or clock() >= deadline:
            return orders
        sleep(poll_s)


def order_cancel(broker: Broker, order: Order, *, reason: str) -> Order:
    """Cancel: an order never sent is canceled here; one at the broker is asked to cancel there."""
    state = OrderState(order.state)
    if state == OrderState.PLANNED:
        _move(order, OrderState.CANCELED, kind=OrderEvent.Kind.CANCEL, message=reason)
        return order
    if state.terminal:
        return order
    try:
        broker.cancel_order(order.client_order_id)
    except BrokerError as error:
        order_event(order, OrderEvent.Kind.ERROR, message=f"cancel failed: {error}")
        return order
    order_event(order, OrderEvent.Kind.CANCEL, message=reason)
    return order_refresh(broker, order)
