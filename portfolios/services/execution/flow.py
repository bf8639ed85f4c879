"""Execute a frozen plan at the portfolio's broker, exactly once, resumable after a crash.

Steps (`RebalanceRun.ExecutionStep`, one method of `_Execution` each), each stored on the run
(``execution_step``) before the next begins:

    checked      every pre-trade control passed (`checks`); nothing was written before
    sells_sent   one `Order` row per planned sell (written before any broker call), each sent
    sells_done   every sell terminal (bounded wait; otherwise the run waits to be resumed), and
                 the buys re-sized to the cash the broker then reports (`sizing`), stored with it
    buys_sent    buys written (re-sized again when resumed from here), sent
    buys_done    every buy terminal
    reconciled   positions compared with the plan, holdings and cash synced from the broker

A side whose orders are all answered for good by the broker's reply (the paper broker fills at
once) goes from the step before straight to its "done" step. Every broker gets its orders the
same way (`brokers.services.orders.orders_send`): a side's order rows are written before any of
them is sent.

Resuming (calling `execute_run` again on an executing run) first resolves every order whose
outcome is unknown by looking it up with its client order id, then continues from the stored
step. A frozen plan is never re-planned; orders are never re-created or sent twice (one row
per planned trade, a deterministic client order id, a resend only after the broker reported
the order absent twice; `brokers.services.orders`). The run's lease keeps a second executor out
and fences this one (`lease`): every write and every broker call checks it first.

A kill switch turned on while the run executes (even if off again by the time the executor
looks) ends the run stopped: its unsent orders are canceled, those at the broker asked to
cancel, and a stopped run is never resumed; its portfolio is planned again from what it holds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Prefetch
from django.utils import timezone

from brokers.base import Broker, BrokerError, OrderState, OrderType
from brokers.fencing import Fence, FencedBroker, LeaseLost
from brokers.models import Order
from brokers.services.accounts import broker_for
from brokers.services.controls import trading_halt_reason
from brokers.services.orders import order_cancel, order_submit, orders_send, orders_wait
from brokers.states import IN_FLIGHT
from ground import metrics
from ground.logcontext import log_context
from portfolios import events
from portfolios.models import PlannedTrade, RebalanceRun
from portfolios.services.sync import SyncError, sync_from_broker

from .checks import Check, CheckFailed, check_broker, check_gates
from .lease import (
    ExecutionBusy,
    LeaseTooShort,
    RunLease,
    lease_check,
    lease_claim,
    lease_release,
    lease_store,
    new_owner,
)
from .sizing import BuyLine, buys_resize

logger = logging.getLogger(__name__)
Status = RebalanceRun.Status
SELL, BUY = PlannedTrade.Side.SELL, PlannedTrade.Side.BUY
Step = RebalanceRun.ExecutionStep


class ExecutionRefused(Exception):
    """The run cannot be executed at all (planning failed, no broker account)."""


@dataclass
class ExecutionResult:
    """What an `execute_run` call did. ``waiting``: orders are still open; call again later."""

    run: RebalanceRun
    submitted: bool
    checks: list[dict] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    would_send: list[dict] = field(default_factory=list)
    waiting: bool = False
    message: str = ""


def checkpoint(run: RebalanceRun, step: str) -> None:
    """Called after every stored step and every order sent; tests inject crashes here."""


def execute_run(*, run: RebalanceRun, submit: bool = False, approved: bool = False) -> ExecutionResult:
    """Execute ``run`` (``submit``), or only check it and list the orders it would send (the default).

    ``approved``: the owner (or an operator on the command line) approved this plan; without it
    only portfolios in ``auto`` mode are executed. Failed checks stop the run before any order
    (status ``execution_failed``, the reason in ``error``, the owner notified).
    """
    run = (
        RebalanceRun.objects.select_related("portfolio__broker_account", "portfolio__owner")
        .prefetch_related(
            Prefetch("trades", queryset=PlannedTrade.objects.select_related("instrument").order_by("sequence"))
        )
        .get(pk=run.pk)
    )
    with log_context(run_id=run.pk, portfolio_id=run.portfolio_id, user_id=run.portfolio.owner_id):
        try:
            return _execute_run(run, list(run.trades.all()), submit=submit, approved=approved)
        except LeaseLost as lost:
            # Another executor took the run over (this one stalled past its lease): it carries on.
            logger.warning("execution lease lost; stopped with nothing more stored or sent", extra={"run_id": run.pk})
            raise ExecutionBusy(str(lost)) from lost


def _execute_run(run: RebalanceRun, trades: list[PlannedTrade], *, submit: bool, approved: bool) -> ExecutionResult:
    if run.superseded_at is not None:
        raise ExecutionRefused(f"run {run.pk} was superseded by run {run.superseded_by_id}; it is never executed")
    if run.status == Status.FAILED:
        raise ExecutionRefused(f"run {run.pk}: planning failed ({run.error}); there is no plan to execute")
    if run.portfolio.broker_account is None:
        raise ExecutionRefused(f"run {run.pk}: portfolio {run.portfolio.name!r} has no broker account")
    if run.status in (Status.NO_ACTION, Status.EXECUTED):
        what = "nothing to trade" if run.status == Status.NO_ACTION else "already executed"
        return ExecutionResult(run=run, submitted=False, orders=list(run.orders.all()), message=f"run {run.pk}: {what}")
    if not submit:
        return _dry_run(run, trades, approved=approved)
    owner = new_owner()
    lease_claim(run, owner)
    try:
        checks: list[Check] = []
        if run.execution_step == "":
            # The gates need no broker (and an account without credentials cannot open one).
            try:
                checks = check_gates(run, trades, approved=approved)
            except CheckFailed as failed:
                return _stop_before_orders(run, failed.check)
        try:
            adapter = broker_for(run.portfolio.broker_account, options=_adapter_options(run))
        except BrokerError as error:
            if run.execution_step == "":
                return _stop_before_orders(run, Check("broker", False, str(error)))
            return ExecutionResult(run=run, submitted=True, waiting=True, message=f"broker unavailable: {error}")
        fence = RunLease(run)
        with FencedBroker(adapter, fence) as broker:
            try:
                lease_check(max_call_s=adapter.max_call_s, settlement_delay_s=adapter.settlement_delay_s)
            except LeaseTooShort as error:
                raise ExecutionRefused(str(error)) from error
            return _execute(run, trades, broker, fence, checks)
    finally:
        lease_release(run, owner)


def _adapter_options(run: RebalanceRun) -> dict:
    """The paper broker charges the portfolio's own cost model (commission, spread + impact)."""
    portfolio = run.portfolio
    if portfolio.broker_account.kind != "paper":
        return {}
    return {
        "commission_per_trade_usd": portfolio.commission_per_trade_usd,
        "slippage_bps": portfolio.spread_bps + portfolio.impact_bps,
    }


