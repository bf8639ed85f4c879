"""The kill switch cancels what is open, at the broker and locally, and blocks sending."""

from __future__ import annotations

import pytest

from brokers.models import PaperOrder
from brokers.services.accounts import broker_for
from brokers.services.controls import kill_switch_set, trading_halt_reason
from brokers.services.orders import order_submit
from portfolios.tests.execution_factories import (
    MARKET_CLOSED_NOW,
    order_row,
    paper_portfolio,
    planned_run,
)

pytestmark = pytest.mark.django_db


def test_turning_it_on_cancels_open_orders_and_unsent_ones(prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    run = planned_run(portfolio)
    clock.now = MARKET_CLOSED_NOW  # the paper broker queues the order for the next session
    queued, unsent = order_row(run, "ks-1", "SPY", "sell", "1"), order_row(run, "ks-2", "BND", "buy", "1")
    with broker_for(portfolio.broker_account) as broker:
        order_submit(broker, queued)
    assert queued.state == "new"
    switch, problems = kill_switch_set(user=portfolio.owner, active=True, reason="going on holiday")
    assert problems == [] and switch.active
    queued.refresh_from_db()
    unsent.refresh_from_db()
    assert queued.state == unsent.state == "canceled"
    assert PaperOrder.objects.get(client_order_id="ks-1").state == "canceled"
    assert trading_halt_reason(user_id=portfolio.owner_id) == "kill switch on for this user: going on holiday"
    assert trading_halt_reason(user_id=None) is None


def test_an_order_is_not_sent_while_the_switch_is_on(prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    run = planned_run(portfolio)
    kill_switch_set(active=True, reason="incident")
    order = order_row(run, "ks-1", "SPY", "sell", "1")  # written after the switch went on
    with broker_for(portfolio.broker_account) as broker:
        order_submit(broker, order, halted=lambda: trading_halt_reason(user_id=portfolio.owner_id))
    assert order.state == "canceled" and PaperOrder.objects.count() == 0
    assert order.events.get().message == "not sent: kill switch on for everyone: incident"


def test_the_global_switch_is_named_before_a_users_and_a_switch_off_halts_nothing(prices, clock):
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    owner = portfolio.owner_id
    kill_switch_set(user=portfolio.owner, active=True, reason="mine")
    kill_switch_set(active=True, reason="everyone's")
    assert trading_halt_reason(user_id=owner) == "kill switch on for everyone: everyone's"
    kill_switch_set(active=False)
    assert trading_halt_reason(user_id=owner) == "kill switch on for this user: mine"
    assert trading_halt_reason(user_id=owner + 1) is None
    kill_switch_set(user=portfolio.owner, active=False)
    assert trading_halt_reason(user_id=owner) is None
