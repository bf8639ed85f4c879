"""The finishing step shared by every strategy: continuous target values -> orders.

Rules enforced here, whatever the strategy proposed (in this order):

1. Do-not-trade symbols keep their quantity; a strategy with ``sells = False`` sells nothing
   unless a withdrawal is planned (cash-flow rebalancing raises the withdrawal by selling).
2. No shorts: a sell never exceeds the quantity held; a target value of 0 sells the whole
   position, fractional remainder included.
3. The one-way turnover cap (sum |notional| / (2 x total)) scales every trade by one factor.
4. Quantities: 9 decimals where fractions are allowed, else whole shares within one share of
   the continuous quantity. Sells round up (never beyond the position) so that they raise at
   least the continuous plan's cash; when the cap binds, before or after rounding up,
   everything rounds toward zero instead.
5. Trades below ``min_trade_usd`` (on the continuous notional) are dropped, and so are sells
   whose commission would eat their proceeds.
6. If a withdrawal leaves cash negative after the sells, sells from the most overweight
   tradable holdings raise the rest (they may exceed the turnover cap), and nothing is bought;
   when even selling every tradable holding cannot, `ConfigurationError`.
7. Buys are funded by cash + sell proceeds - sell costs - the cash buffer (of the continuous
   plan, or of the rounded sells if those raise less); see `funding.size_buys`.

Cash after trading is never negative. Amounts are USD, quantities shares, arrays shape (N,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from .arrays import all_true, any_true, sum_of
from .base import PlanningStrategy, Proposal
from .funding import USD_SLACK, size_buys
from .inputs import PlanContext
from .needs import format_usd, holding_sentences
from .results import Trade
from .shares import round_down, round_up
from .waterfill import drain


@dataclass(frozen=True, eq=False)
class Orders:
    """The orders for one proposal and what they leave behind.

    ``trades``: sells first, then buys, each group by symbol. ``quantities_after``: shares per
    symbol after all trades fill at the estimated prices. ``cash_after_usd`` >= 0.
    ``traded_usd``: sum of |notional|. ``cost_usd``: estimated costs of all trades.
    """

    trades: tuple[Trade, ...]
    notes: tuple[str, ...]
    quantities_after: np.ndarray
    cash_after_usd: float
    traded_usd: float
    cost_usd: float


def finalize(context: PlanContext, proposal: Proposal, strategy: PlanningStrategy) -> Orders:
    """Orders for ``proposal`` under the context's policy; see the module docstring for the rules.

    Raises `ConfigurationError` ("cash_flow_usd: ...") when a withdrawal exceeds what cash and
    the tradable holdings can raise, or ("rebalancing_strategy: ...") for a malformed proposal.
    """
    notes = list(proposal.notes)
    delta, liquidate, capped = _desired_trades(context, proposal, strategy, notes)
    orders = _size_orders(context, proposal, delta, liquidate, toward_zero=capped, notes=notes)
    cap = context.policy.trading.max_turnover
    if cap is not None and not capped and orders.traded_usd > 2 * cap * context.total_usd * (1 + 1e-12):
        # Under the cap before rounding, over it after rounding up: round everything toward zero.
        orders = _size_orders(context, proposal, delta, liquidate, toward_zero=True, notes=notes)
    return orders


def _size_orders(
    context: PlanContext,
    proposal: Proposal,
    delta: np.ndarray,
    liquidate: np.ndarray,
    *,
    toward_zero: bool,
    notes: list[str],
) -> Orders:
    """Quantities for the desired changes ``delta`` (USD per symbol), funded; ``notes`` is copied."""
    notes = list(notes)
    reasons = dict(proposal.reasons)
    whole = context.whole_shares
    sell_qty, sell_continuous, dropped = _size_sells(context, delta, liquidate, whole, toward_zero, notes)
    prices = context.inputs.prices
    cash_rounded = _cash_after_sells(context, sell_qty * prices)
    if cash_rounded < -USD_SLACK:
        # Cash sits near 0 after covering the withdrawal: nothing is left for buys.
        sell_qty = sell_qty + _raise_cash(context, sell_qty, -cash_rounded, whole, reasons, notes)
        buy_qty = np.zeros_like(sell_qty)
    else:
        budget = min(cash_rounded, _cash_after_sells(context, sell_continuous * prices))
        budget -= context.cash_target * context.total_usd
        buy_usd = np.where(delta > 0, delta, 0.0)
        small = (buy_usd > 0) & (buy_usd < context.policy.trading.min_trade_usd)
        if any_true(small):
            buy_usd[small] = 0.0
            dropped += int(np.count_nonzero(small))
        buys = size_buys(context, buy_usd, budget, whole, toward_zero=toward_zero)
        buy_qty = buys.quantity
        notes.extend(buys.notes)
        dropped += buys.dropped
    if dropped:
        minimum = format_usd(context.policy.trading.min_trade_usd)
        notes.append(f"{dropped} trade(s) below the {minimum} minimum left out")
    return _orders(context, sell_qty, buy_qty, reasons, tuple(notes))


def _desired_trades(
    context: PlanContext, proposal: Proposal, strategy: PlanningStrategy, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(change in value per symbol in USD, positions to sell entirely, whether the turnover cap bound)."""
    values = context.values_usd
    target = np.asarray(proposal.target_values_usd, dtype=float)
    if target.shape != values.shape or not np.isfinite(target).all():
        raise ConfigurationError(
            f"rebalancing_strategy: {strategy.name} proposed {target.shape} target values, "
            f"expected {values.shape[0]} finite amounts"
        )
    target = np.maximum(target, 0.0)
    delta = target - values
    tradable = context.tradable
    if not all_true(tradable):
        frozen = ~tradable & (np.abs(delta) >= max(context.policy.trading.min_trade_usd, 0.01))
        if any_true(frozen):
            names = ", ".join(s for s, f in zip(context.symbols, frozen.tolist(), strict=True) if f)
            notes.append(f"do not trade: {names} left as held")
        delta[~tradable] = 0.0
    if not strategy.sells and context.inputs.cash_flow_usd >= 0:
        skipped = int(np.count_nonzero(delta <= -max(context.policy.trading.min_trade_usd, 0.01)))
        if skipped:
            notes.append(f"strategy {strategy.name} does not sell: {skipped} sell(s) left out")
        delta = np.maximum(delta, 0.0)
    liquidate = (target <= 0) & (delta < 0)

    cap = context.policy.trading.max_turnover
    traded = sum_of(np.abs(delta))
    total = context.total_usd
    if cap is None or traded <= 2 * cap * total * (1 + 1e-12):
        return delta, liquidate, False
    factor = 2 * cap * total / traded
    notes.append(
        f"turnover cap {cap:.1%}: every trade scaled to {factor:.0%} of the plan "
        f"({traded / (2 * total):.1%} one-way wanted)"
    )
    return delta * factor, np.zeros_like(liquidate), True