def _dry_run(run: RebalanceRun, trades: list[PlannedTrade], *, approved: bool) -> ExecutionResult:
    checks: list[Check] = []
    message = "dry run: nothing sent"
    try:
        checks += check_gates(run, trades, approved=approved)
        with broker_for(run.portfolio.broker_account, options=_adapter_options(run)) as broker:
            checks += check_broker(run, trades, broker, now=timezone.now())
    except CheckFailed as failed:
        checks.append(failed.check)
        message = f"dry run: would stop at {failed.check.name}: {failed.check.detail}"
    would_send = [
        {
            "side": t.side,
            "symbol": t.instrument.symbol,
            "quantity": str(t.quantity),
            "estimated_price": str(t.estimated_price),
        }
        for t in trades
    ]
    return ExecutionResult(
        run=run, submitted=False, checks=[c.as_dict() for c in checks], would_send=would_send, message=message
    )


@dataclass(frozen=True)
class _Side:
    side: str
    sent: str  # its steps (`Step`)
    done: str


SIDES = (_Side(SELL, Step.SELLS_SENT, Step.SELLS_DONE), _Side(BUY, Step.BUYS_SENT, Step.BUYS_DONE))
ORDER = list(Step)


def _execute(
    run: RebalanceRun, trades: list[PlannedTrade], broker: Broker, fence: Fence, checks: list[Check]
) -> ExecutionResult:
    """Take the run from its stored step to the end, one step after the other (`Step`): an answer
    before the end when the run stops or waits."""
    execution = _Execution(run, trades, broker, fence)
    if run.execution_step == Step.NOT_STARTED:
        stopped = execution.check(checks)
        if stopped is not None:
            return stopped
    elif run.status == Status.EXECUTION_FAILED:
        # Stopped after orders were sent (the kill switch): never resumed, only its orders settled.
        return _stopped_settle(run, broker, fence)
    for side in SIDES:
        if ORDER.index(run.execution_step) < ORDER.index(side.done) and side.side in execution.sides:
            ended = execution.trade(side)
            if ended is not None:
                return ended
    return execution.reconcile()


