"""From a `PlanContext` to the parameters of the programs in programs.py, and from their answers
back to USD values per holding.

Programs work in fractions of total value (USD / ``total_usd``); arrays have one entry per symbol
(shape (N,)). Answers are cleaned before they become a proposal: solver noise zeroed, whole-share
trades made exact, buys trimmed to the cash the policy allows, and the rules checked once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import SolverFailed
from . import programs
from .inputs import PlanContext
from .needs import format_pp
from .shares import sellable

# Tie-break per unit of value traded: far below any drift or cost that matters (see MinimizeTrades).
TIE_WEIGHT = 1e-7
# Solvers meet constraints to about 1e-9 of value: the turnover cap is kept this far inside.
FEASIBILITY_MARGIN = 1e-8
# Trades smaller than this (USD, or this share of value: interior-point answers carry ~1e-10 of
# value on every holding) are solver noise.
NOISE_USD = 1e-6
NOISE_SHARE = 1e-9
# An interior-point answer keeps its bounds only to its feasibility tolerance (up to 1e-8, scaled by
# the data): a sell past the holding by less than this share of value sells the holding.
OVERSELL_SHARE = 1e-7
# No order is smaller than a cent, whatever the minimum trade says.
MIN_ORDER_USD = 0.01
# finalize measures a fractional trade after rounding its quantity to 1e-9 share: fractional trades
# clear the minimum by this much (relative, and USD) so that rounding never drops them.
MIN_TRADE_ROOM = 1e-6
MIN_TRADE_ROOM_USD = 1e-4
# A share worth less than this part of the portfolio (0.01%) moves a weight by less than the
# narrowest band a target above 0.4% gets: the programs treat such holdings as continuous. Counting
# hundreds of thousands of shares as integers ran HiGHS into its time limit (5 s a solve).
MATERIAL_SHARE_WEIGHT = 1e-4
# A violation proved least may grow by this much (weights) in the second pass.
VIOLATION_SLACK = 1e-9
# finalize's own tolerance when it compares spending with the cash available (USD).
FUNDING_SLACK_USD = 1e-7
RIDGE = 1e-12


@dataclass(frozen=True, eq=False)
class ScaledContext:
    """The context in fractions of total value: what every program needs besides its objective.

    ``sell_cap``: what may be sold (`sellable_shares`), ``buy_cap``: the most any buy could be
    (the funds, within the turnover cap), both 0 where the symbol may not trade. ``cash_floor``:
    cash after trading never ends below min(buffer, cash now): buys are funded, and a portfolio
    already short of its buffer never gets shorter.
    ``tie``: 1e-7 per unit traded, x 1 for the most urgent holding up to x 2 for the last in
    (urgency descending, symbol) order. ``violation_bound``: above any violation a plan can have.
    """

    total_usd: float
    w0: np.ndarray
    target: np.ndarray
    tradable: np.ndarray
    sell_cap: np.ndarray
    buy_cap: np.ndarray
    cash: float
    cash_floor: float
    buffer: float
    turnover_cap: float
    tie: np.ndarray
    violation_bound: float

    @classmethod
    def of(cls, context: PlanContext) -> ScaledContext:
        total = context.total_usd
        trading = context.policy.trading
        w0 = context.values_usd / total
        tradable = context.tradable
        sell_cap = np.where(tradable, sellable_shares(context) * context.inputs.prices / total, 0.0)
        cash = context.available_cash_usd / total
        funds = max(cash, 0.0) + float(sell_cap.sum())
        if trading.max_turnover is None:
            turnover_cap = 2 * funds + 1
        else:
            turnover_cap = max(2 * trading.max_turnover - FEASIBILITY_MARGIN, 0.0)
        urgency = np.abs(context.deviations) / context.bands
        order = np.lexsort((np.array(context.symbols), -urgency))
        rank = np.empty(len(order))
        rank[order] = np.arange(len(order))
        buffer = context.cash_target
        return cls(
            total_usd=total,
            w0=w0,
            target=context.targets,
            tradable=tradable,
            sell_cap=sell_cap,
            buy_cap=np.where(tradable, min(funds, turnover_cap), 0.0),
            cash=cash,
            cash_floor=min(buffer, cash),
            buffer=buffer,
            turnover_cap=turnover_cap,
            tie=TIE_WEIGHT * (1 + rank / max(len(order), 1)),
            violation_bound=float(w0.sum() + 2 * abs(cash) + 4 * buffer + 2 * len(order) + 1),
        )


def sellable_shares(context: PlanContext) -> np.ndarray:
    """Shares a plan may sell per symbol (shape (N,)): all of them, except that a whole-share
    holding whose target is above zero keeps its last share (`shares.sellable`)."""
    return sellable(context.inputs.quantities, context.whole_shares & (context.targets > 0))


def whole_in_program(context: PlanContext, tradable: np.ndarray) -> np.ndarray:
    """Where the programs count whole shares (bool, shape (N,)): whole-share holdings whose share
    is worth at least `MATERIAL_SHARE_WEIGHT` of the portfolio. The rest are continuous there and
    finalize rounds them."""
    material = context.inputs.prices >= MATERIAL_SHARE_WEIGHT * context.total_usd
    return context.whole_shares & tradable & material


def min_trade_weights(context: PlanContext, whole: np.ndarray) -> np.ndarray:
    """The least trade per holding (fractions of total value): exact where the program counts
    whole shares (``whole``), with room for finalize's rounding elsewhere (a share's worth for a
    whole-share holding the program treats as continuous)."""
    least_usd = max(context.policy.trading.min_trade_usd, MIN_ORDER_USD)
    rounding = np.where(context.whole_shares, context.inputs.prices, 0.0)
    continuous = least_usd * (1 + MIN_TRADE_ROOM) + MIN_TRADE_ROOM_USD + rounding
    return np.where(whole, least_usd, continuous) / context.total_usd


def risk_factor(cov: np.ndarray) -> np.ndarray:
    """Upper-triangular F with F'F = cov (+ a 1e-12 relative ridge), as `Estimates.risk_factor`."""
    size = cov.shape[0]
    ridge = RIDGE * max(float(np.mean(np.diag(cov))), 1e-300)
    try:
        return np.linalg.cholesky(cov + ridge * np.eye(size)).T
    except np.linalg.LinAlgError:
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        square_root = np.sqrt(np.clip(eigenvalues, 0, None))[:, None] * eigenvectors.T
        return np.linalg.qr(square_root, mode="r")


