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
from .shares import WHOLE_SLACK, below, round_down, whole_by_deviation

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

    Short of cash, every buy first scales by one factor. Fractions round down to a nano-share; a
    whole-share buy rounds down or up, whichever leaves the holding nearer its target
    (`whole_by_deviation`). If that overspends, the buys are cut back to the budget where that
    costs least (`_trim_to_budget`). Whenever cash was short, the leftover then buys +1 share
    of the most underweight whole-share buys (`top_up`). With ``toward_zero`` (under the
    turnover cap) everything rounds down and nothing is topped up.
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
    continuous = buy_usd / prices
    scaled = continuous * factor
    min_trade = context.policy.trading.min_trade_usd
    floored = short
    quantity = round_down(scaled, whole)
    at = np.flatnonzero(whole & (buy_usd > 0)) if not toward_zero else ()
    if len(at):
        gap = context.target_values_usd[at] - context.values_usd[at]
        quantity[at] = whole_by_deviation(scaled[at], None, gap, prices[at], min_trade)
        if spend_usd(quantity * prices, rate, fee) > budget_usd + USD_SLACK:
            quantity = _trim_to_budget(context, quantity, budget_usd, whole)
            floored = True
    dropped = (quantity > 0) & (quantity * prices < min_trade)
    if any_true(dropped):
        quantity[dropped] = 0.0
    if floored and not toward_zero and any_true(whole):
        leftover = budget_usd - spend_usd(quantity * prices, rate, fee)
        quantity = top_up(context, quantity, np.ceil(continuous - WHOLE_SLACK), leftover, whole)
    notes = ()
    if factor < 1 - _NOTE_SCALED_BELOW:
        notes = (
            f"buys scaled to {factor:.0%} of the plan: {format_usd(wanted_usd)} wanted, "
            f"{format_usd(budget_usd)} of cash and sell proceeds above the buffer",
        )
    return Buys(quantity, notes, int(np.count_nonzero(dropped & (quantity == 0))))


def _trim_to_budget(context: PlanContext, quantity: np.ndarray, budget_usd: float, whole: np.ndarray) -> np.ndarray:
    """Buys rounded to the whole shares nearest their targets cut back to ``budget_usd``: the
    fractional buys give up the excess first (one factor, those pushed below the minimum trade
    dropped), then one whole share at a time where that moves its holding least from its
    target (USD), so that a share rounded up by a few dollars costs another buy a share, not
    its own holding its one share (shares, shape (N,))."""
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    min_trade = context.policy.trading.min_trade_usd
    quantity = quantity.copy()
    fractional = ~whole & (quantity > 0)
    over = spend_usd(quantity * prices, rate, fee) - budget_usd
    if any_true(fractional) and over > USD_SLACK:
        notional = quantity * prices
        available = sum_of(notional[fractional])
        keep = max(0.0, 1 - over / ((1 + rate) * available)) if available > 0 else 0.0
        quantity = np.where(fractional, round_down(quantity * keep, whole), quantity)
        quantity[fractional & (quantity * prices < min_trade)] = 0.0
    gap = context.target_values_usd - context.values_usd
    over = spend_usd(quantity * prices, rate, fee) - budget_usd
    if over > USD_SLACK:
        # Rounding added at most one share per buy: give those up in order of least harm at once.
        fewer = np.where(quantity - 1 > 0, quantity - 1, 0.0)
        fewer = np.where((fewer == 0) | (fewer * prices >= min_trade), fewer, 0.0)
        worse = np.abs(gap - fewer * prices) - np.abs(gap - quantity * prices)
        candidates = np.flatnonzero(whole & (quantity > 0))
        order = candidates[np.argsort(worse[candidates], kind="stable")]
        freed = (quantity[order] - fewer[order]) * prices[order] * (1 + rate) + np.where(fewer[order] == 0, fee, 0.0)
        enough = np.searchsorted(np.cumsum(freed), over - USD_SLACK)
        taken = order[: enough + 1]
        quantity[taken] = fewer[taken]
    for _ in range(int(np.sum(np.where(whole, quantity, 0.0))) + 1):
        if spend_usd(quantity * prices, rate, fee) <= budget_usd + USD_SLACK:
            return quantity
        fewer = quantity - 1
        allowed = whole & (quantity >= 1) & ((fewer == 0) | (fewer * prices >= min_trade))
        # A share that cannot stay alone (below the minimum) goes with the whole buy.
        fewer = np.where(allowed, fewer, 0.0)
        worse = np.abs(gap - fewer * prices) - np.abs(gap - quantity * prices)
        candidates = whole & (quantity > 0)
        i = int(np.argmin(np.where(candidates, worse, np.inf)))
        quantity[i] = fewer[i]
    return quantity


def top_up(
    context: PlanContext, quantity: np.ndarray, limit: np.ndarray, leftover_usd: float, whole: np.ndarray
) -> np.ndarray:
    """+1 share at a time for whole-share buys below ``limit`` (the whole shares the strategy's
    buy rounds up to), the most underweight first (weight after trading minus effective target),
    while ``leftover_usd`` pays.

    A share is added only if it keeps the holding at or below its target plus its band, or, where
    one share is wider than that, leaves the holding nearer its target than before (a $161 share
    of a 57% target in a $240 account, never a $110 share of a 5% target); a buy never starts
    below the minimum trade. Every share bought with cash above the buffer lowers drift or leaves
    it unchanged: the holding moves by at most what cash gives up.
    """
    candidates = whole & below(quantity, limit)
    if leftover_usd <= 0 or not any_true(candidates):
        return quantity
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    min_trade = context.policy.trading.min_trade_usd
    total = context.total_usd
    ceiling_usd = (context.targets + context.bands) * total * (1 + 1e-12)
    target_usd = context.target_values_usd
    quantity = quantity.copy()
    value = context.values_usd + quantity * prices
    while True:
        unit = prices * (1 + rate) + np.where(quantity > 0, 0.0, fee)
        ok = (
            candidates
            & (unit <= leftover_usd + USD_SLACK)
            & ((quantity + 1) * prices >= min_trade)
            & ((value + prices <= ceiling_usd) | (np.abs(value + prices - target_usd) < np.abs(value - target_usd)))
        )
        if not any_true(ok):
            return quantity
        gap = value / total - context.targets
        i = int(np.argmin(np.where(ok, gap, np.inf)))
        quantity[i] += 1
        value[i] += prices[i]
        leftover_usd -= unit[i]
        candidates[i] = below(quantity[i], limit[i])
