"""The last word on every plan: never further from the targets than before it traded.

Drift is `drift_of` (sum |w - t| / 2, cash included) of the holdings and cash the trades leave,
their estimated costs paid: the figure the plan reports as drift after trading. A trade that
brings the portfolio nearer its targets by less than it costs does not pass.

`shrink_idle_sells`: whole-share sells that finalize rounded, and whose proceeds no buy used,
lose a share while that lowers drift. `guard`: a plan whose drift is above drift before is cut
back, trade by trade and share by share, to the nearest plan that is not; failing that, it is
rebuilt from no trade, taking the plan's own trades only where they do not raise drift (at worst
nothing is traded). A withdrawal must be paid, so there the cuts stop where cash would go below
zero and a note says how much drift rises.

Every plan these return keeps what finalize enforced: the same symbols traded on the same side,
no trade larger than before, every trade at least the minimum, no sell costing more than it
raises, and cash after costs never below the lower of the buffer and the cash before trading
(zero for a withdrawal). Quantities are signed shares per symbol (> 0 buy, < 0 sell), shape
(N,); amounts are USD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import any_true, sum_of
from .inputs import PlanContext
from .needs import format_usd
from .shares import WHOLE_SLACK

# Drift differences below this (a millionth of a basis point of value) are float noise.
DRIFT_TOLERANCE = 1e-10
# Cash may miss its floor by this much (USD): the sums behind it carry float noise.
CASH_SLACK_USD = 1e-7
# Each step of a search moves one symbol; a plan never needs more than a few per symbol.
_STEPS_PER_SYMBOL = 8


@dataclass(frozen=True, eq=False)
class _Book:
    """What every step of a search reads: a plan's position relative to the targets, in USD.

    ``gaps_usd``: value minus target value per symbol before trading. ``cash_gap_usd``: cash
    minus the buffer before trading. ``floor_usd``: the least cash after costs a plan may leave.
    ``targets`` and ``cash_target``: the effective target weights (they sum to 1).
    """

    prices: np.ndarray
    targets: np.ndarray
    cash_target: float
    gaps_usd: np.ndarray
    cash_gap_usd: float
    cash_usd: float
    floor_usd: float
    total_usd: float
    rate: float
    fee: float
    min_trade_usd: float
    whole: np.ndarray

    @classmethod
    def of(cls, context: PlanContext, plan_qty: np.ndarray) -> _Book:
        costs = context.policy.costs
        prices = context.inputs.prices
        cash = context.available_cash_usd
        buffer = context.cash_target * context.total_usd
        book = cls(
            prices=prices,
            targets=context.targets,
            cash_target=context.cash_target,
            gaps_usd=context.values_usd - context.target_values_usd,
            cash_gap_usd=cash - buffer,
            cash_usd=cash,
            floor_usd=0.0,
            total_usd=context.total_usd,
            rate=costs.variable_rate,
            fee=costs.commission_per_trade_usd,
            min_trade_usd=context.policy.trading.min_trade_usd,
            whole=context.whole_shares,
        )
        # The plan itself meets its floor: never ask a cut-back version for more.
        floor = min(buffer, max(cash, 0.0), book.cash_after(plan_qty))
        object.__setattr__(book, "floor_usd", floor)
        return book

    def costs(self, qty: np.ndarray, prices: np.ndarray | None = None) -> np.ndarray:
        notional = np.abs(qty) * (self.prices if prices is None else prices)
        return np.where(notional > 0, self.fee + notional * self.rate, 0.0)

    def cash_after(self, qty: np.ndarray) -> float:
        return self.cash_usd - sum_of(qty * self.prices) - sum_of(self.costs(qty))

    def drift(self, qty: np.ndarray) -> float:
        """Drift after the trades ``qty``, their estimated costs paid (as the plan reports it)."""
        trade = qty * self.prices
        cost = sum_of(self.costs(qty))
        holdings = sum_of(np.abs(self.gaps_usd + trade + self.targets * cost))
        cash = abs(self.cash_gap_usd - sum_of(trade) - cost * (1 - self.cash_target))
        return (holdings + cash) / (2 * (self.total_usd - cost))

    def drifts_if(self, qty: np.ndarray, at: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(drift, cash after costs) of ``qty`` with symbol ``at[k]``'s quantity replaced by
        ``new[k]``, for each k. Costs lower the value the targets apply to, so every holding's
        gap moves with them: one row of gaps per candidate (shape (K, N))."""
        trade = qty * self.prices
        costs = self.costs(qty)
        moved = (new - qty[at]) * self.prices[at]
        cost = sum_of(costs) + self.costs(new, self.prices[at]) - costs[at]
        traded = sum_of(trade) + moved
        gaps = (self.gaps_usd + trade)[None, :] + np.outer(cost, self.targets)
        gaps[np.arange(at.size), at] += moved
        holdings = np.abs(gaps).sum(axis=1)
        cash = np.abs(self.cash_gap_usd - traded - cost * (1 - self.cash_target))
        return (holdings + cash) / (2 * (self.total_usd - cost)), self.cash_usd - traded - cost

    def allowed(self, candidate: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Where a candidate quantity is a trade finalize would keep: none, or at least the
        minimum trade and, for a sell, raising more than its commission."""
        notional = np.abs(candidate) * prices
        big_enough = notional >= self.min_trade_usd - 1e-8
        economic = (candidate > 0) | (notional * (1 - self.rate) > self.fee)
        return (candidate == 0) | (big_enough & economic)

    def best_step(self, qty: np.ndarray, candidates: list[np.ndarray], *, at_most: float) -> tuple[int, float] | None:
        """The (symbol, new quantity) among ``candidates`` (arrays of new quantities per symbol,
        NaN where there is none) that leaves the lowest drift, if at most ``at_most`` and without
        leaving cash below the floor; None otherwise."""
        best: tuple[float, int, float] | None = None
        for candidate in candidates:
            at = np.flatnonzero(~np.isnan(candidate) & (candidate != qty))
            if not at.size:
                continue
            new = candidate[at]
            drifts, cash = self.drifts_if(qty, at, new)
            ok = self.allowed(new, self.prices[at]) & (cash >= self.floor_usd - CASH_SLACK_USD)
            if not any_true(ok):
                continue
            k = int(np.argmin(np.where(ok, drifts, np.inf)))
            if best is None or drifts[k] < best[0]:
                best = (float(drifts[k]), int(at[k]), float(new[k]))
        if best is None or best[0] > at_most:
            return None
        return best[1], best[2]

    def nearest_count(self, qty: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Per symbol, the quantity between ``low`` and ``high`` (signed shares) that leaves the
        holding nearest its target: whole shares where the symbol trades in them."""
        exact = -self.gaps_usd / self.prices
        rounded = np.where(self.whole, np.round(exact), exact)
        return np.clip(rounded, np.minimum(low, high), np.maximum(low, high))


def shrink_idle_sells(context: PlanContext, qty: np.ndarray, rounded: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``qty`` with its whole-share sells that finalize rounded up (``rounded``, bool shape (N,))
    cut by a share where that lowers drift: only possible when no buy uses the share's proceeds
    (cash stays above its floor), and only useful for a sell rounded past its target.

    A sell rounded past its target by y (USD, less than a share p) and sold into idle cash adds
    2 x min(y, cash above the buffer) to 2 x total x drift; a share less takes that back, and a
    second share less would move the holding away from its target by as much as cash nears its
    own. So each sell loses at most one share, the largest gains first, while cash allows.
    """
    if not any_true(rounded):
        return qty, []
    prices = context.inputs.prices
    trade = qty * prices
    gaps_after = context.values_usd + trade - context.target_values_usd
    # Only a sell of whole shares loses one: a fractional remainder sold off stays as it is.
    whole_sell = (qty <= -1 + WHOLE_SLACK) & (np.abs(qty - np.round(qty)) <= WHOLE_SLACK)
    candidates = np.flatnonzero(rounded & whole_sell & (gaps_after < 0))
    if not candidates.size:
        return qty, []
    costs = context.policy.costs
    rate, fee = costs.variable_rate, costs.commission_per_trade_usd
    min_trade = context.policy.trading.min_trade_usd
    buffer = context.cash_target * context.total_usd
    cash_before = context.available_cash_usd
    cash_gap = cash_before - buffer - sum_of(trade)
    cash = cash_before - sum_of(trade) - sum_of(costs.cost_usd(trade))
    floor = min(buffer, max(cash_before, 0.0), cash)
    cut = qty.copy()
    remaining = candidates.tolist()
    while remaining:
        best, best_change = -1, -DRIFT_TOLERANCE * context.total_usd
        for i in remaining:
            price, under = float(prices[i]), -float(gaps_after[i])
            left = -cut[i] - 1
            if left > 0 and (left * price < min_trade or left * price * (1 - rate) <= fee):
                continue
            if cash - price * (1 - rate) + (fee if left == 0 else 0.0) < floor - CASH_SLACK_USD:
                continue
            change = abs(price - under) - under + abs(cash_gap - price) - abs(cash_gap)
            if change < best_change:
                best, best_change = i, change
        if best < 0:
            break
        price = float(prices[best])
        cash += -price * (1 - rate) + (fee if cut[best] == -1 else 0.0)
        cash_gap -= price
        cut[best] += 1
        remaining.remove(best)
    fewer = np.flatnonzero(cut != qty).tolist()
    if not fewer:
        return qty, []
    described = ", ".join(
        f"{context.symbols[i]} not sold" if cut[i] == 0 else f"{context.symbols[i]} a share fewer" for i in fewer
    )
    return cut, [f"whole shares: {described}, as no buy could use the proceeds of rounding up"]


def guard(context: PlanContext, qty: np.ndarray, *, withdrawal: bool) -> tuple[np.ndarray, list[str]]:
    """``qty`` if its drift is at most drift before; else the nearest plan whose drift is, with a
    note saying why (see the module docstring). ``withdrawal``: cash must end at zero or more."""
    before = context.drift
    book = _Book.of(context, qty)
    planned = book.drift(qty)
    if planned <= before + DRIFT_TOLERANCE:
        return qty, []
    cause = _cause(context, book, qty)
    cut = _descend(book, qty, qty != 0, whole_steps_only=False)
    after = book.drift(cut)
    if after > before + DRIFT_TOLERANCE and not withdrawal:
        cut = _build_up(book, qty)
        after = book.drift(cut)
        if after > before + DRIFT_TOLERANCE:  # float noise summed over many neutral steps
            cut, after = np.zeros_like(qty), before
    digits = 2 if f"{before:.2%}" != f"{planned:.2%}" else 4
    head = (
        f"{cause}: the planned trades would have left the portfolio further from its targets "
        f"(drift {before:.{digits}%} before, {planned:.{digits}%} after)"
    )
    if after > before + DRIFT_TOLERANCE:
        tail = (
            f"covering the {format_usd(context.inputs.cash_flow_usd)} withdrawal leaves drift at {after:.2%}, "
            "the least any plan that pays it reaches"
        )
    elif not any_true(cut != 0):
        tail = "no trade instead"
    else:
        tail = f"smaller trades instead (drift {after:.2%})"
    return cut, [f"{head}; {tail}"]


def _cause(context: PlanContext, book: _Book, qty: np.ndarray) -> str:
    trade = qty * book.prices
    free = sum_of(np.abs(book.gaps_usd + trade)) + abs(book.cash_gap_usd - sum_of(trade))
    if free <= 2 * book.total_usd * (context.drift + DRIFT_TOLERANCE):
        return "the estimated costs"
    if any_true((qty != 0) & context.whole_shares):
        return "whole shares"
    if context.policy.trading.min_trade_usd > 0:
        return f"the {format_usd(context.policy.trading.min_trade_usd)} minimum trade"
    return "the strategy's trades"


def _descend(book: _Book, qty: np.ndarray, movable: np.ndarray, *, whole_steps_only: bool) -> np.ndarray:
    """Cut ``qty`` back, one symbol per step, while drift falls: a whole share less, the trade
    dropped, or the trade shortened to where the holding is nearest its target."""
    qty = qty.copy()
    for _ in range(_STEPS_PER_SYMBOL * len(qty) + 1):
        active = movable & (qty != 0)
        if not any_true(active):
            break
        integral = book.whole & (np.abs(qty - np.round(qty)) <= WHOLE_SLACK)
        one_less = np.where(active & integral, qty - np.sign(qty), np.nan)
        candidates = [one_less]
        if not whole_steps_only:
            nearest = book.nearest_count(qty, np.zeros_like(qty), qty)
            candidates += [np.where(active, 0.0, np.nan), np.where(active, nearest, np.nan)]
        step = book.best_step(qty, candidates, at_most=book.drift(qty) - DRIFT_TOLERANCE)
        if step is None:
            break
        qty[step[0]] = step[1]
    return qty


def _build_up(book: _Book, plan: np.ndarray) -> np.ndarray:
    """From no trade, take the plan's trades (whole, up to where the holding is nearest its
    target, or a share at a time) in the order that lowers drift most, while none raises it."""
    qty = np.zeros_like(plan)
    first_whole = np.sign(plan) * np.maximum(1.0, np.ceil(book.min_trade_usd / book.prices - WHOLE_SLACK))
    for _ in range(_STEPS_PER_SYMBOL * len(plan) + 1):
        open_ = qty != plan
        if not any_true(open_):
            break
        integral = book.whole & (np.abs(plan - np.round(plan)) <= WHOLE_SLACK)
        share = np.where(qty == 0, first_whole, qty + np.sign(plan))
        share = np.where(np.abs(share) <= np.abs(plan), share, np.nan)
        candidates = [
            np.where(open_, plan, np.nan),
            np.where(open_ & integral, share, np.nan),
            np.where(open_, book.nearest_count(qty, qty, plan), np.nan),
        ]
        step = book.best_step(qty, candidates, at_most=book.drift(qty) + 1e-12)
        if step is None:
            break
        qty[step[0]] = step[1]
    return qty