def rounding_chords(scaled: ScaledContext, share_value: np.ndarray, whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercept and slope (per share traded) of the line through |w0 + share_value x k - t| at the
    two whole share counts k around the target; zero where shares are fractional."""
    gap = scaled.w0 - scaled.target
    unit = np.where(whole, share_value, 1.0)
    below = np.floor(-gap / unit)
    at_below = np.abs(gap + unit * below)
    at_above = np.abs(gap + unit * (below + 1))
    slope = at_above - at_below
    return np.where(whole, at_below - slope * below, 0.0), np.where(whole, slope, 0.0)


def whole_share_bands(
    context: PlanContext, lower: np.ndarray, upper: np.ndarray, cost_bound: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weight limits widened, for whole-share holdings whose band holds no whole number of shares,
    to the nearest count outside it (the least excess a plan can have there).

    Returns (lower, upper, widened mask). An upper limit moved out gets room for the costs
    (weights after trading are value / (total - costs)).
    """
    whole = context.whole_shares & context.tradable
    widened = np.zeros(len(lower), dtype=bool)
    if not whole.any():
        return lower, upper, widened
    total = context.total_usd
    prices, values = context.inputs.prices, context.values_usd
    lowest = -np.floor(sellable_shares(context) + 1e-9)  # whole shares that can be sold
    first = np.maximum(np.ceil((lower * total - values) / prices - 1e-9), lowest)
    last = np.floor((upper * total - values) / prices + 1e-9)
    widened = whole & (first > last)
    if not widened.any():
        return lower, upper, widened
    below = np.where(last >= lowest, values + last * prices, -np.inf) / total
    above = (values + first * prices) / total
    up = widened & (above - upper <= lower - below)
    lower = np.where(widened & ~up, below, lower)
    upper = np.where(up, above / (1 - min(cost_bound, 0.5)) + FEASIBILITY_MARGIN, upper)
    return lower, upper, widened


def solve_with_fallback(
    context: PlanContext,
    values: Mapping[str, object],
    *,
    relaxed: Mapping[str, object],
    least: Mapping[str, object],
    scaled: ScaledContext,
    whole: bool = False,
) -> tuple[programs.Solution, tuple[str, ...]]:
    """Solve the trades MILP within the policy. When that is infeasible, with ``relaxed`` values:
    the least violation first (``least`` replaces the objective), then the usual objective with
    the violation capped at that least (or the least-violation answer itself when the solver finds
    none under that cap). Returns the solution and notes for the plan."""
    size = len(context.symbols)
    solution = programs.solve("trades", size, values, whole=whole)
    if solution is None:
        capped = {**values, **relaxed, "violation_cap": scaled.violation_bound}
        first = programs.solve("trades", size, {**capped, **least, "violation_weight": 1.0}, whole=whole, coarse=True)
        if first is None:
            raise SolverFailed("the rebalancing trades problem has no answer even with its limits relaxed")
        violation = 2 * float(first.values["shortfall"][0]) + float(first.values["excess"].sum())
        capped["violation_cap"] = violation * (1 + 1e-6) + VIOLATION_SLACK
        # At the solver's tolerances the cap can cut off the very answer that set it (share counts
        # in the hundreds of thousands): that answer, the least violation, is then the plan.
        solution = programs.solve("trades", size, capped, whole=whole) or first
    return solution, solution_notes(solution, scaled, context)


def solution_notes(solution: programs.Solution, scaled: ScaledContext, context: PlanContext) -> tuple[str, ...]:
    """Sentences for the plan: cash left below the buffer, a solver stopped at its time limit.

    A withdrawal not covered yet is not noted here: finalize sells what it still needs and says so.
    """
    notes = []
    shortfall = float(solution.values["shortfall"][0])
    if shortfall > 1e-7 and scaled.cash >= 0:
        limits = limits_in_force(context, cash_available=False)
        why = f"{limits} leave nothing more to sell" if limits else "there is nothing more to sell"
        notes.append(f"Cash stays {format_pp(shortfall)} of value below its {format_pp(scaled.buffer)} buffer: {why}.")
    if solution.status == programs.TIME_LIMIT:
        notes.append("The solver stopped at its time limit: the plan keeps every rule but may not be the best one.")
    return tuple(notes)


def limits_in_force(context: PlanContext, *, cash_available: bool = True) -> str:
    """The limits in force that can keep a plan from what it wants, named for a note: whole shares
    (only where some tradable holding trades in them), the do-not-trade list and the turnover cap
    (only when set), and the cash available (unless ``cash_available`` is False). "" for none."""
    limits = []
    if (context.whole_shares & context.tradable).any():
        limits.append("whole shares")
    if not context.tradable.all():
        limits.append("the do-not-trade list")
    if context.policy.trading.max_turnover is not None:
        limits.append("the turnover cap")
    if cash_available:
        limits.append("the cash available")
    if len(limits) <= 1:
        return "".join(limits)
    return f"{', '.join(limits[:-1])} and {limits[-1]}"


def values_after(context: PlanContext, solution: programs.Solution, whole: np.ndarray | None = None) -> np.ndarray:
    """USD value per holding after trading: noise removed, whole shares exact, never negative.

    A MILP answer trades only where an indicator is set (amounts elsewhere are solver tolerance).
    """
    values = context.values_usd
    trade = (solution.values["buy"] - solution.values["sell"]) * context.total_usd
    if whole is not None and "shares" in solution.values:
        trade = np.where(whole, np.round(solution.values["shares"]) * context.inputs.prices, trade)
    noise = np.abs(trade) < max(NOISE_USD, NOISE_SHARE * context.total_usd)
    if "is_buy" in solution.values:
        noise |= (solution.values["is_buy"] + solution.values["is_sell"]) < 0.5
    trade[noise | ~context.tradable] = 0.0
    after = values + trade
    short = after < -(OVERSELL_SHARE * context.total_usd + NOISE_USD)
    if short.any():
        symbols = ", ".join(s for s, bad in zip(context.symbols, short, strict=True) if bad)
        raise SolverFailed(f"the solver's answer sells more than is held of {symbols}")
    return np.maximum(after, 0.0)


def fund_buys(context: PlanContext, after: np.ndarray) -> np.ndarray:
    """Trim buys until cash after trading and costs is at least the buffer, computed exactly.

    The programs meet the buffer to the solver's tolerance (and `RiskAware` only estimates
    commissions); finalize checks it to 1e-7 USD and would scale every buy. The largest
    fractional buy gives up the difference (a buy pushed below the minimum is dropped); with only
    whole-share buys, the largest gives up as many shares as the difference needs.
    """
    values, prices = context.values_usd, context.inputs.prices
    costs = context.policy.costs
    whole = context.whole_shares
    least = max(context.policy.trading.min_trade_usd, MIN_ORDER_USD)
    buffer_usd = context.cash_target * context.total_usd
    after = after.copy()
    for _ in range(4 * len(after) + 4):
        trade = after - values
        buys = trade > 0
        cash_after = context.available_cash_usd - float(trade.sum()) - float(costs.cost_usd(trade).sum())
        need = buffer_usd - cash_after
        fractional = buys & ~whole
        if not buys.any() or need <= (0.0 if fractional.any() else FUNDING_SLACK_USD):
            return after
        if fractional.any():
            i = int(np.argmax(np.where(fractional, trade, -np.inf)))
            left = trade[i] - (need + FUNDING_SLACK_USD) / (1 + costs.variable_rate)
            after[i] = values[i] + left if left >= least else values[i]
        else:
            # The largest buy gives up the shares that cover the need at once (all of them, if the
            # rest would fall below the minimum), so each pass meets the need or ends a buy.
            i = int(np.argmax(np.where(buys, trade, -np.inf)))
            fewer = np.ceil((need + FUNDING_SLACK_USD) / (prices[i] * (1 + costs.variable_rate)) - 1e-9)
            left = max(np.round(trade[i] / prices[i]) - max(fewer, 1.0), 0.0) * prices[i]
            after[i] = values[i] + left if left >= least else values[i]
    return after


def check_answer(context: PlanContext, scaled: ScaledContext, after: np.ndarray, name: str, *, cost_usd: float) -> None:
    """Refuse an answer that breaks the rules the program encodes (a solver reporting success
    wrongly): cash after trading and ``cost_usd`` below the floor, turnover above the cap."""
    trade = after - context.values_usd
    cash_after = context.available_cash_usd - float(trade.sum()) - cost_usd
    tolerance = 1e-6 * context.total_usd + 1e-6
    floor = scaled.cash_floor * context.total_usd
    turnover = float(np.abs(trade).sum()) / context.total_usd
    problems = []
    # A negative floor is a withdrawal not covered yet: finalize sells what is missing, or says
    # the withdrawal cannot be raised, with its real commissions (the programs only estimate them).
    if floor >= 0 and cash_after < floor - tolerance:
        problems.append(f"cash after trading {cash_after:.2f} USD is below {floor:.2f} USD")
    if turnover > scaled.turnover_cap + 1e-6:
        problems.append(f"turnover {turnover / 2:.4%} exceeds the cap")
    if problems:
        raise SolverFailed(f"the {name.replace('_', ' ')} answer breaks its constraints: {'; '.join(problems)}")
