"""The entry point: holdings, prices, targets and a policy in, a `Plan` out.

context -> needs -> triggers -> (when they fire) strategy proposal -> finalize -> Plan.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from .arrays import sum_of
from .base import check_strategy_name, resolve_planner
from .finalize import Orders, finalize
from .inputs import PlanContext, PlanInputs, drift_of
from .needs import deposit_needed_usd, needs
from .policy import RebalancePolicy
from .results import Need, Plan, TriggerDecision
from .triggers import evaluate_triggers


def plan_rebalance(
    inputs: PlanInputs,
    policy: RebalancePolicy,
    *,
    as_of: date,
    last_rebalance: date | None = None,
    manual: bool = False,
    strategy: str | None = None,
) -> Plan:
    """The rebalancing plan of one portfolio on ``as_of``.

    ``strategy`` (a registry name or dotted path) overrides ``policy.trading.strategy``. When no
    trigger fires (or the cooldown blocks them) the plan has no trades and its after-figures
    equal the before-figures, the cash flow included. Values before exclude the cash flow
    (``value_before_usd`` = holdings + ``cash_usd``); drift before, the targets and turnover
    (sum |notional| / (2 x total)) use the total with the flow, the value the targets apply to.
    Raises `ConfigurationError` for invalid inputs or a withdrawal larger than what can be raised.
    """
    name = check_strategy_name(strategy or policy.trading.strategy)
    context = PlanContext(inputs, policy)
    need_rows = needs(context)
    decision = evaluate_triggers(context, as_of=as_of, last_rebalance=last_rebalance, manual=manual)
    if not decision.rebalance:
        orders = None
    else:
        planner = resolve_planner(name)
        orders = finalize(context, planner.propose(context), planner)
    return assemble_plan(context, name, decision, need_rows, orders)


def assemble_plan(
    context: PlanContext,
    strategy: str,
    decision: TriggerDecision,
    need_rows: tuple[Need, ...],
    orders: Orders | None,
) -> Plan:
    """The `Plan` for ``orders`` (None: nothing traded, after = before)."""
    inputs = context.inputs
    if orders is None:
        quantities_after, cash_after, traded, cost, trades, notes = (
            inputs.quantities,
            context.available_cash_usd,
            0.0,
            0.0,
            (),
            (),
        )
    else:
        quantities_after, cash_after = orders.quantities_after, orders.cash_after_usd
        traded, cost, trades, notes = orders.traded_usd, orders.cost_usd, orders.trades, orders.notes
    values_after = quantities_after * inputs.prices
    value_after = sum_of(values_after) + cash_after
    weights_after = values_after / value_after if value_after > 0 else np.zeros_like(values_after)
    return Plan(
        strategy=strategy,
        trigger=decision,
        needs=need_rows,
        trades=trades,
        drift_before=context.drift,
        drift_after=drift_of(values_after, cash_after, context.targets, context.cash_target),
        turnover=traded / (2 * context.total_usd),
        total_cost_usd=cost,
        value_before_usd=sum_of(context.values_usd) + inputs.cash_usd,
        value_after_usd=value_after,
        cash_before_usd=inputs.cash_usd,
        cash_flow_usd=inputs.cash_flow_usd,
        cash_after_usd=cash_after,
        weights_after=dict(zip(context.symbols, weights_after.tolist(), strict=True)),
        cash_weight_after=cash_after / value_after if value_after > 0 else 0.0,
        deposit_needed_usd=deposit_needed_usd(context),
        notes=notes,
    )
