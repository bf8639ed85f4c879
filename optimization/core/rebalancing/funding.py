"""Sizing the buys of a plan within the cash that pays for them.

Amounts are USD, quantities shares, arrays shape (N,) in the order of ``context.symbols``.
Spending counts the costs: notional x (1 + spread and impact) + a commission per trade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import any_true, sum_of
from .inputs import PlanContext
from .needs import format_usd
from .shares import below, round_down, round_nearest

# Float noise in USD when comparing spending with a budget.
USD_SLACK = 1e-7
# Buys cut by more than this share get a note; smaller trims (trading costs, rounding) do not.
_NOTE_SCALED_BELOW = 0.01


@dataclass(frozen=True)
class Buys:
    """Buy quantities (shares, shape (N,)), notes, and buys rounded below the minimum trade."""

    quantity: np.ndarray
    notes: tuple[str, ...] = ()
    dropped: int = 0


def spend_usd(notional: np.ndarray, rate: float, fee: float) -> float:
    """Cash that buying ``notional`` (USD per symbol) takes, costs included."""
    return sum_of(notional) * (1 + rate) + fee * int(np.count_nonzero(notional))


def size_buys(
    context: PlanContext, buy_usd: np.ndarray, budget_usd: float, whole: np.ndarray, *, toward_zero: bool
) -> Buys:
    """Quantities for the continuous buys ``buy_usd`` (USD, >= 0) that spend at most ``budget_usd``.

    Enough cash: fractions round down to a nano-share, whole shares to the nearest share (down
    if rounding up would overspend). Short: every buy scales by one factor and rounds down, then
    the leftover buys +1 share of the most underweight whole-share buys (`top_up`). With
    ``toward_zero`` (under the turnover cap) everything rounds down and nothing is topped up.
    """
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    count = int(np.count_nonzero(buy_usd))
    if count == 0:
        return Buys(np.zeros_like(buy_usd))
    wanted_usd = sum_of(buy_usd)
    if budget_usd <= fee * count:
        note = f"no cash for buys: {format_usd(wanted_usd)} wanted, {format_usd(max(budget_usd, 0))} available"
        return Buys(np.zeros_like(buy_usd), (note,))
    short = wanted_usd * (1 + rate) + fee * count > budget_usd + USD_SLACK
    factor = (budget_usd - fee * count) / (wanted_usd * (1 + rate)) if short else 1.0
    scaled = buy_usd * (factor / prices)
    floored = short or toward_zero
    if floored:
        quantity = round_down(scaled, whole)
    else:
        quantity = round_nearest(scaled, whole)
        if any_true(whole) and spend_usd(quantity * prices, rate, fee) > budget_usd + USD_SLACK:
            quantity = round_down(scaled, whole)
            floored = True
    min_trade = context.policy.trading.min_trade_usd
    dropped = (quantity > 0) & (quantity * prices < min_trade)
    if any_true(dropped):
        quantity[dropped] = 0.0
    if floored and not toward_zero and any_true(whole):
        leftover = budget_usd - spend_usd(quantity * prices, rate, fee)
        quantity = top_up(context, quantity, scaled, leftover, whole)
    notes = ()
    if factor < 1 - _NOTE_SCALED_BELOW:
        notes = (
            f"buys scaled to {factor:.0%} of the plan: {format_usd(wanted_usd)} wanted, "
            f"{format_usd(budget_usd)} of cash and sell proceeds above the buffer",
        )
    return Buys(quantity, notes, int(np.count_nonzero(dropped & (quantity == 0))))


def top_up(
    context: PlanContext, quantity: np.ndarray, continuous: np.ndarray, leftover_usd: float, whole: np.ndarray
) -> np.ndarray:
    """+1 share at a time for whole-share buys below their continuous quantity, the most
    underweight first (weight after trading minus effective target), while ``leftover_usd`` pays.

    A buy never goes above the next whole share of its continuous quantity, nor starts below
    the minimum trade.
    """
    candidates = whole & below(quantity, continuous)
    if leftover_usd <= 0 or not any_true(candidates):
        return quantity
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    min_trade = context.policy.trading.min_trade_usd
    total = context.total_usd
    quantity = quantity.copy()
    gap = (context.values_usd + quantity * prices) / total - context.targets
    while True:
        unit = prices * (1 + rate) + np.where(quantity > 0, 0.0, fee)
        ok = candidates & (unit <= leftover_usd + USD_SLACK) & ((quantity + 1) * prices >= min_trade)
        if not any_true(ok):
            return quantity
        i = int(np.argmin(np.where(ok, gap, np.inf)))
        quantity[i] += 1
        leftover_usd -= unit[i]
        gap[i] += prices[i] / total
        candidates[i] = below(quantity[i], continuous[i])