def _size_sells(
    context: PlanContext,
    delta: np.ndarray,
    liquidate: np.ndarray,
    whole: np.ndarray,
    toward_zero: bool,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, int]:
    """(sell quantities, continuous sell quantities, sells dropped below the minimum), shares."""
    selling = delta < 0
    if not any_true(selling):
        return np.zeros_like(delta), np.zeros_like(delta), 0
    quantities, prices = context.inputs.quantities, context.inputs.prices
    continuous = np.where(selling, np.minimum(-delta / prices, quantities), 0.0)
    if any_true(liquidate):
        continuous[liquidate] = quantities[liquidate]
    quantity = np.minimum((round_down if toward_zero else round_up)(continuous, whole), quantities)
    if any_true(liquidate):
        quantity[liquidate] = quantities[liquidate]
    # Continuous notionals decide, so that whole-share and fractional plans drop the same sells;
    # rounding toward zero (under the cap) can also take a sell below the limits.
    min_trade = context.policy.trading.min_trade_usd
    small = selling & (continuous * prices < min_trade)
    if toward_zero:
        small |= (quantity > 0) & (quantity * prices < min_trade)
    uneconomic = _uneconomic(context, continuous * prices, selling) & ~small
    if toward_zero:
        uneconomic |= _uneconomic(context, quantity * prices, quantity > 0) & ~small
    drop = small | uneconomic
    if any_true(drop):
        continuous[drop] = 0.0
        quantity[drop] = 0.0
        if any_true(uneconomic):
            notes.append(f"{int(np.count_nonzero(uneconomic))} sell(s) costing more than they raise left out")
    return quantity, continuous, int(np.count_nonzero(small))


def _uneconomic(context: PlanContext, notional: np.ndarray, active: np.ndarray) -> np.ndarray:
    """A sell whose commission eats its proceeds leaves less cash than not selling."""
    costs = context.policy.costs
    if costs.commission_per_trade_usd == 0:
        return np.zeros_like(active)
    return active & (notional * (1 - costs.variable_rate) <= costs.commission_per_trade_usd)


def _cash_after_sells(context: PlanContext, sell_notional: np.ndarray) -> float:
    """Available cash plus net proceeds of the sells (USD)."""
    costs = context.policy.costs
    proceeds = sum_of(sell_notional)
    count = int(np.count_nonzero(sell_notional))
    return context.available_cash_usd + proceeds * (1 - costs.variable_rate) - costs.commission_per_trade_usd * count


