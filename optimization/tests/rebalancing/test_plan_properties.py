"""What every plan keeps, for every strategy, on random portfolios: never further from the targets.

Portfolios of 2 to 30 holdings worth $1k to $10M, in whole shares, fractions or both, with random
policies (band modes, costs, minimum trades, buffers, caps, do-not-trade lists, the peer options)
and deposits or withdrawals. Every plan:

- leaves drift after trading, its estimated costs paid, at most drift before (for `full`,
  `threshold`, `cash_flow` and the optimised strategies alike); a withdrawal that no plan can pay
  without raising drift is the one exception, and its note says so;
- trades nothing below the minimum trade (unless a withdrawal leaves no other way, noted);
- never sells with a buy-only strategy (`cash_flow` without a withdrawal);
- never empties a holding whose target is above zero (unless a withdrawal needs it, noted);
- leaves cash after costs at zero or more, and no position short.

``PLANNER_PROPERTY_EXAMPLES`` sets the random portfolios per strategy (default 200); CI's slow run
uses 10,000:
``PLANNER_PROPERTY_EXAMPLES=10000 pytest -m planner_properties optimization/tests/rebalancing``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimization.core.errors import ConfigurationError
from optimization.core.names import PLANNING_STRATEGY_NAMES
from optimization.core.rebalancing import (
    BandPolicy,
    CostModel,
    PlanContext,
    PlanInputs,
    RebalancePolicy,
    TradingPolicy,
)
from optimization.core.rebalancing.policy import BAND_MODES

from .factories import plan

EXAMPLES = int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "200"))
pytestmark = pytest.mark.planner_properties
# Drift is a fraction of value: 1e-9 is a ten-thousandth of a basis point, float noise.
DRIFT_NOISE = 1e-9


@st.composite
def portfolios(draw) -> tuple[PlanInputs, RebalancePolicy]:
    size = draw(st.integers(2, 30))
    value = math.exp(draw(st.floats(math.log(1e3), math.log(1e7))))
    prices = np.exp(np.array(draw(st.lists(st.floats(math.log(1), math.log(5_000)), min_size=size, max_size=size))))
    prices = np.round(prices, 2)
    raw = np.array(draw(st.lists(st.integers(0, 10), min_size=size, max_size=size)), dtype=float)
    if raw.sum() == 0:
        raw[0] = 1
    targets = raw / raw.sum()
    drifts = np.array(draw(st.lists(st.floats(0.0, 3.0), min_size=size, max_size=size)))
    drifts[drifts < 0.01] = 0.0  # an unheld target, not a position of 1e-300 shares
    cash_share = draw(st.floats(0.0, 0.3))
    held = targets * value * (1 - cash_share) * drifts
    whole_held = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    quantities = np.where(whole_held, np.round(held / prices), held / prices)
    cash = value * cash_share
    if quantities @ prices + cash < 1:
        cash += value  # something to rebalance
    flow_share = draw(st.sampled_from((0.0, 0.0, 0.1, -0.05, -0.3)))
    symbols = tuple(f"S{i:02d}" for i in range(size))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loadings = rng.normal(0, 0.15, (size, 3))
    inputs = PlanInputs(
        symbols=symbols,
        quantities=quantities,
        prices=prices,
        targets=targets,
        cash_usd=cash,
        cash_flow_usd=flow_share * float(quantities @ prices + cash),
        fractionable=np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))),
        cov=loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.05, size)),
    )
    policy = RebalancePolicy(
        bands=BandPolicy(band_mode=draw(st.sampled_from(BAND_MODES)), unheld_outside_band=draw(st.booleans())),
        costs=CostModel(
            spread_bps=draw(st.sampled_from((0.0, 5.0, 50.0))),
            commission_per_trade_usd=draw(st.sampled_from((0.0, 0.0, 1.0))),
        ),
        trading=TradingPolicy(
            min_trade_usd=draw(st.sampled_from((0.0, 10.0, 10.0, 100.0))),
            cash_buffer_weight=draw(st.sampled_from((0.0, 0.0025, 0.05))),
            fractional_shares=draw(st.booleans()),
            threshold_to=draw(st.sampled_from(("target", "band_edge"))),
            cash_flow_to=draw(st.sampled_from(("target", "band_edge"))),
            max_turnover=draw(st.sampled_from((None, None, None, 0.05))),
            do_not_trade=frozenset(draw(st.sampled_from(((), (), (symbols[0],))))),
        ),
    )
    return inputs, policy


def plan_or_unpayable(inputs: PlanInputs, policy: RebalancePolicy, strategy: str):
    """The plan, or None when a withdrawal exceeds what selling every tradable holding raises."""
    try:
        return plan(inputs, policy, strategy=strategy)
    except ConfigurationError as error:
        assert str(error).startswith("cash_flow_usd:"), error
        costs = policy.costs
        held = np.where(PlanContext(inputs, policy).tradable, inputs.quantities * inputs.prices, 0.0)
        net = held.sum() * (1 - costs.variable_rate) - costs.commission_per_trade_usd * np.count_nonzero(held)
        assert net < -(inputs.cash_usd + inputs.cash_flow_usd) + 1e-6
        return None


def has_note(result, text: str) -> bool:
    return any(text in note for note in result.notes)


@pytest.mark.parametrize("strategy", PLANNING_STRATEGY_NAMES)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=portfolios())
def test_every_plan_keeps_the_rules(strategy: str, case: tuple[PlanInputs, RebalancePolicy]) -> None:
    inputs, policy = case
    result = plan_or_unpayable(inputs, policy, strategy)
    if result is None:
        return
    context = PlanContext(inputs, policy)
    quantities_after = inputs.quantities.copy()
    index = {symbol: i for i, symbol in enumerate(inputs.symbols)}
    for trade in result.trades:
        quantities_after[index[trade.symbol]] += trade.quantity if trade.side == "buy" else -trade.quantity

    # Never further from the targets, the estimated costs paid.
    unpayable = has_note(result, "withdrawal leaves drift at")
    assert unpayable or result.drift_after <= result.drift_before + DRIFT_NOISE

    # No trade below the minimum.
    minimum = policy.trading.min_trade_usd
    if not has_note(result, "no plan meets the"):
        assert all(t.notional_usd >= minimum - 1e-6 for t in result.trades)

    # A buy-only strategy never sells.
    if strategy == "cash_flow" and inputs.cash_flow_usd >= 0:
        assert all(t.side == "buy" for t in result.trades)

    # No holding with a positive target emptied.
    emptied = (inputs.targets > 0) & (inputs.quantities > 0) & (quantities_after <= 1e-12)
    if emptied.any():
        assert context.available_cash_usd < 0 and has_note(result, "needs every share of")

    # Cash never negative after costs, nothing short, nothing blocked traded.
    assert result.cash_after_usd >= 0
    assert quantities_after.min() >= -1e-12
    assert not any(t.symbol in policy.trading.do_not_trade for t in result.trades)
