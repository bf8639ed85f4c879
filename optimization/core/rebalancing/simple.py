"""The rule-based strategies: full, threshold and cash-flow rebalancing.

Each answers with target values (USD per symbol); `finalize` does the rounding, funding and
the rules every strategy shares, do-not-trade symbols included (it notes what they would have
needed). Cash-flow rebalancing leaves them out of its water-filling: they cannot absorb cash.
"""

from __future__ import annotations

import numpy as np

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
    buys stay in cash (finalize notes how much, after rounding)."""

    name = "threshold"

    def propose(self, context: PlanContext) -> Proposal:
        move = context.outside
        goal = context.targets
        if context.policy.trading.threshold_to == "band_edge":
            # Overweight holdings come down to target + band, underweight ones up to target - band.
            goal = context.targets + np.sign(context.deviations) * context.bands
            goal = np.maximum(goal, 0.0)
        targets = np.where(move, goal * context.total_usd, context.values_usd)
        return Proposal(
            target_values_usd=targets,
            idle_cash_reason="threshold trades only holdings outside their bands (full or cash_flow would invest it)",
        )


class CashFlowRebalance(PlanningStrategy):
    """Rebalance with cash only: invest the cash above the buffer into the most underweight
    holdings (water-filling); for a withdrawal, sell the most overweight first (reverse
    water-filling) until cash is back at the buffer. Never sells otherwise.

    ``cash_flow_to`` "target" fills holdings up to their targets (and drains them down to their
    targets). "band_edge" lifts underweight holdings only to the lower edge of their band, the
    rest of the cash staying in cash; a withdrawal first sells overweight holdings down to the
    upper edge of their band, and only what that cannot raise is drained toward the targets.
    """

    name = "cash_flow"
    sells = False

    def propose(self, context: PlanContext) -> Proposal:
        values = context.values_usd
        movable = context.tradable
        investable = context.available_cash_usd - context.cash_target * context.total_usd
        to_edge = context.policy.trading.cash_flow_to == "band_edge"
        idle_reason = None
        if investable > 0:
            if to_edge:
                after = _fill_to_edges(context, investable)
                idle_reason = "cash_flow_to band_edge fills holdings only to the lower edge of their bands"
            else:
                after = fill(values, context.targets, movable, investable)
            verb = "invest cash"
        elif context.inputs.cash_flow_usd < 0 and investable < 0:
            if to_edge:
                after = _drain_to_edges(context, -investable)
            else:
                after = drain(values, context.targets, movable, -investable)
            verb = f"raise cash for the {format_usd(context.inputs.cash_flow_usd)} withdrawal"
        else:
            return Proposal(target_values_usd=values.copy())
        changed = np.flatnonzero(np.abs(after - values) > 0).tolist()
        reasons = {
            context.symbols[i]: f"{verb}: {deviation_phrase(context.symbols[i], float(context.deviations[i]))}"
            for i in changed
        }
        return Proposal(target_values_usd=after, reasons=reasons, idle_cash_reason=idle_reason)


def _fill_to_edges(context: PlanContext, amount_usd: float) -> np.ndarray:
    """Values after investing at most ``amount_usd`` so that underweight holdings reach the lower
    edge of their band, the most underweight (relative to that edge) first (USD, shape (N,))."""
    values = context.values_usd
    edges = np.maximum(context.targets - context.bands, 0.0)
    needed = float(np.maximum(edges * context.total_usd - values, 0.0)[context.tradable].sum())
    return fill(values, edges, context.tradable, min(amount_usd, needed))


def _drain_to_edges(context: PlanContext, amount_usd: float) -> np.ndarray:
    """Values after selling ``amount_usd``: first down to the upper edge of each band (the most
    overweight relative to that edge first), then, for what that cannot raise, toward the
    targets as `drain` does (USD, shape (N,))."""
    values = context.values_usd
    movable = context.tradable
    edges = context.targets + context.bands
    above = float(np.maximum(values - edges * context.total_usd, 0.0)[movable].sum())
    after = drain(values, edges, movable, min(amount_usd, above))
    if amount_usd > above:
        after = drain(after, context.targets, movable, amount_usd - above)
    return after
