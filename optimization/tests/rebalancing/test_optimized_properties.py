"""Properties of minimize_trades, minimize_costs and risk_aware plans on random portfolios, end to end.

No negative holdings or cash after trading; buys paid by cash and sell proceeds; the solver
answers every valid input; minimize_trades never raises drift (up to the costs paid) and, when
the policy allows it, ends with every holding inside its band.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.core.errors import ConfigurationError
from optimization.core.rebalancing import BandPolicy, CostModel, PlanContext, PlanInputs, RebalancePolicy, TradingPolicy

from .factories import plan

OPTIMIZED = ("minimize_trades", "minimize_costs", "risk_aware")
SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def portfolios(draw, *, withdrawals: bool = True) -> tuple[PlanInputs, RebalancePolicy]:
    size = draw(st.integers(1, 7))
    prices = np.array(draw(st.lists(st.floats(1, 2_000), min_size=size, max_size=size)))
    held = np.array(draw(st.lists(st.floats(0, 20_000), min_size=size, max_size=size)))
    whole_qty = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    quantities = np.where(whole_qty, np.floor(held / prices), held / prices)
    raw = np.array(draw(st.lists(st.integers(0, 10), min_size=size, max_size=size)), dtype=float)
    if raw.sum() == 0:
        raw[0] = 1
    cash = draw(st.floats(0, 20_000))
    if quantities @ prices + cash < 1:
        cash += 100.0
    share = draw(st.floats(-0.6, 0.3) if withdrawals else st.floats(0, 0.3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loadings = rng.normal(0, 0.15, (size, size))
    symbols = tuple(f"S{i}" for i in range(size))
    inputs = PlanInputs(
        symbols=symbols,
        quantities=quantities,
        prices=prices,
        targets=raw / raw.sum(),
        cash_usd=cash,
        cash_flow_usd=share * float(quantities @ prices + cash),
        fractionable=np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))),
        cov=loadings @ loadings.T + np.diag(rng.uniform(0.0, 0.05, size)),
    )
    blocked = draw(st.sampled_from(((), (symbols[0],))))
    policy = RebalancePolicy(
        bands=BandPolicy(band_mode=draw(st.sampled_from(("absolute", "relative", "five_twenty_five")))),
        costs=CostModel(
            spread_bps=draw(st.sampled_from((0.0, 5.0, 50.0))),
            commission_per_trade_usd=draw(st.sampled_from((0.0, 1.0))),
        ),
        trading=TradingPolicy(
            min_trade_usd=draw(st.sampled_from((0.0, 10.0))),
            cash_buffer_weight=draw(st.sampled_from((0.0, 0.0025, 0.05))),
            fractional_shares=draw(st.booleans()),
            max_turnover=draw(st.sampled_from((None, 0.01, 0.2))),
            do_not_trade=frozenset(blocked),
        ),
    )
    return inputs, policy


def plan_or_unfundable(inputs: PlanInputs, policy: RebalancePolicy, strategy: str):
    """The plan, or None when a withdrawal exceeds what selling every tradable holding raises."""
    try:
        return plan(inputs, policy, strategy=strategy)
    except ConfigurationError as error:
        assert str(error).startswith("cash_flow_usd:")
        costs = policy.costs
        held = np.where(PlanContext(inputs, policy).tradable, inputs.quantities * inputs.prices, 0.0)
        net = held.sum() * (1 - costs.variable_rate) - costs.commission_per_trade_usd * np.count_nonzero(held)
        assert net < -(inputs.cash_usd + inputs.cash_flow_usd) + 1e-6
        return None


def quantities_after(inputs: PlanInputs, result) -> np.ndarray:
    after = inputs.quantities.copy()
    index = {s: i for i, s in enumerate(inputs.symbols)}
    for trade in result.trades:
        after[index[trade.symbol]] += trade.quantity if trade.side == "buy" else -trade.quantity
    return after


@pytest.mark.parametrize("strategy", OPTIMIZED)
@SETTINGS
@given(case=portfolios())
def test_no_negative_holdings_or_cash_and_buys_are_paid_for(strategy, case):
    inputs, policy = case
    result = plan_or_unfundable(inputs, policy, strategy)
    if result is None:
        return
    assert quantities_after(inputs, result).min() >= 0
    assert result.cash_after_usd >= 0
    bought = sum(t.notional_usd for t in result.trades if t.side == "buy")
    sold = sum(t.notional_usd for t in result.trades if t.side == "sell")
    assert bought <= inputs.cash_usd + inputs.cash_flow_usd + sold + 1e-6
    # A withdrawal comes first: finalize sells past the cap to raise it.
    if policy.trading.max_turnover is not None and inputs.cash_flow_usd >= 0:
        assert result.turnover <= policy.trading.max_turnover + 1e-9
    blocked = policy.trading.do_not_trade
    assert not any(t.symbol in blocked for t in result.trades)


@SETTINGS
@given(case=portfolios(withdrawals=False))
def test_minimize_trades_never_raises_drift(case):
    inputs, policy = case
    result = plan(inputs, policy, strategy="minimize_trades")
    tolerance = result.total_cost_usd / result.value_after_usd + 1e-9
    assert result.drift_after <= result.drift_before + tolerance


@SETTINGS
@given(case=portfolios())
def test_minimize_trades_brings_every_holding_inside_its_band_when_the_policy_allows(case):
    # Fractional shares, no minimum trade or commission, no buffer, no cap, nothing blocked: a plan
    # inside exists (a $1 commission on a $1 portfolio would leave nothing to be inside with).
    inputs, policy = case
    inputs = replace(inputs, fractionable=np.ones(len(inputs.symbols), dtype=bool))
    policy = replace(
        policy,
        costs=replace(policy.costs, commission_per_trade_usd=0.0),
        trading=TradingPolicy(min_trade_usd=0.0, cash_buffer_weight=0.0, fractional_shares=True),
    )
    result = plan_or_unfundable(inputs, policy, "minimize_trades")
    if result is None:
        return
    context = PlanContext(inputs, policy)
    weights = np.array([result.weights_after[s] for s in inputs.symbols])
    assert np.all(np.abs(weights - context.targets) <= context.bands + 1e-9)
    assert not any(note.startswith("Left outside") for note in result.notes)


@pytest.mark.parametrize("strategy", OPTIMIZED)
@SETTINGS
@given(case=portfolios(withdrawals=False))
def test_finalize_only_rounds_what_the_strategies_propose(strategy, case):
    # The programs already fund their buys and respect the minimum and the cap: finalize never
    # has to scale buys down or drop trades below the minimum. risk_aware is continuous: rounding
    # to whole shares is finalize's job there, and may need trimming.
    inputs, policy = case
    if strategy == "risk_aware":
        inputs = replace(inputs, fractionable=np.ones(len(inputs.symbols), dtype=bool))
        policy = replace(policy, trading=replace(policy.trading, fractional_shares=True))
    result = plan(inputs, policy, strategy=strategy)
    assert not any(note.startswith(("buys scaled", "no cash for buys", "turnover cap")) for note in result.notes)
    assert not any("below the" in note and "minimum left out" in note for note in result.notes)
