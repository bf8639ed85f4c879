"""The finishing step shared by every strategy: continuous target values -> orders.

Rules enforced here, whatever the strategy proposed (in this order):

1. Do-not-trade symbols keep their quantity; a strategy with ``sells = False`` sells nothing
   unless a withdrawal is planned (cash-flow rebalancing raises the withdrawal by selling).
2. No shorts: a sell never exceeds the quantity held; a target value of 0 sells the whole
   position, fractional remainder included.
3. The one-way turnover cap (sum |notional| / (2 x total)) scales every trade by one factor.
4. Quantities: 9 decimals where fractions are allowed (sells round up, buys down, by at most a
   nano-share). A whole-share trade rounds down or up, whichever leaves the holding nearer its
   target (`shares.whole_by_deviation`), so it never ends past the far edge of its band when a
   share less stays inside; rounding never sells the last share of a holding whose target is
   above zero. When the cap binds, before or after rounding, everything rounds toward zero.
5. Trades whose continuous notional is below ``min_trade_usd`` are dropped, a whole-share trade
   rounds to a count that meets it (or to none), and sells whose commission eats their proceeds
   are dropped.
6. If a withdrawal leaves cash negative after the sells, sells from the most overweight tradable
   holdings raise the rest (they may exceed the turnover cap), and nothing is bought. Each is at
   least the minimum trade and keeps the last share of a positive target while others can pay;
   only when no such plan covers it are positions emptied, then sells below the minimum made
   (with a note); when even selling every tradable holding cannot, `ConfigurationError`.
7. Buys are funded by cash + sell proceeds - sell costs - the cash buffer; see `funding.size_buys`
   (the top-up never takes a holding above its target plus its band).
8. Whole-share sells rounded up whose proceeds no buy used lose a share while that lowers drift,
   and the final guard replaces a plan that would leave drift above drift before by the nearest
   plan that does not (at worst, no trade); see `guard`.

Notes are written from the final quantities. Cash after trading is never negative. Amounts are
USD, quantities shares, arrays shape (N,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigurationError
from .arrays import all_true, any_true, sum_of
from .base import PlanningStrategy, Proposal
from .funding import USD_SLACK, size_buys
from .guard import guard, shrink_idle_sells
from .inputs import PlanContext
from .needs import format_usd, holding_sentences
from .results import Trade
from .shares import WHOLE_SLACK, round_down, round_up, sellable, whole_by_deviation
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


class _Sized(NamedTuple):
    """Quantities before the guard: signed shares per symbol (> 0 buy), reasons, notes so far,
    where a whole-share sell was rounded up, the continuous buys (USD) the strategy wanted, the
    cash above the buffer its continuous plan leaves (USD; < 0 when it wants more), and where
    sells were added or enlarged to pay a withdrawal."""

    quantity: np.ndarray
    reasons: dict[str, str]
    notes: list[str]
    rounded_up: np.ndarray
    wanted_buys_usd: np.ndarray
    planned_idle_usd: float
    raised: np.ndarray


def finalize(context: PlanContext, proposal: Proposal, strategy: PlanningStrategy) -> Orders:
    """Orders for ``proposal`` under the context's policy; see the module docstring for the rules.

    Raises `ConfigurationError` ("cash_flow_usd: ...") when a withdrawal exceeds what cash and
    the tradable holdings can raise, or ("rebalancing_strategy: ...") for a malformed proposal.
    """
    notes = list(proposal.notes)
    delta, liquidate, capped = _desired_trades(context, proposal, strategy, notes)
    sized = _size_orders(context, proposal, delta, liquidate, toward_zero=capped, notes=notes)
    cap = context.policy.trading.max_turnover
    traded = sum_of(np.abs(sized.quantity) * context.inputs.prices) if cap is not None and not capped else 0.0
    if cap is not None and not capped and traded > 2 * cap * context.total_usd * (1 + 1e-12):
        # Under the cap before rounding, over it after rounding up: round everything toward zero.
        sized = _size_orders(context, proposal, delta, liquidate, toward_zero=True, notes=notes)
    quantity, shrink_notes = shrink_idle_sells(context, sized.quantity, sized.rounded_up)
    withdrawal = context.available_cash_usd < 0
    quantity, guard_notes = guard(context, quantity, withdrawal=withdrawal)
    orders = _orders(context, quantity, sized.reasons, ())
    values_after = orders.quantities_after * context.inputs.prices
    strategy_notes = strategy.final_notes(context, values_after, sum_of(values_after) + orders.cash_after_usd)
    final_notes = [
        *sized.notes,
        *_withdrawal_notes(context, sized.raised, quantity),
        *shrink_notes,
        *guard_notes,
        *_idle_cash_notes(context, proposal, sized, orders),
        *strategy_notes,
    ]
    return Orders(
        trades=orders.trades,
        notes=tuple(final_notes),
        quantities_after=orders.quantities_after,
        cash_after_usd=orders.cash_after_usd,
        traded_usd=orders.traded_usd,
        cost_usd=orders.cost_usd,
    )


def _withdrawal_notes(context: PlanContext, raised: np.ndarray, quantity: np.ndarray) -> list[str]:
    """The sells a withdrawal added, and the wanted holdings it empties, as the final orders make them."""
    kept = raised & (quantity < 0)
    if not any_true(kept):
        return []
    what = f"the {format_usd(context.inputs.cash_flow_usd)} withdrawal"
    notes = [f"raise cash for {what}: {int(np.count_nonzero(kept))} sell(s) added"]
    emptied = kept & (context.targets > 0) & (context.inputs.quantities + quantity <= WHOLE_SLACK)
    if any_true(emptied):
        names = ", ".join(s for s, e in zip(context.symbols, emptied.tolist(), strict=True) if e)
        notes.append(f"{what} needs every share of {names}")
    return notes


def _idle_cash_notes(context: PlanContext, proposal: Proposal, sized: _Sized, orders: Orders) -> list[str]:
    """How much cash above the buffer the final orders leave uninvested, and why: the part the
    strategy's own plan leaves (its ``idle_cash_reason``), and the rest: what the sells paying a
    withdrawal raise beyond it, or whole shares that cash could not buy (naming the cheapest)."""
    idle = orders.cash_after_usd - context.cash_target * context.total_usd
    least = max(context.policy.trading.min_trade_usd, 0.001 * context.total_usd)
    if idle <= least:
        return []
    notes = []
    by_design = min(max(sized.planned_idle_usd, 0.0), idle) if proposal.idle_cash_reason else 0.0
    if by_design > least:
        notes.append(f"about {format_usd(by_design)} stays in cash above the buffer: {proposal.idle_cash_reason}")
    rest = idle - by_design
    if rest <= least:
        return notes
    more = " more" if notes else ""
    if any_true(sized.raised):
        notes.append(
            f"about {format_usd(rest)}{more} stays in cash above the buffer: the sells that pay the withdrawal "
            "raise more than it (whole shares, the minimum trade), and a plan that pays one buys nothing"
        )
        return notes
    prices = context.inputs.prices
    bought = np.maximum(orders.quantities_after - context.inputs.quantities, 0.0) * prices
    short = context.whole_shares & (sized.wanted_buys_usd - bought >= least)
    if any_true(short):
        cheapest = int(np.argmin(np.where(short, prices, np.inf)))
        notes.append(
            f"whole shares: about {format_usd(rest)}{more} stays in cash above the buffer "
            f"(a share of {context.symbols[cheapest]} costs {format_usd(float(prices[cheapest]))})"
        )
    return notes


def _size_orders(
    context: PlanContext,
    proposal: Proposal,
    delta: np.ndarray,
    liquidate: np.ndarray,
    *,
    toward_zero: bool,
    notes: list[str],
) -> _Sized:
    """Quantities for the desired changes ``delta`` (USD per symbol), funded; ``notes`` is copied."""
    notes = list(notes)
    reasons = dict(proposal.reasons)
    whole = context.whole_shares
    prices = context.inputs.prices
    sell_qty, sell_continuous, dropped = _size_sells(context, delta, liquidate, whole, toward_zero, notes)
    rounded_up = whole & (sell_qty > sell_continuous + WHOLE_SLACK)
    cash_rounded = _cash_after_sells(context, sell_qty * prices)
    buy_usd = np.where(delta > 0, delta, 0.0)
    raised = np.zeros_like(whole)
    if cash_rounded < -USD_SLACK:
        # Cash sits near 0 after covering the withdrawal: nothing is left for buys.
        extra = _raise_cash(context, sell_qty, -cash_rounded, whole, reasons, notes)
        raised = extra > 0
        rounded_up |= whole & raised
        sell_qty = sell_qty + extra
        buy_qty = np.zeros_like(sell_qty)
    else:
        budget = cash_rounded - context.cash_target * context.total_usd
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
    planned_idle = context.available_cash_usd - sum_of(delta) - context.cash_target * context.total_usd
    return _Sized(buy_qty - sell_qty, reasons, notes, rounded_up, buy_usd, planned_idle, raised)


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
    # A holding the targets still want is never emptied by its own sell (the rounding caps it).
    liquidate = (target <= 0) & (delta < 0) & (context.targets <= 0)

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
    min_trade = context.policy.trading.min_trade_usd
    quantity = (round_down if toward_zero else round_up)(continuous, whole)
    # Only the sells need their caps and roundings, and only a sell within a share of the whole
    # position can empty it: the caps are computed for those alone.
    at = np.flatnonzero(selling & ~liquidate)
    held, wanted, whole_at = quantities[at], continuous[at], whole[at]
    near = wanted > held - 1.0  # a sell of a share less than everything or more
    most = None
    if any_true(near):
        most = np.full(at.size, np.inf)
        most[near] = _keep_positive_targets(context, at[near], held[near], whole_at[near])
    if not toward_zero and any_true(whole_at):
        on = at[whole_at]
        gap = context.values_usd[on] - context.target_values_usd[on]
        capped = None if most is None else most[whole_at]
        quantity[on] = whole_by_deviation(continuous[on], capped, gap, prices[on], min_trade)
    if most is not None:
        quantity[at] = np.minimum(quantity[at], most)
    if any_true(liquidate):
        quantity[liquidate] = quantities[liquidate]
    # Continuous notionals decide, so that whole-share and fractional plans drop the same sells.
    small = selling & (continuous * prices < min_trade)
    if toward_zero or most is not None:  # rounding down or a cap can take a sell below the minimum
        small |= (quantity > 0) & (quantity * prices < min_trade)
    uneconomic = _uneconomic(context, quantity * prices, quantity > 0) & ~small
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
    after the planned sells), rounded up, each new sell at least the minimum trade. Three tries,
    each allowed only when the one before cannot cover the shortfall: keeping the last share of
    every holding with a positive target; emptying positions; selling below the minimum (noted).
    Raises `ConfigurationError` when everything tradable cannot cover it.
    """
    remaining = context.inputs.quantities - sell_qty
    keeping = _keep_positive_targets(context, np.arange(len(remaining)), remaining, whole)
    what = f"the {format_usd(context.inputs.cash_flow_usd)} withdrawal"
    for capacity, below_minimum in ((keeping, False), (remaining, False), (remaining, True)):
        extra = _drain_for_cash(context, sell_qty, capacity, shortfall_usd, whole, below_minimum=below_minimum)
        if extra is not None:
            break
    else:
        prices = context.inputs.prices
        fee, rate = context.policy.costs.commission_per_trade_usd, context.policy.costs.variable_rate
        everything = np.where(context.tradable, remaining, 0.0)
        raised = sum_of(everything * prices) * (1 - rate) - fee * int(np.count_nonzero(everything * (sell_qty == 0)))
        raise ConfigurationError(
            f"cash_flow_usd: {what} needs {format_usd(shortfall_usd - raised)} more than cash and the "
            "tradable holdings can raise"
        )
    fresh = (extra > 0) & (sell_qty == 0)
    for i in np.flatnonzero(fresh).tolist():
        reasons[context.symbols[i]] = f"raise cash for {what}"
    if below_minimum:
        prices = context.inputs.prices
        small = fresh & (extra * prices < context.policy.trading.min_trade_usd)
        if any_true(small):
            names = ", ".join(s for s, e in zip(context.symbols, small.tolist(), strict=True) if e)
            minimum = format_usd(context.policy.trading.min_trade_usd)
            notes.append(f"no plan meets the {minimum} minimum: {names} sold below it to cover {what}")
    return extra