@dataclass
class _Execution:
    """What the steps of one `execute_run` call share: the run and its plan, the broker and the
    lease's fence, and what earlier steps of this call found."""

    run: RebalanceRun
    trades: list[PlannedTrade]
    broker: Broker
    fence: Fence
    # From the first step, this call writes every order of the run (none is written before
    # "checked"; the lease keeps others out): there are none to look for.
    first_call: bool = field(init=False)
    sized: dict[str, Decimal] | None = None  # the buys' quantities, when sized by this call
    sent: dict[str, list[Order]] = field(default_factory=lambda: {SELL: [], BUY: []})  # as this call stored them

    def __post_init__(self) -> None:
        self.first_call = self.run.execution_step == Step.NOT_STARTED

    @property
    def sides(self) -> set[str]:
        """The sides the plan trades (a side without planned trades has no orders)."""
        return {t.side for t in self.trades}

    def halted(self) -> str | None:
        return trading_halt_reason(user_id=self.run.portfolio.owner_id, since=_started_at(self.run))

    def check(self, checks: list[Check]) -> ExecutionResult | None:
        """`Step.CHECKED`: the broker's checks after the gates; the run stopped when one fails."""
        run = self.run
        try:
            checks = checks + check_broker(run, self.trades, self.broker, now=timezone.now())
        except CheckFailed as failed:
            return _stop_before_orders(run, failed.check)
        _store(
            run,
            Step.CHECKED,
            status=Status.EXECUTING,
            error="",
            execution={"checks": [c.as_dict() for c in checks], "started_at": timezone.now().isoformat()},
        )
        checkpoint(run, Step.CHECKED)
        return None

    def trade(self, side: _Side) -> ExecutionResult | None:
        """A side's `sent` and `done` steps: its orders written and sent, waited for, and the
        side stored done; an answer when the call ends here (stopped, or waiting)."""
        run, broker, fence = self.run, self.broker, self.fence
        halt = self.halted()
        if halt:
            return _stop_after_orders(run, broker, fence, halt)
        try:
            orders = _orders_sent(
                run,
                self.trades,
                broker,
                fence,
                side.side,
                written=not self.first_call,
                sized=self.sized,
                halted=self.halted,
            )
        except _Retry as retry:
            return ExecutionResult(
                run=run, submitted=True, orders=list(run.orders.all()), waiting=True, message=str(retry)
            )
        if run.execution_step != side.done:
            if run.execution_step != side.sent and orders:  # a side without orders goes straight to done
                # Answered for good (a broker that fills at once): "done" is stored next, and a
                # resume from the step before finds every order answered and sends nothing.
                if not all(o.terminal for o in orders):
                    _store(run, side.sent)
                checkpoint(run, side.sent)
            orders = _wait(broker, fence, orders, self.halted)
        # The last side done, every order terminal: nothing is left for the kill switch to stop.
        finished = (side.side == BUY or BUY not in self.sides) and all(o.terminal for o in orders)
        halt = None if finished else self.halted()
        if halt:
            return _stop_after_orders(run, broker, fence, halt)
        if not all(o.terminal for o in orders):
            open_ = [f"{o.symbol} {o.state}" for o in orders if not o.terminal]
            message = f"waiting for {len(open_)} order(s) ({', '.join(open_)}); execute again to resume"
            _note_waiting(run, orders, message)
            return ExecutionResult(
                run=run, submitted=True, orders=list(run.orders.all()), waiting=True, message=message
            )
        if run.execution_step != side.done:
            self.side_done(side)
        checkpoint(run, side.done)
        self.sent[side.side] = orders
        return None

    def side_done(self, side: _Side) -> None:
        """Store the side's `done` step: after the sells (with buys to come), with the buys
        re-sized to the cash the sells left (one write for both)."""
        buys = [t for t in self.trades if t.side == BUY]
        execution = None
        if side.side == SELL and buys:
            with contextlib.suppress(_Retry):  # the buy side reads the account again, and waits if it cannot
                self.sized, execution = _buys_sized(self.run, self.broker, buys)
        _store(self.run, side.done, execution=execution)

    def reconcile(self) -> ExecutionResult:
        """`Step.RECONCILED`, with the orders as this call stored them when it sent every side."""
        sent = self.sent
        orders = sorted(sent[SELL] + sent[BUY], key=lambda o: o.pk) if all(sent[s] for s in self.sides) else None
        return _reconcile(self.run, self.trades, self.broker, self.fence, orders)


