"""Small builders for plan inputs and policies: defaults that make hand-computed numbers exact.

Defaults: no cash buffer, no costs, no minimum trade, fractional shares; override what a test pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from optimization.core.rebalancing import (
    BandPolicy,
    CostModel,
    Plan,
    PlanContext,
    PlanInputs,
    RebalancePolicy,
    TradingPolicy,
    TriggerPolicy,
    plan_rebalance,
)

AS_OF = date(2026, 11, 20)


def make_inputs(
    holdings: dict[str, tuple[float, float, float]],
    *,
    cash_usd: float = 0.0,
    cash_flow_usd: float = 0.0,
    fractionable: Sequence[bool] | None = None,
) -> PlanInputs:
    """``holdings``: symbol -> (quantity, price, target weight)."""
    symbols = tuple(holdings)
    rows = np.array([holdings[s] for s in symbols], dtype=float)
    return PlanInputs(
        symbols=symbols,
        quantities=rows[:, 0],
        prices=rows[:, 1],
        targets=rows[:, 2],
        cash_usd=cash_usd,
        cash_flow_usd=cash_flow_usd,
        fractionable=None if fractionable is None else np.array(fractionable, dtype=bool),
    )


def make_policy(
    *,
    bands: BandPolicy | None = None,
    triggers: TriggerPolicy | None = None,
    costs: CostModel | None = None,
    **trading,
) -> RebalancePolicy:
    """A policy with exact-arithmetic defaults; ``trading`` keywords go to `TradingPolicy`."""
    trading = {"cash_buffer_weight": 0.0, "min_trade_usd": 0.0, **trading}
    return RebalancePolicy(
        bands=bands or BandPolicy(),
        triggers=triggers or TriggerPolicy(),
        costs=costs or CostModel(spread_bps=0.0),
        trading=TradingPolicy(**trading),
    )


def make_context(inputs: PlanInputs, policy: RebalancePolicy | None = None) -> PlanContext:
    return PlanContext(inputs, policy or make_policy())


def plan(inputs: PlanInputs, policy: RebalancePolicy, *, manual: bool = True, **kwargs) -> Plan:
    """`plan_rebalance` on `AS_OF`, manual by default so that strategies always run."""
    return plan_rebalance(inputs, policy, as_of=AS_OF, manual=manual, **kwargs)


def trade_table(result: Plan) -> list[tuple[str, str, float]]:
    """(side, symbol, quantity) per trade, in plan order."""
    return [(t.side, t.symbol, t.quantity) for t in result.trades]
