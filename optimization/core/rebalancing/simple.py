"""The rule-based strategies: full, threshold and cash-flow rebalancing.

Each answers with target values (USD per symbol); `finalize` does the rounding, funding and
the rules every strategy shares, do-not-trade symbols included (it notes what they would have
needed). Cash-flow rebalancing leaves them out of its water-filling: they cannot absorb cash.
"""

from __future__ import annotations

import numpy as np

from .arrays import sum_of
from .base import PlanningStrategy, Proposal
from .inputs import PlanContext
from .needs import deviation_phrase, format_usd
from .waterfill import drain, fill


class FullRebalance(PlanningStrategy):
    """Every holding to its effective target, whether or not it is outside its band."""

    name = "full"

    def propose(self, context: PlanContext) -> Proposal:
        return Proposal(target_values_usd=context.target_values_usd.copy())


class ThresholdRebalance(PlanningStrategy):
    """Only holdings outside their band move: to the target, or to the nearest band edge when
    ``threshold_to`` is "band_edge". The rest are untouched; sell proceeds beyond the funded
    buys stay in cash."""

    name = "threshold"

    def propose(self, context: PlanContext) -> Proposal:
        move = context.outside
        goal = context.targets
        if context.policy.trading.threshold_to == "band_edge":
            # Overweight holdings come down to target + band, underweight ones up to target - band.
            goal = context.targets + np.sign(context.deviations) * context.bands
            goal = np.maximum(goal, 0.0)
        targets = np.where(move, goal * context.total_usd, context.values_usd)
        idle_usd = context.total_usd * (1 - context.cash_target) - sum_of(targets)
        notes = ()
        if idle_usd > max(context.policy.trading.min_trade_usd, 0.001 * context.total_usd):
            notes = (
                f"about {format_usd(idle_usd)} stays in cash above the buffer: threshold trades only holdings "
                "outside their bands (full or cash_flow would invest it)",
            )
        return Proposal(target_values_usd=targets, notes=notes)


class CashFlowRebalance(PlanningStrategy):
    """Rebalance with cash only: invest the cash above the buffer into the most underweight
    holdings (water-filling); for a withdrawal, sell the most overweight first (reverse
    water-filling) until cash is back at the buffer. Never sells otherwise.
    """

    name = "cash_flow"
    sells = False

    def propose(self, context: PlanContext) -> Proposal:
        values = context.values_usd
        movable = context.tradable
        investable = context.available_cash_usd - context.cash_target * context.total_usd
        if investable > 0:
            after = fill(values, context.targets, movable, investable)
            verb = "invest cash"
        elif context.inputs.cash_flow_usd < 0 and investable < 0:
            after = drain(values, context.targets, movable, -investable)
            verb = f"raise cash for the {format_usd(context.inputs.cash_flow_usd)} withdrawal"
        else:
            return Proposal(target_values_usd=values.copy())
        changed = np.flatnonzero(np.abs(after - values) > 0).tolist()
        reasons = {
            context.symbols[i]: f"{verb}: {deviation_phrase(context.symbols[i], float(context.deviations[i]))}"
            for i in changed
        }
        return Proposal(target_values_usd=after, reasons=reasons)