def _store(
    run: RebalanceRun,
    step: str,
    *,
    status: str | None = None,
    error: str | None = None,
    execution: dict | None = None,
    release: bool = False,
) -> None:
    """Store ``step`` (and what else is given) and renew the lease (or ``release`` it), as the
    lease's holder only."""
    fields: dict[str, object] = {"execution_step": step}
    if status is not None:
        fields["status"] = status
    if error is not None:
        fields["error"] = error
    if execution is not None:
        fields["execution"] = {**run.execution, **execution}
    lease_store(run, release=release, **fields)


def _orders_sent(
    run: RebalanceRun,
    trades: list[PlannedTrade],
    broker: Broker,
    fence: Fence,
    side: str,
    *,
    written: bool,
    sized: dict[str, Decimal] | None,
    halted: Callable[[], str | None],
) -> list[Order]:
    """The run's orders of one side, written if they do not exist yet (``written`` False: the
    caller knows they do not), then sent (those not sent yet): as stored. ``sized``: the buys'
    quantities as this call sized and stored them (else the buys are sized here). Every broker
    the same way (`orders_send`): the records are written before anything is sent."""
    orders, new = _orders_for(run, trades, broker, side, written=written, sized=sized)

    def send(orders: list[Order]) -> list[Order]:
        return orders_send(
            broker,
            orders,
            halted=halted,
            written=lambda: checkpoint(run, f"{side}s_written"),
            sent=lambda order: checkpoint(run, f"sent {order.client_order_id}"),
            fence=fence,
        )

    try:
        return send(orders)
    except IntegrityError:
        if not new:
            raise
        # Written by an earlier attempt that crashed before storing its step: send those rows.
        return send(list(run.orders.filter(side=side).order_by("id")))


def _orders_for(
    run: RebalanceRun,
    trades: list[PlannedTrade],
    broker: Broker,
    side: str,
    *,
    written: bool,
    sized: dict[str, Decimal] | None,
) -> tuple[list[Order], bool]:
    """The run's orders of one side as stored, or new ones (not saved) if there are none yet
    (``written`` False: the caller knows there are none); and whether they are new."""
    existing = list(run.orders.filter(side=side).order_by("id")) if written else []
    trades = [trade for trade in trades if trade.side == side]
    if existing or not trades:
        return existing, False
    quantities = {t.instrument.symbol: t.quantity for t in trades}
    if side == BUY and sized is not None:
        quantities = sized
    elif side == BUY:
        quantities, execution = _buys_sized(run, broker, trades)
        _store(run, run.execution_step, execution=execution)
    account = run.portfolio.broker_account
    collar = Decimal(str(settings.PRICE_COLLAR_BPS)) / Decimal(10_000)
    rows = []
    for trade in trades:
        quantity = quantities[trade.instrument.symbol]
        if quantity <= 0:
            continue
        fractional = quantity != quantity.to_integral_value()
        # Fractional quantities go as market day orders: brokers accept no other kind for them.
        limit = run.portfolio.order_type == OrderType.LIMIT and not fractional
        price = trade.estimated_price
        rows.append(
            Order(
                account=account,
                run=run,
                planned_trade=trade,
                client_order_id=f"{account.order_prefix}-{run.pk}-{trade.sequence}",
                symbol=trade.instrument.symbol,
                side=side,
                quantity=quantity,
                order_type=OrderType.LIMIT if limit else OrderType.MARKET,
                limit_price_usd=(price * (1 + collar if side == BUY else 1 - collar)).quantize(Decimal("0.01"))
                if limit
                else None,
                estimated_price_usd=price,
            )
        )
    return rows, bool(rows)


