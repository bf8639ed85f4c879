"""Orders through their life at a broker: sent once, looked up when the outcome is unknown.

Every function here stores each state change as soon as it happens, in its own transaction
(a "submitting" mark must be on disk before the broker is called, so that a crash right after
the call is resolved by a lookup instead of a second order). Each broker request, answer and
state change is an `OrderEvent`.

Writes are fenced and conditional. Each one runs in ``fence.atomic()`` (`brokers.fencing`): an
executor that lost its lease stores nothing. And each one is made only if the row still has the
version the decision was taken on: a decision taken on a stale copy (a kill switch canceled the
order meanwhile) is taken again on the stored row, so the forward-only rule of `brokers.states`
holds for the row on disk, not for somebody's copy of it.

Exactly once, whether or not the broker refuses a repeated client order id:

- An order is sent under its deterministic client order id and the submission id the broker
  refuses twice (`Broker.reserve_submission_id`), stored before the first send.
- An order whose submission may have reached the broker (``submitting``, ``unknown``) is sent
  again only after the broker reported it absent twice: `Broker.get_order`, then
  `Broker.settlement_delay_s` later the independent listing `Broker.orders_since`. It then goes
  back to ``planned`` and may be sent again, under the same submission id, or canceled.
- A send the broker refused before taking it (`BrokerError` with neither flag, e.g. HTTP 429 on
  every attempt) puts the order back to ``planned`` and is not counted as an attempt. Sends with
  an unknown outcome are, up to `MAX_SUBMIT_ATTEMPTS`; after that a confirmed-absent order is
  canceled here rather than sent once more.

Every broker gets new orders the same way (`orders_send`): written before anything is sent, then
sent `Broker.max_orders_per_call` at a time, each call's marks and answers stored together.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from brokers.base import Broker, BrokerError, BrokerOrder, OrderRequest, OrderState, OrderType, Side, TimeInForce
from brokers.fencing import UNFENCED, Fence
from brokers.models import Order, OrderEvent
from brokers.states import IN_FLIGHT, IllegalTransition, can_move, check_fill, is_stale
from ground.logcontext import log_context

logger = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 3
#: Sends of unknown outcome under one submission id, each confirmed absent, before a fresh id is reserved.
_SENDS_PER_SUBMISSION_ID = 2
#: How often a write is decided again when the row changed under it before giving up.
_DECISION_ATTEMPTS = 5
#: `orders_since` looks this far before the order's record was written (clocks differ).
_LISTING_MARGIN = timedelta(hours=1)
_SECRET_WORDS = ("secret", "key", "token", "password", "authorization")

#: Answers of `order_resolve`.
FOUND, ABSENT, LOOKUP_FAILED = "found", "absent", "lookup_failed"


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


def _event(
    order: Order, kind: str, *, after: str, before: str, message: str = "", payload: object = None
) -> OrderEvent:
    """The event row (not saved) for what just happened to ``order``."""
    return OrderEvent(
        order=order,
        kind=kind,
        state_before=before,
        state_after=after,
        message=message[:2000],
        payload=redacted(payload or {}),
    )


@dataclass
class _Change:
    """What a decision changes on an order: new field values (none: only an event) and events."""

    values: dict[str, object] = field(default_factory=dict)
    events: list[OrderEvent] = field(default_factory=list)


class _RowChanged(Exception):
    """The stored row is not the version the decision was taken on."""


def _stored(order: Order, change: _Change, fence: Fence) -> None:
    """Store ``change`` of ``order`` if the row is still the version read, with its events, fenced.
    An event alone moves the version too: what it says was judged on that version."""
    with fence.atomic():
        if not _row_written(order, change, timezone.now()):
            raise _RowChanged
        OrderEvent.objects.bulk_create(change.events)


def _row_written(order: Order, change: _Change, now) -> bool:
    """Write ``change``'s values on ``order``'s row if it is still the version read (and on the
    copy); whether it was."""
    written = Order.objects.filter(pk=order.pk, version=order.version).update(
        version=order.version + 1, updated_at=now, **change.values
    )
    if written:
        for name, value in change.values.items():
            setattr(order, name, value)
        order.version += 1
        order.updated_at = now
    return bool(written)


def _decided(order: Order, decide: Callable[[Order], _Change | None], *, fence: Fence) -> Order:
    """Take ``decide`` on ``order`` and store its change; when the row changed meanwhile, read it
    again and decide again on what is stored."""
    for _ in range(_DECISION_ATTEMPTS):
        change = decide(order)
        if change is None:
            return order
        try:
            _stored(order, change, fence)
            return order
        except _RowChanged:
            order.refresh_from_db()
    raise IllegalTransition(f"order {order.client_order_id} kept changing while being written; nothing stored")


def _move_to(
    state: OrderState, *, kind: str, message: str = "", payload: object = None, also: dict | None = None
) -> Callable[[Order], _Change | None]:
    """A decision: move the order to ``state`` (with ``also``'s fields) if the state machine allows
    it from the state it is in; nothing when it does not (it moved on meanwhile)."""

    def decide(order: Order) -> _Change | None:
        before = OrderState(order.state)
        if not can_move(before, state):
            return None
        event = _event(order, kind, before=before.value, after=state.value, message=message, payload=payload)
        return _Change(values={"state": state.value, **(also or {})}, events=[event])

    return decide


def _note(kind: str, message: str, payload: object = None) -> Callable[[Order], _Change]:
    """A decision that changes nothing but leaves an event."""

    def decide(order: Order) -> _Change:
        return _Change(
            events=[_event(order, kind, before=order.state, after=order.state, message=message, payload=payload)]
        )

    return decide


def order_event(order: Order, kind: str, *, message: str = "", payload: object = None, fence: Fence = UNFENCED) -> None:
    """Store an event about ``order`` that changes nothing on it."""
    _stored(order, _note(kind, message, payload)(order), fence)


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
        submission_id=order.submission_id,
    )


def _answer(reported: BrokerOrder, kind: str) -> Callable[[Order], _Change]:
    """A decision: apply what the broker reports, state forward only, fills never backward.

    A stale answer (an earlier state than the one stored) is logged and ignored; one that
    contradicts the record (a filled order reported canceled) is logged as an error and the
    record kept, for a person to look at.
    """
    payload = {**_fields(reported), "raw": None}

    def decide(order: Order) -> _Change:
        current, new = OrderState(order.state), reported.state

        def note(event_kind: str, message: str) -> _Change:
            return _Change(
                events=[_event(order, event_kind, before=current, after=current, message=message, payload=payload)]
            )

        if not can_move(current, new):
            if is_stale(current, new):
                return note(kind, f"stale answer ({new}) ignored")
            logger.error(
                "broker contradicts order record",
                extra={"client_order_id": order.client_order_id, "stored": current.value, "reported": new.value},
            )
            return note(OrderEvent.Kind.ERROR, f"broker reported {new} after {current}; kept {current}")
        try:
            check_fill(order.filled_quantity, reported.filled_quantity, order.quantity)
        except IllegalTransition as error:
            return note(OrderEvent.Kind.ERROR, str(error))
        values = {
            "state": new.value,
            "filled_quantity": reported.filled_quantity,
            "filled_avg_price_usd": reported.filled_avg_price_usd,
            "broker_order_id": reported.broker_order_id or order.broker_order_id,
            "broker_status": reported.broker_status[:40],
            "reject_reason": reported.reject_reason or order.reject_reason,
        }
        event = _event(order, kind, before=current, after=new, message=reported.broker_status, payload=payload)
        return _Change(values=values, events=[event])

    return decide


def order_apply(
    order: Order, reported: BrokerOrder, *, kind: str = OrderEvent.Kind.RESPONSE, fence: Fence = UNFENCED
) -> Order:
    """Record what the broker reports (see `_answer`): the order and its event, together."""
    return _decided(order, _answer(reported, kind), fence=fence)


def _not_taken(error: BrokerError) -> Callable[[Order], _Change | None]:
    """The broker refused the send before taking it: back to planned, and not an attempt."""

    def decide(order: Order) -> _Change | None:
        if OrderState(order.state) != OrderState.SUBMITTING:
            return None
        message = f"not taken by the broker (not counted as an attempt): {error}"
        event = _event(order, OrderEvent.Kind.ERROR, before=order.state, after=OrderState.PLANNED, message=message)
        attempts = max(order.submit_attempts - 1, 0)
        # The broker holds nothing under the submission id: a fresh one is reserved for the next send.
        values = {"state": OrderState.PLANNED.value, "submit_attempts": attempts, "submission_id": ""}
        return _Change(values=values, events=[event])

    return decide


def _send_failed(error: BrokerError) -> Callable[[Order], _Change | None]:
    """A decision for a send that raised: rejected (the broker refused it), unknown (it may have
    taken effect: never assumed failed, looked up next) or back to planned (the broker did not take it)."""
    if error.permanent:
        return _move_to(
            OrderState.REJECTED,
            kind=OrderEvent.Kind.ERROR,
            message=str(error),
            also={"reject_reason": str(error)[:2000]},
        )
    if error.unknown:
        return _move_to(OrderState.UNKNOWN, kind=OrderEvent.Kind.ERROR, message=str(error))
    return _not_taken(error)


def _marked(request: OrderRequest) -> Callable[[Order], _Change | None]:
    """A decision: a planned order is being sent (one more attempt), on disk before the call."""

    def decide(order: Order) -> _Change | None:
        if OrderState(order.state) != OrderState.PLANNED:
            return None
        event = _event(order, OrderEvent.Kind.REQUEST, before=order.state, after="submitting", payload=_fields(request))
        values = {
            "state": OrderState.SUBMITTING.value,
            "submit_attempts": order.submit_attempts + 1,
            "submission_id": request.submission_id,
        }
        return _Change(values=values, events=[event])

    return decide


def order_submit(
    broker: Broker, order: Order, *, halted: Callable[[], str | None] = lambda: None, fence: Fence = UNFENCED
) -> Order:
    """Send ``order`` (planned, or in flight with an unknown outcome) so that it exists once.

    In-flight orders are looked up first and sent again only when confirmed absent. ``halted`` is
    read right before sending: a reason there (the kill switch) cancels the unsent order instead.
    """
    order.refresh_from_db()  # the stored state decides, never a stale copy
    state = OrderState(order.state)
    if state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        order, answer = order_resolve(broker, order, fence=fence)
        if answer != ABSENT:
            return order
    elif state != OrderState.PLANNED:
        return order
    reason = halted()
    if reason:
        return _decided(
            order, _move_to(OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=f"not sent: {reason}"), fence=fence
        )
    if order.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
        message = f"not sent again: the broker never took it in {order.submit_attempts} attempts"
        return _decided(order, _move_to(OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=message), fence=fence)
    if not order.submission_id:
        reserved = broker.reserve_submission_id(order_request(order))
        _decided(
            order, lambda o: _Change(values={"submission_id": reserved}) if not o.submission_id else None, fence=fence
        )
    request = order_request(order)
    _decided(order, _marked(request), fence=fence)
    if OrderState(order.state) != OrderState.SUBMITTING or order.submission_id != request.submission_id:
        return order  # another writer (a kill switch) got there first: nothing is sent
    try:
        reported = broker.submit_order(request)
    except BrokerError as error:
        order = _decided(order, _send_failed(error), fence=fence)
        if order.state == OrderState.UNKNOWN:
            order, _ = order_resolve(broker, order, fence=fence)
        return order
    order = order_apply(order, reported, fence=fence)
    logger.info("order sent", extra={"symbol": order.symbol, "side": order.side, "state": order.state})
    return order


def orders_submit(
    broker: Broker,
    orders: Sequence[Order],
    *,
    halted: Callable[[], str | None] = lambda: None,
    sent: Callable[[Order], None] = lambda order: None,
    fence: Fence = UNFENCED,
) -> list[Order]:
    """`order_submit` for each of ``orders``, one by one, each state stored before the next call
    (the orders as they end up, in the same order); ``sent(order)`` after each one's answer."""
    done = []
    for order in orders:
        with log_context(client_order_id=order.client_order_id):
            done.append(order_submit(broker, order, halted=halted, fence=fence))
        sent(done[-1])
    return done


def orders_send(
    broker: Broker,
    orders: Sequence[Order],
    *,
    halted: Callable[[], str | None] = lambda: None,
    written: Callable[[], None] = lambda: None,
    sent: Callable[[Order], None] = lambda order: None,
    fence: Fence = UNFENCED,
) -> list[Order]:
    """Send ``orders`` so that each exists once at the broker, the same way at every broker: the
    orders as they end up, in the same order; ``written()`` once the new ones are stored, before
    any is sent, and ``sent(order)`` after each one's answer is stored.

    New orders (not saved yet) are written before anything is sent, in one fenced transaction,
    with the broker's first call already marked on them (``submitting``, request events). The
    broker is called with `Broker.max_orders_per_call` orders at a time (Alpaca and IB one, the
    paper broker every order in one transaction of its own); each call's orders are marked before
    it and its answers stored before the next call, in one transaction each. The kill switch (``halted``) is read
    before each call: a reason there cancels the orders not sent. Orders stored before (a resumed
    run) go through `order_submit` one by one, since each may need looking up first. An
    `IntegrityError` (the new orders were written already) stores nothing; the caller reads them.
    """
    orders = list(orders)
    new = [order for order in orders if order.pk is None]
    done = {id(order): order for order in new}
    for order in orders:
        if order.pk is not None:
            done[id(order)] = order_submit(broker, order, halted=halted, fence=fence)
            sent(done[id(order)])
    size = max(broker.max_orders_per_call, 1)
    calls = [new[start : start + size] for start in range(0, len(new), size)]
    for number, call in enumerate(calls):
        if number == 0:
            requests = _written(broker, new, call, reason=halted(), fence=fence)
            written()
        else:
            requests = _marked_together(broker, call, reason=halted(), fence=fence)
        _answered(broker, call, requests, fence=fence)
        for order in call:
            sent(order)
    return [done[id(order)] for order in orders]


def _written(
    broker: Broker, new: list[Order], first: list[Order], *, reason: str | None, fence: Fence
) -> dict[int, OrderRequest]:
    """Write the ``new`` orders, the ``first`` call's marked as being sent (or every one canceled,
    unsent, when the kill switch gives a ``reason``); the requests to send, by order."""
    events: list[OrderEvent] = []
    requests: dict[int, OrderRequest] = {}
    for order in new if reason else first:
        if reason:
            change = _move_to(OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=f"not sent: {reason}")(order)
        else:
            request = replace(order_request(order), submission_id=broker.reserve_submission_id(order_request(order)))
            requests[id(order)] = request
            change = _marked(request)(order)
        for name, value in change.values.items():
            setattr(order, name, value)
        events += change.events
    with fence.atomic():
        Order.objects.bulk_create(new)  # the events find their orders' keys
        OrderEvent.objects.bulk_create(events)
    return requests


def _marked_together(broker: Broker, call: list[Order], *, reason: str | None, fence: Fence) -> dict[int, OrderRequest]:
    """Mark stored planned orders as being sent (or cancel them, unsent, for the kill switch's
    ``reason``), in one transaction; the requests to send, by order (none for one that changed
    meanwhile)."""
    requests: dict[int, OrderRequest] = {}
    changes = []
    for order in call:
        if OrderState(order.state) != OrderState.PLANNED:
            continue
        if reason:
            decide = _move_to(OrderState.CANCELED, kind=OrderEvent.Kind.STATE, message=f"not sent: {reason}")
        else:
            reserved = order.submission_id or broker.reserve_submission_id(order_request(order))
            requests[id(order)] = replace(order_request(order), submission_id=reserved)
            decide = _marked(requests[id(order)])
        changes.append((order, decide))
    _decided_together(changes, fence=fence)
    # Another writer (a kill switch) may have got to an order first: it is not sent.
    return {
        id(order): requests[id(order)]
        for order in call
        if id(order) in requests
        and order.state == OrderState.SUBMITTING
        and order.submission_id == requests[id(order)].submission_id
    }


def _answered(broker: Broker, call: list[Order], requests: dict[int, OrderRequest], *, fence: Fence) -> None:
    """Send the marked orders of ``call`` in one broker call and store the answers together; an
    order whose outcome is unknown is looked up at once."""
    marked = [order for order in call if id(order) in requests]
    if not marked:
        return
    try:
        answers: list[BrokerOrder | BrokerError] = broker.submit_orders([requests[id(o)] for o in marked])
    except BrokerError as error:  # the whole call failed: each order's send did
        answers = [error] * len(marked)
    changes = [
        (order, _answer(answer, OrderEvent.Kind.RESPONSE) if isinstance(answer, BrokerOrder) else _send_failed(answer))
        for order, answer in zip(marked, answers, strict=True)
    ]
    _decided_together(changes, fence=fence)
    for order in marked:
        if order.state == OrderState.UNKNOWN:
            order_resolve(broker, order, fence=fence)
        logger.info("order sent", extra={"client_order_id": order.client_order_id, "state": order.state})


def _decided_together(changes: list[tuple[Order, Callable[[Order], _Change | None]]], *, fence: Fence) -> None:
    """`_decided` for many orders in one fenced transaction, their events in one insert: each
    change is stored if the order's row is still the version read (a conditional update per row:
    Django's bulk update of a few rows costs more than the rows' own updates); one whose row
    changed meanwhile is read again and decided again on its own."""
    stale = []
    with fence.atomic():
        now = timezone.now()
        events = []
        for order, decide in changes:
            change = decide(order)
            if change is None:
                continue
            if _row_written(order, change, now):
                events += change.events
            else:
                stale.append((order, decide))
        OrderEvent.objects.bulk_create(events)
    for order, decide in stale:
        order.refresh_from_db()
        _decided(order, decide, fence=fence)


def order_resolve(
    broker: Broker, order: Order, *, fence: Fence = UNFENCED, sleep: Callable[[float], None] = time.sleep
) -> tuple[Order, str]:
    """Find out whether the broker has ``order`` (in flight, outcome unknown):
    (order, `FOUND` | `ABSENT` | `LOOKUP_FAILED`).

    Found: its state is recorded. Absent only when both witnesses say so: `Broker.get_order`, then
    after `Broker.settlement_delay_s` the listing `Broker.orders_since`; the order goes back to
    planned and is resent under the same submission id (see `_absent`). A failed read leaves it as
    it was: nothing may be resent on its account.
    """
    try:
        reported = broker.get_order(order.client_order_id)
    except BrokerError as error:
        order_event(order, OrderEvent.Kind.ERROR, message=f"lookup failed: {error}", fence=fence)
        return order, LOOKUP_FAILED
    if reported is not None:
        return order_apply(order, reported, kind=OrderEvent.Kind.LOOKUP, fence=fence), FOUND
    order_event(order, OrderEvent.Kind.LOOKUP, message="broker has no such order (first of two reads)", fence=fence)
    delay = broker.settlement_delay_s
    if delay > 0:
        sleep(delay)
    try:
        listed = broker.orders_since(order.created_at - _LISTING_MARGIN)
    except BrokerError as error:
        order_event(order, OrderEvent.Kind.ERROR, message=f"order listing failed: {error}", fence=fence)
        return order, LOOKUP_FAILED
    found = [o for o in listed if o.client_order_id == order.client_order_id]
    if found:
        return order_apply(order, found[0], kind=OrderEvent.Kind.LOOKUP, fence=fence), FOUND
    message = f"absent: neither the lookup nor, {delay:g} s later, the order list has it; it may be sent again"
    order = _decided(order, _absent(message), fence=fence)
    return order, ABSENT if order.state == OrderState.PLANNED else FOUND


def _absent(message: str) -> Callable[[Order], _Change | None]:
    """A decision: the order never arrived; back to planned.

    Its submission id stays for the next send: should the order have arrived after all, the broker
    refuses the id twice. After a second send under it is confirmed absent too, the id is given up
    (a broker that keeps refusing an id nobody can see holds it for another order)."""

    def decide(order: Order) -> _Change | None:
        if OrderState(order.state) not in (OrderState.SUBMITTING, OrderState.UNKNOWN):
            return None
        event = _event(order, OrderEvent.Kind.LOOKUP, before=order.state, after=OrderState.PLANNED, message=message)
        values: dict[str, object] = {"state": OrderState.PLANNED.value}
        if order.submit_attempts >= _SENDS_PER_SUBMISSION_ID:
            values["submission_id"] = ""
        return _Change(values=values, events=[event])

    return decide


def order_refresh(broker: Broker, order: Order, *, fence: Fence = UNFENCED) -> Order:
    """The broker's latest word on an order it may hold."""
    if OrderState(order.state) in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        return order_resolve(broker, order, fence=fence)[0]
    if OrderState(order.state) not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
        return order
    try:
        reported = broker.get_order(order.client_order_id)
    except BrokerError as error:
        logger.warning("order refresh failed", extra={"client_order_id": order.client_order_id, "error": str(error)})
        return order
    if reported is None:
        order_event(order, OrderEvent.Kind.ERROR, message="broker no longer reports this order", fence=fence)
        return order
    if (reported.state.value, reported.filled_quantity) != (order.state, order.filled_quantity):
        order_apply(order, reported, kind=OrderEvent.Kind.LOOKUP, fence=fence)
    return order


def orders_wait(
    broker: Broker,
    orders: Iterable[Order],
    *,
    timeout_s: float,
    poll_s: float,
    fence: Fence = UNFENCED,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Order]:
    """Poll until no order is at the broker in a non-final state, or ``timeout_s`` passes; the
    orders as last seen (those found absent are back to planned)."""
    orders = list(orders)
    deadline = clock() + timeout_s
    while True:
        orders = [order_refresh(broker, o, fence=fence) if o.state in IN_FLIGHT else o for o in orders]
        if not any(o.state in IN_FLIGHT for o in orders) or clock() >= deadline:
            return orders
        sleep(poll_s)


def order_cancel(broker: Broker, order: Order, *, reason: str, fence: Fence = UNFENCED, leased: bool = True) -> Order:
    """Cancel: an order never sent (or confirmed absent) is canceled here; one at the broker is
    asked to cancel there; one whose outcome is still unknown is looked up first.

    ``leased`` False (the kill switch, holding no execution lease): an order whose send may still
    be on its way is only looked up, never declared absent, since its executor may be sending it;
    the executor resolves it once it sees the halt."""
    if OrderState(order.state) in (OrderState.SUBMITTING, OrderState.UNKNOWN):
        if not leased:
            try:
                reported = broker.get_order(order.client_order_id)
            except BrokerError as error:
                order_event(order, OrderEvent.Kind.ERROR, message=f"cancel: lookup failed: {error}", fence=fence)
                return order
            if reported is None:
                order_event(
                    order, OrderEvent.Kind.CANCEL, message=f"{reason}: not at the broker yet; its executor ends it"
                )
                return order
            order = order_apply(order, reported, kind=OrderEvent.Kind.LOOKUP, fence=fence)
        else:
            order, _ = order_resolve(broker, order, fence=fence)
    state = OrderState(order.state)
    if state == OrderState.PLANNED:
        return _decided(order, _move_to(OrderState.CANCELED, kind=OrderEvent.Kind.CANCEL, message=reason), fence=fence)
    if state.terminal or state not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
        return order
    try:
        broker.cancel_order(order.client_order_id)
    except BrokerError as error:
        order_event(order, OrderEvent.Kind.ERROR, message=f"cancel failed: {error}", fence=fence)
        return order
    order_event(order, OrderEvent.Kind.CANCEL, message=reason, fence=fence)
    return order_refresh(broker, order, fence=fence)