def _keep_positive_targets(
    context: PlanContext, at: np.ndarray, quantities: np.ndarray, whole: np.ndarray
) -> np.ndarray:
    """Shares a sell may take of ``quantities`` (shares held, shape of ``at``) of the holdings at
    indices ``at`` (``whole``: theirs) without emptying one whose target is above zero: a
    whole-share holding keeps its last share, a fractional one the minimum trade's worth (at
    least a cent's), so that it stays a position rather than dust."""
    positive = context.targets[at] > 0
    keep_usd = max(context.policy.trading.min_trade_usd, 0.01)
    # Down to a nano-share, as `shares.round_down` does for fractions.
    fractional = np.floor(np.maximum(quantities - keep_usd / context.inputs.prices[at], 0.0) * 1e9) / 1e9
    return np.where(positive & ~whole, fractional, sellable(quantities, positive & whole))


def _drain_for_cash(
    context: PlanContext,
    sell_qty: np.ndarray,
    capacity: np.ndarray,
    shortfall_usd: float,
    whole: np.ndarray,
    *,
    below_minimum: bool,
) -> np.ndarray | None:
    """Extra shares (at most ``capacity`` per symbol) whose net proceeds cover ``shortfall_usd``,
    most overweight first; None when they cannot. A new sell below the minimum trade is raised to
    it, or, where the capacity is too small for that, the symbol is left out (unless
    ``below_minimum``). Each pass covers the shortfall or takes a symbol out, so N + 1 suffice."""
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    prices = context.inputs.prices
    min_trade = context.policy.trading.min_trade_usd
    remaining = context.inputs.quantities - sell_qty
    fresh = sell_qty == 0  # a holding not sold yet pays a commission of its own
    least = round_up(min_trade / prices, whole)
    movable = context.tradable & (capacity > WHOLE_SLACK * np.where(whole, 1.0, 1e-9))
    extra = np.zeros_like(remaining)
    for _ in range(len(extra) + 1):
        selling = extra > 0
        raised = sum_of(extra * prices) * (1 - rate) - fee * int(np.count_nonzero(selling & fresh))
        need = shortfall_usd - raised
        if need <= USD_SLACK:
            return extra
        open_ = movable & (extra < capacity - WHOLE_SLACK)
        if not any_true(open_):
            return None
        left_usd = (remaining - extra) * prices
        # The gross amount depends on how many new trades pay a commission; a few passes settle it.
        new_trades, more_usd = 0, np.zeros_like(extra)
        for _ in range(3):
            gross = (need + fee * new_trades) / (1 - rate)
            more_usd = left_usd - drain(left_usd, context.targets, open_, gross)
            count = int(np.count_nonzero((more_usd > 0) & fresh & ~selling))
            if count == new_trades:
                break
            new_trades = count
        more = round_up(more_usd / prices, whole)
        # A shortfall of a fraction of a cent still needs a share (or a nano-share) sold.
        more = np.where((more_usd > 0) & (more == 0), np.where(whole, 1.0, 1e-9), more)
        added = np.minimum(extra + more, capacity)
        # Selling nearly all of a fractional position sells all of it.
        added = np.where(~whole & (remaining - added <= remaining * 1e-12), remaining, added)
        too_small = fresh & (added > 0) & (added * prices < min_trade)
        if any_true(too_small) and not below_minimum:
            raisable = too_small & (least <= capacity + WHOLE_SLACK)
            added = np.where(raisable, np.maximum(added, np.minimum(least, capacity)), added)
            stuck = too_small & ~raisable
            added[stuck] = 0.0
            movable &= ~stuck
        extra = added
    return None


def _orders(context: PlanContext, quantity: np.ndarray, reasons: dict[str, str], notes: tuple[str, ...]) -> Orders:
    """The orders for signed quantities (shares, > 0 buy, < 0 sell, shape (N,))."""
    prices = context.inputs.prices
    sell = quantity < 0
    traded = np.abs(quantity)
    notional = traded * prices
    cost = context.policy.costs.cost_usd(notional)
    sold = sum_of(np.where(sell, notional, 0.0))
    bought = sum_of(notional) - sold
    total_cost = sum_of(cost)
    cash_after = context.available_cash_usd + sold - bought - total_cost
    if -1e-6 * max(1.0, context.total_usd) < cash_after < 0:
        cash_after = 0.0  # float noise: sells raise at least the budget, buys spend at most it
    return Orders(
        trades=_trades(context, traded, sell, notional, cost, reasons),
        notes=notes,
        quantities_after=context.inputs.quantities + quantity,
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
