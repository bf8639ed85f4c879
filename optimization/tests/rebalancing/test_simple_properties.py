"""Properties of full, threshold and cash-flow plans on random portfolios.

No negative holdings or cash after trading; buys paid by cash and sell proceeds; drift never
rises for full and threshold, whole shares included (up to the costs paid); cash-flow
rebalancing sells only for a withdrawal.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.core.errors import ConfigurationError
from optimization.core.rebalancing import BandPolicy, CostModel, PlanInputs, RebalancePolicy, TradingPolicy

from .factories import plan

SIMPLE = ("full", "threshold", "cash_flow")
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def portfolios(draw, *, withdrawals: bool = True) -> tuple[PlanInputs, RebalancePolicy]:
    size = draw(st.integers(1, 6))
    prices = np.array(draw(st.lists(st.floats(1, 2_000), min_size=size, max_size=size)))
    held = np.array(draw(st.lists(st.floats(0, 20_000), min_size=size, max_size=size)))
    # Some quantities whole, some with a fractional remainder.
    whole_qty = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    quantities = np.where(whole_qty, np.floor(held / prices), held / prices)
    raw = np.array(draw(st.lists(st.integers(0, 10), min_size=size, max_size=size)), dtype=float)
    if raw.sum() == 0:
        raw[0] = 1
    targets = raw / raw.sum()
    cash = draw(st.floats(0, 20_000))
    if quantities @ prices + cash < 1:
        cash += 100.0  # something to rebalance
    share = draw(st.floats(-0.9, 0.5) if withdrawals else st.floats(0, 0.5))
    flow = share * float(quantities @ prices + cash)
    inputs = PlanInputs(
        symbols=tuple(f"S{i}" for i in range(size)),
        quantities=quantities,
        prices=prices,
        targets=targets,
        cash_usd=cash,
        cash_flow_usd=flow,
        fractionable=np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))),
    )
    policy = RebalancePolicy(
        bands=BandPolicy(band_mode=draw(st.sampled_from(("absolute", "relative", "five_twenty_five")))),
        costs=CostModel(
            spread_bps=draw(st.sampled_from((0.0, 5.0, 50.0))),
            commission_per_trade_usd=draw(st.sampled_from((0.0, 1.0))),
        ),
        trading=TradingPolicy(
            min_trade_usd=0.0,
            cash_buffer_weight=draw(st.sampled_from((0.0, 0.0025, 0.05))),
            fractional_shares=draw(st.booleans()),
            threshold_to=draw(st.sampled_from(("target", "band_edge"))),
        ),
    )
    return inputs, policy


def plan_or_unfundable(inputs: PlanInputs, policy: RebalancePolicy, strategy: str):
    """The plan, or None when a withdrawal truly exceeds what selling everything raises after costs."""
    try:
        return plan(inputs, policy, strategy=strategy)
    except ConfigurationError as error:
        assert str(error).startswith("cash_flow_usd:")
        costs = policy.costs
        held = inputs.quantities * inputs.prices
        net = held.sum() * (1 - costs.variable_rate) - costs.commission_per_trade_usd * np.count_nonzero(held)
        assert net < -(inputs.cash_usd + inputs.cash_flow_usd) + 1e-6
        return None


def _quantities_after(inputs: PlanInputs, result) -> np.ndarray:
    after = inputs.quantities.copy()
    index = {s: i for i, s in enumerate(inputs.symbols)}
    for trade in result.trades:
        after[index[trade.symbol]] += trade.quantity if trade.side == "buy" else -trade.quantity
    return after


@pytest.mark.parametrize("strategy", SIMPLE)
@SETTINGS
@given(case=portfolios())
def test_no_negative_holdings_or_cash_and_buys_are_paid_for(strategy, case):
    inputs, policy = case
    result = plan_or_unfundable(inputs, policy, strategy)
    if result is None:
        return
    after = _quantities_after(inputs, result)
    assert after.min() >= 0
    assert result.cash_after_usd >= 0
    bought = sum(t.notional_usd for t in result.trades if t.side == "buy")
    sold = sum(t.notional_usd for t in result.trades if t.side == "sell")
    assert bought <= inputs.cash_usd + inputs.cash_flow_usd + sold + 1e-6
    assert result.cash_after_usd == pytest.approx(
        inputs.cash_usd + inputs.cash_flow_usd + sold - bought - result.total_cost_usd, abs=1e-6
    )
    assert all(t.quantity > 0 for t in result.trades)
    assert [t.side for t in result.trades] == sorted((t.side for t in result.trades), key=("sell", "buy").index)


@pytest.mark.parametrize("strategy", ("full", "threshold"))
@SETTINGS
@given(case=portfolios())
def test_drift_does_not_rise(strategy, case):
    inputs, policy = case
    result = plan_or_unfundable(inputs, policy, strategy)
    if result is None:
        return
    # Whole shares included: only the costs paid out of value can move drift up, or a withdrawal
    # that no plan in whole shares can pay without (its note says so).
    tolerance = result.total_cost_usd / result.value_after_usd + 1e-9
    unpayable = any("withdrawal leaves drift at" in note for note in result.notes)
    assert unpayable or result.drift_after <= result.drift_before + tolerance


@SETTINGS
@given(case=portfolios(withdrawals=False))
def test_cash_flow_sells_only_for_a_withdrawal(case):
    inputs, policy = case
    result = plan(inputs, policy, strategy="cash_flow")
    assert all(t.side == "buy" for t in result.trades)


@SETTINGS
@given(case=portfolios())
def test_full_fractional_plans_reach_the_targets_up_to_costs(case):
    # Without commissions: with them, a buy smaller than its commission rightly stays undone.
    inputs, policy = case
    policy = replace(
        policy,
        costs=replace(policy.costs, commission_per_trade_usd=0.0),
        trading=replace(policy.trading, fractional_shares=True),
    )
    inputs = replace(inputs, fractionable=np.ones(len(inputs.symbols), dtype=bool))
    result = plan_or_unfundable(inputs, policy, "full")
    if result is None:
        return
    # Costs come out of the buys; each quantity may fall short by a nano-share.
    nano_shares = inputs.prices.sum() * 1e-9
    assert result.drift_after <= (2 * result.total_cost_usd + nano_shares) / result.value_after_usd + 1e-9


@pytest.mark.parametrize("strategy", ("full", "threshold"))
@SETTINGS
@given(case=portfolios(withdrawals=False), cap=st.sampled_from((0.001, 0.01, 0.05)))
def test_turnover_stays_under_the_cap(strategy, case, cap):
    inputs, policy = case
    policy = replace(policy, trading=replace(policy.trading, max_turnover=cap))
    result = plan(inputs, policy, strategy=strategy)
    assert result.turnover <= cap + 1e-9