def _raise_cash(
    context: PlanContext,
    sell_qty: np.ndarray,
    shortfall_usd: float,
    whole: np.ndarray,
    reasons: dict[str, str],
    notes: list[str],
) -> np.ndarray:
    """Extra shares to sell (shape (N,)) so that net proceeds cover ``shortfall_usd``.

    Sells the most overweight tradable holdings first (reverse water-filling on what remains
    after the planned sells), rounded up. Raises `ConfigurationError` when everything tradable
    cannot cover it.
    """
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    remaining = context.inputs.quantities - sell_qty
    remaining_usd = remaining * prices
    movable = context.tradable & (remaining > 0)
    fresh = sell_qty == 0  # a holding not sold yet pays a commission of its own
    # The gross amount depends on how many new trades pay a commission; a few passes settle it.
    new_trades = 0
    extra_usd = np.zeros_like(remaining_usd)
    for _ in range(3):
        gross = (shortfall_usd + fee * new_trades) / (1 - rate)
        extra_usd = remaining_usd - drain(remaining_usd, context.targets, movable, gross)
        count = int(np.count_nonzero((extra_usd > 0) & fresh))
        if count == new_trades:
            break
        new_trades = count
    extra = np.minimum(round_up(extra_usd / prices, whole), remaining)
    extra = np.where(remaining - extra <= remaining * 1e-12, remaining, extra)
    raised = sum_of(extra * prices) * (1 - rate) - fee * int(np.count_nonzero((extra > 0) & fresh))
    # Only a withdrawal leaves cash negative: every kept sell nets more than its commission.
    what = f"the {format_usd(context.inputs.cash_flow_usd)} withdrawal"
    if raised < shortfall_usd - USD_SLACK:
        raise ConfigurationError(
            f"cash_flow_usd: {what} needs {format_usd(shortfall_usd - raised)} more than cash and the "
            "tradable holdings can raise"
        )
    reason = f"raise cash for {what}"
    for i in np.flatnonzero((extra > 0) & fresh).tolist():
        reasons[context.symbols[i]] = reason
    notes.append(f"{reason}: {int(np.count_nonzero(extra))} sell(s) added")
    return extra


def _orders(
    context: PlanContext, sell_qty: np.ndarray, buy_qty: np.ndarray, reasons: dict[str, str], notes: tuple[str, ...]
) -> Orders:
    prices = context.inputs.prices
    # A symbol is sold or bought, never both: one pass over the traded symbols serves both sides.
    traded = sell_qty + buy_qty
    notional = traded * prices
    cost = context.policy.costs.cost_usd(notional)
    sold = sum_of(sell_qty * prices)
    bought = sum_of(notional) - sold
    total_cost = sum_of(cost)
    cash_after = context.available_cash_usd + sold - bought - total_cost
    if -1e-6 * max(1.0, context.total_usd) < cash_after < 0:
        cash_after = 0.0  # float noise: sells raise at least the budget, buys spend at most it
    return Orders(
        trades=_trades(context, traded, sell_qty > 0, notional, cost, reasons),
        notes=notes,
        quantities_after=context.inputs.quantities - sell_qty + buy_qty,
        cash_after_usd=cash_after,
        traded_usd=sold + bought,
        cost_usd=total_cost,
    )


def _trades(
    context: PlanContext,
    quantity: np.ndarray,
    sell: np.ndarray,
    notional: np.ndarray,
    cost: np.ndarray,
    reasons: dict[str, str],
) -> tuple[Trade, ...]:
    """Sells first, then buys, each group by symbol; the default reason where the proposal gave none."""
    symbols = context.symbols
    indices = np.flatnonzero(quantity).tolist()
    if not indices:
        return ()
    is_sell = sell[indices].tolist()
    missing = [i for i in indices if not reasons.get(symbols[i])]
    defaults = dict(zip(missing, holding_sentences(context, missing), strict=True))
    quantities = quantity[indices].tolist()
    prices = context.inputs.prices[indices].tolist()
    notionals = notional[indices].tolist()
    costs = cost[indices].tolist()
    order = sorted(range(len(indices)), key=lambda k: (not is_sell[k], symbols[indices[k]]))
    return tuple(
        Trade(
            symbols[indices[k]],
            "sell" if is_sell[k] else "buy",
            quantities[k],
            prices[k],
            notionals[k],
            costs[k],
            defaults.get(indices[k]) or reasons[symbols[indices[k]]],
        )
        for k in order
    )
