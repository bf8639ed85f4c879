"""The order state machine under any sequence of broker answers (hypothesis, stateful): states
only move forward, terminal states never change, fills never decrease nor exceed the order, and
every answer leaves an event."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from brokers.base import BROKER_STATES, BrokerOrder, OrderState, Side
from brokers.models import Order
from brokers.services.accounts import broker_account_create
from brokers.services.orders import order_apply
from brokers.states import ALLOWED, can_move, is_stale
from portfolios.models import RebalanceRun
from portfolios.tests.factories import make_portfolio, make_user

QUANTITY = Decimal(10)
# Progress along the main path; unknown and submitting share a rank (broker answers never lead back).
RANK = {
    OrderState.PLANNED: 0,
    OrderState.SUBMITTING: 1,
    OrderState.UNKNOWN: 1,
    OrderState.NEW: 2,
    OrderState.PARTIALLY_FILLED: 3,
    **{state: 4 for state in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED)},
}


def test_every_state_has_its_successors_and_terminal_states_have_none():
    assert set(ALLOWED) == set(OrderState)
    assert all(not ALLOWED[state] for state in OrderState if state.terminal)
    assert can_move(OrderState.UNKNOWN, OrderState.PLANNED)  # confirmed absent: may be sent again
    assert not can_move(OrderState.UNKNOWN, OrderState.SUBMITTING)  # never resent without that confirmation
    assert not can_move(OrderState.FILLED, OrderState.CANCELED)
    assert is_stale(OrderState.FILLED, OrderState.NEW) and not is_stale(OrderState.FILLED, OrderState.CANCELED)


class OrderLife(RuleBasedStateMachine):
    """Random broker answers applied to one order at a time."""

    context: dict = {}

    @initialize()
    def new_order(self):
        ctx = OrderLife.context
        ctx["count"] = ctx.get("count", 0) + 1
        self.order = Order.objects.create(
            account=ctx["account"],
            run=ctx["run"],
            client_order_id=f"sm-{ctx['count']}",
            symbol="SPY",
            side="buy",
            quantity=QUANTITY,
            estimated_price_usd=Decimal(100),
            state=OrderState.SUBMITTING.value,
        )
        self.history = [OrderState.SUBMITTING]
        self.fills = [Decimal(0)]
        self.events = 0

    @rule(
        state=st.sampled_from(sorted(BROKER_STATES)),
        filled=st.integers(min_value=0, max_value=12).map(Decimal),
    )
    def broker_answers(self, state, filled):
        if state == OrderState.FILLED:
            filled = QUANTITY if filled <= QUANTITY else filled
        reported = BrokerOrder(
            client_order_id=self.order.client_order_id,
            broker_order_id="b-1",
            symbol="SPY",
            side=Side.BUY,
            state=state,
            quantity=QUANTITY,
            notional_usd=None,
            filled_quantity=filled,
            filled_avg_price_usd=Decimal(100) if filled else None,
        )
        order_apply(self.order, reported)
        self.order.refresh_from_db()
        self.events += 1
        self.history.append(OrderState(self.order.state))
        self.fills.append(self.order.filled_quantity)

    @invariant()
    def only_forward(self):
        ranks = [RANK[s] for s in self.history]
        assert ranks == sorted(ranks)
        terminal = [s for s in self.history if s.terminal]
        assert len(set(terminal)) <= 1  # once terminal, always the same state

    @invariant()
    def fills_never_decrease_nor_exceed(self):
        assert self.fills == sorted(self.fills)
        assert self.fills[-1] <= QUANTITY

    @invariant()
    def every_answer_is_logged(self):
        assert self.order.events.count() == self.events


@pytest.mark.django_db
def test_order_state_machine():
    owner = make_user()
    account = broker_account_create(owner=owner, kind="paper", label="Paper")
    portfolio = make_portfolio(owner, symbols=[])
    run = RebalanceRun.objects.create(
        portfolio=portfolio, trading_date=date(2025, 6, 30), status="planned", trigger="t"
    )
    OrderLife.context = {"account": account, "run": run}
    run_state_machine_as_test(OrderLife, settings=settings(max_examples=60, stateful_step_count=15, deadline=None))