def _buys_sized(
    run: RebalanceRun, broker: Broker, trades: list[PlannedTrade]
) -> tuple[dict[str, Decimal], dict[str, dict]]:
    """The buys' quantities re-sized to the cash the broker reports, and the record to store."""
    portfolio = run.portfolio
    try:
        info = broker.account()
    except BrokerError as error:
        raise _Retry(f"cannot read the account to size the buys: {error}") from error
    buffer = (info.equity_usd * portfolio.cash_buffer_weight).quantize(Decimal("0.01"))
    available = min(info.cash_usd, info.buying_power_usd) - buffer
    fractionable = run.snapshot.get("fractionable", {})
    # The cash buffer (kept out of `available`) is the room for buy prices above the estimate.
    lines = [
        BuyLine(
            symbol=t.instrument.symbol,
            quantity=t.quantity,
            price_usd=t.estimated_price,
            whole=not (
                portfolio.fractional_shares and fractionable.get(t.instrument.symbol, t.instrument.fractionable)
            ),
        )
        for t in trades
    ]
    rate = (portfolio.spread_bps + portfolio.impact_bps) / Decimal(10_000)
    sizing = buys_resize(
        lines,
        available_usd=max(available, Decimal(0)),
        rate=rate,
        commission_usd=portfolio.commission_per_trade_usd,
        min_trade_usd=portfolio.min_trade_usd,
    )
    return sizing.quantities, {"buys": {**sizing.as_dict(), "cash_buffer_usd": str(buffer)}}


def _waiting(run: RebalanceRun, message: str) -> ExecutionResult:
    """The answer of a call that leaves the run waiting (to be resumed) with its orders as stored."""
    return ExecutionResult(run=run, submitted=True, orders=list(run.orders.all()), waiting=True, message=message)


class _Retry(Exception):
    """A step could not finish for a transient reason; the run stays executing."""


def _wait(broker: Broker, fence: Fence, orders: list[Order], halted: Callable[[], str | None]) -> list[Order]:
    def waited(orders: list[Order]) -> list[Order]:
        return orders_wait(
            broker,
            orders,
            timeout_s=settings.EXECUTION_WAIT_SECONDS,
            poll_s=settings.EXECUTION_POLL_SECONDS,
            fence=fence,
        )

    orders = waited(orders)
    # Orders the broker never took (refused before looking, or confirmed absent) are sent once
    # more, then waited for; those still not taken leave the run waiting to be resumed.
    absent = [o for o in orders if o.state == OrderState.PLANNED]
    if absent:
        resent = {o.pk: order_submit(broker, o, halted=halted, fence=fence) for o in absent}
        orders = waited([resent.get(o.pk, o) for o in orders])
    return orders


def _note_waiting(run: RebalanceRun, orders: list[Order], message: str) -> None:
    """Store why the run waits; tell the owner about orders of unknown outcome once per episode
    (a new set of them), not on every resume."""
    unknown = sorted(o.client_order_id for o in orders if o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN))
    notified = run.execution.get("unknown_notified", [])
    _store(run, run.execution_step, execution={"waiting": message, "unknown_notified": unknown})
    if unknown and unknown != notified:
        events.emit(events.orders_unknown, portfolio=run.portfolio, run=run, client_order_ids=unknown)


def _stop_before_orders(run: RebalanceRun, check: Check) -> ExecutionResult:
    message = f"{check.name}: {check.detail}"
    _store(
        run,
        Step.NOT_STARTED,
        status=Status.EXECUTION_FAILED,
        error=message,
        execution={"checks": [check.as_dict()], "stopped_at": timezone.now().isoformat()},
    )
    logger.warning("execution stopped by a pre-trade check", extra={"run_id": run.pk, "check": check.name})
    events.emit(
        events.rebalancing_failed,
        portfolio=run.portfolio,
        trading_date=run.trading_date,
        run=run,
        reason=f"No order was sent. {message}",
    )
    return ExecutionResult(run=run, submitted=False, checks=[check.as_dict()], message=message)


def _stop_after_orders(run: RebalanceRun, broker: Broker, fence: Fence, reason: str) -> ExecutionResult:
    """End the run stopped (the kill switch always ends a run): unsent orders canceled, those at
    the broker asked to cancel, those of unknown outcome resolved; any left unresolved are named."""
    unresolved = _orders_ended(run, broker, fence, reason)
    _store(
        run,
        run.execution_step,
        status=Status.EXECUTION_FAILED,
        error=f"stopped: {reason}",
        execution={"stopped_at": timezone.now().isoformat(), "unresolved": unresolved},
    )
    _sync(run, broker, fence)
    events.emit(
        events.rebalancing_failed,
        portfolio=run.portfolio,
        trading_date=run.trading_date,
        run=run,
        reason=f"Execution stopped: {reason}",
    )
    return ExecutionResult(run=run, submitted=True, orders=list(run.orders.all()), message=f"stopped: {reason}")


