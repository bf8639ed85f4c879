"""Planning strategies solved as optimisation problems: fewest trades, least cost, least tracking error.

Each strategy scales the context to fractions of total value (program_data.py), fills the
parameters of a cached cvxpy program (programs.py) and turns the answer back into USD values per
holding. The rules `finalize` enforces are already constraints of the programs (no shorts,
do-not-trade, buys funded after costs, the cash buffer, the turnover cap, and in the two MILPs the
minimum trade and whole shares), so finalize only rounds.

When the policy cannot be met (a do-not-trade holding outside its band, a turnover cap too tight
to reach the bands or the cash buffer), a strategy does not fail: it first finds the least
violation (band excess plus twice the cash shortfall below the buffer, in weights), then its
usual optimum at that violation, and says in a note what is left.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np

from ..errors import ConfigurationError, SolverFailed
from . import programs
from .base import PlanningStrategy, Proposal
from .inputs import BAND_TOLERANCE, PlanContext
from .needs import deviation_phrase, format_pp
from .program_data import (
    FEASIBILITY_MARGIN,
    MIN_ORDER_USD,
    ScaledContext,
    check_answer,
    fund_buys,
    limits_in_force,
    min_trade_weights,
    risk_factor,
    rounding_chords,
    solution_notes,
    solve_with_fallback,
    values_after,
    whole_in_program,
    whole_share_bands,
)

# Bands shrink by this share of their width, so rounding to shares keeps a holding inside.
BAND_SAFETY_MARGIN = 0.01
# In minimize_trades one trade weighs 1 and drift (at most 1) weighs 0.5, so drift never buys a trade.
TRADE_DRIFT_WEIGHT = 0.5


class _TradeProgram(PlanningStrategy):
    """What `MinimizeTrades` and `MinimizeCosts` share: the "trades" MILP, filled from a context."""

    @abstractmethod
    def _objective(self, context: PlanContext, scaled: ScaledContext) -> dict[str, object]:
        """The program's objective parameters for this context (trade count or costs, plus drift)."""

    def _bands(
        self, context: PlanContext, scaled: ScaledContext, buy_cap: np.ndarray, cost_bound: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lower and upper weight limits, and the buy and sell caps they imply (none by default)."""
        upper = 2 * (float(scaled.w0.max()) + float(buy_cap.max()) + 1)
        return np.zeros(len(scaled.w0)), np.full(len(scaled.w0), upper), buy_cap, scaled.sell_cap

    def propose(self, context: PlanContext) -> Proposal:
        size = len(context.symbols)
        if size == 0:
            return Proposal(np.zeros(0))
        scaled = ScaledContext.of(context)
        costs = context.policy.costs
        prices = context.inputs.prices
        whole = whole_in_program(context, scaled.tradable)
        share_value = np.where(whole, prices / scaled.total_usd, 0.0)
        min_trade = min_trade_weights(context, whole)
        fee = costs.commission_per_trade_usd / scaled.total_usd
        # A buy past the target, beyond what the minimum trade or one whole share forces, only moves
        # drift from cash to the holding and costs more; a holding at or above target is never bought.
        # Capping buys there keeps the optimum (up to second-order cost effects) and makes the big-M
        # of the indicators tight: the MILP's relaxation, and so its speed, depend on it.
        reach = np.maximum(scaled.target - scaled.w0, 0.0) + min_trade + share_value + FEASIBILITY_MARGIN
        buy_cap = np.where(scaled.tradable & (scaled.target > scaled.w0), np.minimum(scaled.buy_cap, reach), 0.0)
        cost_bound = fee * size + costs.variable_rate * min(
            scaled.turnover_cap, float(buy_cap.sum() + scaled.sell_cap.sum())
        )
        lower, upper, strict_buy_cap, strict_sell_cap = self._bands(context, scaled, buy_cap, cost_bound)
        values: dict[str, object] = {
            "w0": scaled.w0,
            "target": scaled.target,
            "lower": lower,
            "upper": upper,
            "buy_cap": strict_buy_cap,
            "sell_cap": strict_sell_cap,
            "min_trade": min_trade,
            "cash": scaled.cash,
            "cash_floor": scaled.cash_floor,
            "buffer": scaled.buffer,
            "fee": fee,
            "rate": costs.variable_rate,
            "turnover_cap": scaled.turnover_cap,
            "violation_cap": 0.0,
            "violation_weight": 0.0,
            **self._objective(context, scaled),
        }
        has_whole = bool(whole.any())
        if has_whole:
            most = np.maximum(buy_cap, scaled.sell_cap) * scaled.total_usd
            values["whole"] = whole.astype(float)
            values["share_value"] = share_value
            values["share_cap"] = np.where(whole, np.ceil(most / prices) + 1, 0.0)
            values["chord_at_zero"], values["chord_slope"] = rounding_chords(scaled, share_value, whole)
        solution, notes = solve_with_fallback(
            context,
            values,
            relaxed={"buy_cap": buy_cap, "sell_cap": scaled.sell_cap},
            least={"count_weight": 0.0, "drift_weight": 0.0, "cost_weight": 0.0, "linear": np.zeros(size)},
            scaled=scaled,
            whole=has_whole,
        )
        after = fund_buys(context, values_after(context, solution, whole))
        check_answer(
            context, scaled, after, self.name, cost_usd=float(costs.cost_usd(after - context.values_usd).sum())
        )
        return Proposal(after, notes=notes)


class MinimizeTrades(_TradeProgram):
    """The fewest trades that bring every holding inside its band (a MILP, HiGHS).

    Objective, in priority order: the number of trades (1 each); then 0.5 x (drift left + costs
    paid, both fractions of value), which is at most 0.5 and so never outweighs a trade (costs
    count because paying them can itself lower drift); then 1e-7 per unit of value traded, x 1 for
    the most urgent holding up to x 2 for the last in (urgency, symbol) order, which picks the
    smallest trades among plans of equal drift and makes the answer unique. Drift differences
    below about 1e-6 of value (0.0001 pp) count as ties. Bands shrink by 1% of their width so
    rounding keeps holdings inside; whole-share instruments trade whole shares in the program, and
    one whose band holds no whole number of shares is held to the nearest count outside it.
    """

    name = "minimize_trades"

    def _bands(
        self, context: PlanContext, scaled: ScaledContext, buy_cap: np.ndarray, cost_bound: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        half_width = context.bands * (1 - BAND_SAFETY_MARGIN)
        lower, upper, _ = whole_share_bands(context, scaled.target - half_width, scaled.target + half_width, cost_bound)
        # Implied by the bands (lower <= w0 + b - s <= upper): tighter big-Ms.
        strict_buy = np.minimum(buy_cap, np.maximum(upper - scaled.w0, 0.0))
        strict_sell = np.minimum(scaled.sell_cap, np.maximum(scaled.w0 - lower, 0.0) + FEASIBILITY_MARGIN)
        return lower, upper, strict_buy, strict_sell

    def _objective(self, context: PlanContext, scaled: ScaledContext) -> dict[str, object]:
        return {
            "count_weight": 1.0,
            "drift_weight": TRADE_DRIFT_WEIGHT,
            "cost_weight": TRADE_DRIFT_WEIGHT,
            "linear": scaled.tie,
        }

    def final_notes(
        self, context: PlanContext, values_after_usd: np.ndarray, value_after_usd: float
    ) -> tuple[str, ...]:
        if value_after_usd <= 0:
            return ()
        deviations = values_after_usd / value_after_usd - context.targets
        outside = np.abs(deviations) > context.bands + BAND_TOLERANCE
        if not outside.any():
            return ()
        _, _, no_fit = whole_share_bands(context, context.targets - context.bands, context.targets + context.bands, 0.0)
        notes = []
        for group, why in (
            (outside & no_fit, "No whole number of shares fits inside the band; the nearest count is used."),
            (
                outside & ~no_fit,
                f"No plan within {limits_in_force(context)} brings every holding inside; "
                "this one leaves the least excess.",
            ),
        ):
            if group.any():
                described = ", ".join(
                    f"{deviation_phrase(context.symbols[i], float(deviations[i]))} "
                    f"(band {format_pp(float(context.bands[i]))})"
                    for i in np.flatnonzero(group)
                )
                notes.append(f"Left outside its band: {described}. {why}")
        return tuple(notes)


class MinimizeCosts(_TradeProgram):
    """Least transaction cost plus a price on the drift left (a MILP, HiGHS).

    Objective in fractions of total value (x total = USD): costs (commission x number of trades,
    binary indicators, + (spread + impact) x notional) + p x drift left, with p =
    ``drift_cost_bps`` / 1e4 x 100 (drift as a fraction, so the price is per percentage point),
    plus the 1e-7 tie-break of `MinimizeTrades`. Above 100 bps per pp, costs are weighted p
    instead of 1: paying a dollar of costs can lower drift by up to a dollar, and the plan must
    not buy drift that way. Trades below ``min_trade_usd`` are impossible (semi-continuous
    amounts); whole-share instruments trade whole shares.
    """

    name = "minimize_costs"

    def _objective(self, context: PlanContext, scaled: ScaledContext) -> dict[str, object]:
        drift_weight = context.policy.trading.drift_cost_bps / 1e4 * 100
        return {
            "count_weight": 0.0,
            "drift_weight": drift_weight,
            "cost_weight": max(1.0, drift_weight),
            "linear": scaled.tie,
        }


class RiskAware(PlanningStrategy):
    """Least ex-ante tracking error to target plus trading costs, within the turnover budget (a QP, Clarabel).

    Minimises aversion x (w - t)' S (w - t) + (spread + impact) x |trades| (fractions of total
    value; S = ``inputs.cov``, annualised; cash is riskless) subject to no shorts, do-not-trade,
    buys funded after costs, the cash buffer and ``max_turnover``. Continuous: finalize rounds.
    Trades below the minimum, and sells whose commission eats their proceeds, would be dropped
    by finalize, so the program is solved again with those holdings frozen and the commissions
    of the remaining trades set aside. Every extra solve freezes a holding or raises the
    commission reserve, both monotone, so at most 2N + 1 solves settle it, and what finalize
    receives is already funded.
    """

    name = "risk_aware"

    def propose(self, context: PlanContext) -> Proposal:
        size = len(context.symbols)
        if size == 0:
            return Proposal(np.zeros(0))
        cov = context.inputs.cov
        if cov is None:
            raise ConfigurationError(
                "cov: risk_aware needs the covariance of the holdings (annualised, one row and column per symbol); "
                "estimate it from price history or choose another rebalancing strategy"
            )
        scaled = ScaledContext.of(context)
        policy = context.policy
        aversion = policy.trading.tracking_error_aversion
        factor = math.sqrt(aversion) * risk_factor(cov)
        rate = policy.costs.variable_rate
        values: dict[str, object] = {
            "gap": factor @ (scaled.w0 - scaled.target),
            "factor": factor,
            "buy_cap": scaled.buy_cap,
            "sell_cap": scaled.sell_cap,
            "cash": scaled.cash,
            "cash_floor": scaled.cash_floor,
            "buffer": scaled.buffer,
            "rate": rate,
            "reserve": 0.0,
            "turnover_cap": scaled.turnover_cap,
            "violation_cap": scaled.violation_bound,
            # An exact penalty: above what selling one more unit can change the rest of the objective
            # (2 x aversion x ||S|| x ||w - t|| <= 4 x aversion x trace S, plus the spread), so cash
            # short of the buffer is as small as the policy allows. A cap at the least shortfall, as
            # in the MILPs, would leave an interior-point solver no interior.
            "violation_weight": 10 * (1 + 4 * aversion * float(np.trace(cov)) + 2 * rate),
            "linear": rate + scaled.tie,
        }
        min_trade = max(policy.trading.min_trade_usd, MIN_ORDER_USD)
        commission = policy.costs.commission_per_trade_usd
        for _ in range(2 * size + 1):
            solution = programs.solve("tracking", size, values)
            if solution is None:  # pragma: no cover - trading nothing is always feasible
                raise SolverFailed("the solver found the tracking error problem infeasible, which it is not")
            after = values_after(context, solution)
            traded = np.abs(after - context.values_usd)
            uneconomic = (after < context.values_usd) & (traded * (1 - rate) <= commission)
            small = (traded > 0) & ((traded < min_trade) | uneconomic)
            reserve = commission * int(np.count_nonzero(traded >= min_trade)) / scaled.total_usd
            if not small.any() and reserve <= values["reserve"]:
                break
            values["buy_cap"] = np.where(small, 0.0, values["buy_cap"])
            values["sell_cap"] = np.where(small, 0.0, values["sell_cap"])
            values["reserve"] = max(reserve, values["reserve"])
        notes = solution_notes(solution, scaled, context)
        after = fund_buys(context, after)
        check_answer(
            context, scaled, after, self.name, cost_usd=float(policy.costs.cost_usd(after - context.values_usd).sum())
        )
        return Proposal(after, notes=notes)