def _orders_ended(run: RebalanceRun, broker: Broker, fence: Fence, reason: str) -> list[str]:
    """Cancel what ``run`` still has open (see `_stop_after_orders`); the orders left unresolved."""
    states = [OrderState.PLANNED.value, *(state.value for state in IN_FLIGHT)]
    unresolved = []
    for order in run.orders.filter(state__in=states):
        order = order_cancel(broker, order, reason=reason, fence=fence)
        if order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
            unresolved.append(f"{order.side} {order.symbol} ({order.client_order_id}): {order.state}")
    return unresolved


def _stopped_settle(run: RebalanceRun, broker: Broker, fence: Fence) -> ExecutionResult:
    """A run stopped after sending orders is not resumed: it only settles what it left open."""
    unresolved = _orders_ended(run, broker, fence, reason=run.error or "stopped")
    _store(run, run.execution_step, execution={"unresolved": unresolved})
    _sync(run, broker, fence)
    message = f"run {run.pk} was stopped ({run.error}); it is not resumed: plan the portfolio again"
    return ExecutionResult(run=run, submitted=True, orders=list(run.orders.all()), message=message)


def _started_at(run: RebalanceRun) -> datetime | None:
    started = run.execution.get("started_at")
    return datetime.fromisoformat(started) if started else None


def _reconcile(
    run: RebalanceRun, trades: list[PlannedTrade], broker: Broker, fence: Fence, orders: list[Order] | None
) -> ExecutionResult:
    """Compare the broker's positions with the plan's (snapshot + fills) and sync the portfolio.
    ``orders``: every order of the run as just stored, or None to read them."""
    expected = {s: Decimal(h["quantity"]) for s, h in run.snapshot.get("holdings", {}).items()}
    orders = list(run.orders.all()) if orders is None else orders
    for order in orders:
        change = order.filled_quantity if order.side == BUY else -order.filled_quantity
        expected[order.symbol] = expected.get(order.symbol, Decimal(0)) + change
    planned = {s: Decimal(h["quantity"]) for s, h in run.snapshot.get("holdings", {}).items()}
    for trade in trades:
        sign = 1 if trade.side == BUY else -1
        planned[trade.instrument.symbol] = planned.get(trade.instrument.symbol, Decimal(0)) + sign * trade.quantity
    try:
        read = broker.positions_and_account()
    except BrokerError as error:
        return ExecutionResult(run=run, submitted=True, orders=orders, waiting=True, message=f"reconcile: {error}")
    actual = {p.symbol.upper(): p.quantity for p in read[0]}
    symbols = sorted(set(expected) | set(actual) | set(planned))
    differences = [
        {
            "symbol": s,
            "planned": str(planned.get(s, Decimal(0))),
            "filled": str(expected.get(s, Decimal(0))),
            "broker": str(actual.get(s, Decimal(0))),
        }
        for s in symbols
        if not (planned.get(s, Decimal(0)) == expected.get(s, Decimal(0)) == actual.get(s, Decimal(0)))
    ]
    not_filled = [
        f"{o.side} {o.symbol}: {o.state}" + (f" ({o.reject_reason})" if o.reject_reason else "")
        for o in orders
        if o.state != OrderState.FILLED
    ]
    resized = run.execution.get("buys", {}).get("factor", "1") != "1"
    _sync(run, broker, fence, read=read)  # the holdings become what was just compared
    _store(
        run,
        Step.RECONCILED,
        release=True,  # the last step: the lease goes with it
        status=Status.EXECUTED,
        execution={
            "reconciliation": {"differences": differences, "not_filled": not_filled, "buys_resized": resized},
            "finished_at": timezone.now().isoformat(),
        },
    )
    checkpoint(run, Step.RECONCILED)
    for order in orders:
        if order.filled_quantity > 0:
            metrics.trades_executed(side=order.side, broker=run.portfolio.broker_account.kind)
    events.emit(events.rebalancing_completed, portfolio=run.portfolio, run=run)
    logger.info("run executed", extra={"run_id": run.pk, "orders": len(orders), "differences": len(differences)})
    return ExecutionResult(run=run, submitted=True, orders=orders, message="executed")


def _sync(run: RebalanceRun, broker: Broker, fence: Fence, *, read=None) -> None:
    try:
        with fence.atomic():  # holdings written from a stale read never land
            sync_from_broker(portfolio=run.portfolio, run=run, broker=broker, read=read)
    except SyncError as error:
        _store(run, run.execution_step, execution={"sync_error": str(error)})


__all__ = ["ExecutionBusy", "ExecutionRefused", "ExecutionResult", "checkpoint", "execute_run"]
