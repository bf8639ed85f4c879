"""The cvxpy programs behind the optimised planning strategies, compiled once per shape.

Every amount is a fraction of the context's total value T (USD / T), so one compiled template
serves portfolios of any size; only parameter values change between solves (DPP: products of
two parameters arrive pre-multiplied). Templates are cached per (kind, N, whole shares or not),
as in `optimization.core.problems`.

Two programs:

``trades`` (MILP, HiGHS): buys b, sells s >= 0 per holding with binary indicators (a buy or a
sell, never both), optionally whole shares, the transaction cost as a variable, and slack
variables for band excess and cash shortfall. `MinimizeTrades` and `MinimizeCosts` differ only
in the objective weights and the bands they pass.

``tracking`` (QP, Clarabel): buys and sells minimising ||F (w0 + b - s - t)||^2 (F'F = the
covariance, times the tracking-error aversion) plus linear costs and a penalty on cash short of
the buffer, for `RiskAware`.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from ..errors import SolverFailed
from ..problems import CLARABEL_DEFAULT_OPTIONS, CLARABEL_FALLBACK_OPTIONS, CLARABEL_OPTIONS

# The trade objective mixes an integer count (steps of 1) with drift and tie-breaks of 1e-7 per unit
# traded: the gap tolerances sit well below that, or HiGHS stops on the first plan with the right count.
HIGHS_OPTIONS = {
    "mip_rel_gap": 0.0,
    "mip_abs_gap": 1e-10,
    "primal_feasibility_tolerance": 1e-9,
    "dual_feasibility_tolerance": 1e-9,
    "mip_feasibility_tolerance": 1e-9,
    "time_limit": 5.0,
}
# With whole shares, plans a few shares apart differ by less than that and proving which is best
# can take seconds: plans within 1e-6 of value (drift, costs, tie-break) count as equally good.
HIGHS_WHOLE_SHARE_OPTIONS = {**HIGHS_OPTIONS, "mip_abs_gap": 1e-6}
# Finding the least violation only needs its value (the next pass is capped at what was found).
HIGHS_COARSE_OPTIONS = {**HIGHS_OPTIONS, "mip_rel_gap": 1e-4, "mip_abs_gap": 1e-9}
CACHE_SIZE = 64

# Statuses a caller acts on: solved, proved infeasible, or stopped at the time limit with a plan.
OPTIMAL = "optimal"
INFEASIBLE = "infeasible"
TIME_LIMIT = "time_limit"


@dataclass
class Template:
    problem: cp.Problem
    params: dict[str, cp.Parameter]
    variables: dict[str, cp.Variable]
    lock: threading.Lock


_cache: OrderedDict[tuple, Template] = OrderedDict()
_cache_lock = threading.Lock()
compile_count = 0  # how many templates were built; tests and benchmarks read it


def _scalar(name: str, **attributes) -> cp.Parameter:
    return cp.Parameter(name=name, **attributes)


def _build_trades(size: int, whole: bool) -> Template:
    n = size
    params = {
        "w0": cp.Parameter(n, name="w0"),
        "target": cp.Parameter(n, name="target"),
        "lower": cp.Parameter(n, name="lower"),
        "upper": cp.Parameter(n, name="upper"),
        "buy_cap": cp.Parameter(n, nonneg=True, name="buy_cap"),
        "sell_cap": cp.Parameter(n, nonneg=True, name="sell_cap"),
        "min_trade": cp.Parameter(n, nonneg=True, name="min_trade"),
        "cash": _scalar("cash"),
        "cash_floor": _scalar("cash_floor"),
        "buffer": _scalar("buffer", nonneg=True),
        "fee": _scalar("fee", nonneg=True),
        "rate": _scalar("rate", nonneg=True),
        "turnover_cap": _scalar("turnover_cap", nonneg=True),
        "violation_cap": _scalar("violation_cap", nonneg=True),
        "count_weight": _scalar("count_weight", nonneg=True),
        "drift_weight": _scalar("drift_weight", nonneg=True),
        "cost_weight": _scalar("cost_weight", nonneg=True),
        "violation_weight": _scalar("violation_weight", nonneg=True),
        "linear": cp.Parameter(n, nonneg=True, name="linear"),
    }
    buy = cp.Variable(n, nonneg=True, name="buy")
    sell = cp.Variable(n, nonneg=True, name="sell")
    is_buy = cp.Variable(n, boolean=True, name="is_buy")
    is_sell = cp.Variable(n, boolean=True, name="is_sell")
    cost = cp.Variable(name="cost")
    deviation = cp.Variable(n, nonneg=True, name="deviation")
    cash_deviation = cp.Variable(nonneg=True, name="cash_deviation")
    excess = cp.Variable(n, nonneg=True, name="excess")
    shortfall = cp.Variable(nonneg=True, name="shortfall")
    p = params

    after = p["w0"] + buy - sell
    cash_after = p["cash"] - cp.sum(buy) + cp.sum(sell) - cost
    traded = buy + sell
    trades = cp.sum(is_buy + is_sell)
    violation = cp.sum(excess) + 2 * shortfall
    constraints = [
        cost == p["fee"] * trades + p["rate"] * cp.sum(traded),
        buy <= cp.multiply(p["buy_cap"], is_buy),
        sell <= cp.multiply(p["sell_cap"], is_sell),
        is_buy + is_sell <= 1,
        buy >= cp.multiply(p["min_trade"], is_buy),
        sell >= cp.multiply(p["min_trade"], is_sell),
        cash_after >= p["cash_floor"],
        cash_after >= p["buffer"] - shortfall,
        cp.sum(traded) <= p["turnover_cap"],
        # Weights after trading are after / (1 - cost): multiplied out, the upper limit stays linear.
        # The lower one is kept without the cost (conservative: costs only raise a weight), so that
        # paying costs can never shrink a measured excess.
        after >= p["lower"] - excess,
        after + cp.multiply(p["upper"], cost) <= p["upper"] + excess,
        violation <= p["violation_cap"],
        deviation >= after + cp.multiply(p["target"], cost) - p["target"],
        deviation >= p["target"] - after - cp.multiply(p["target"], cost),
        cash_deviation >= cash_after + p["buffer"] * cost - p["buffer"],
        cash_deviation >= p["buffer"] - cash_after - p["buffer"] * cost,
    ]
    variables = {
        "buy": buy,
        "sell": sell,
        "is_buy": is_buy,
        "is_sell": is_sell,
        "cost": cost,
        "excess": excess,
        "shortfall": shortfall,
    }
    if whole:
        params["share_value"] = cp.Parameter(n, nonneg=True, name="share_value")
        params["whole"] = cp.Parameter(n, nonneg=True, name="whole")
        params["share_cap"] = cp.Parameter(n, nonneg=True, name="share_cap")
        params["chord_at_zero"] = cp.Parameter(n, name="chord_at_zero")
        params["chord_slope"] = cp.Parameter(n, name="chord_slope")
        shares = cp.Variable(n, integer=True, name="shares")
        constraints += [
            cp.multiply(p["whole"], buy - sell) == cp.multiply(p["share_value"], shares),
            shares <= p["share_cap"],
            shares >= -p["share_cap"],
            # |w0 + share_value x k - t| at whole k lies above the chord through the two counts around
            # the target (a convex function above its secant outside the secant's interval): with it the
            # relaxation already pays for rounding, which closes most of the MILP's gap.
            deviation >= p["chord_at_zero"] + cp.multiply(p["chord_slope"], shares) - cp.multiply(p["target"], cost),
        ]
        variables["shares"] = shares
    # (1 - cost) x the drift after trading. Money paid in costs can lower drift (it shrinks the
    # total, lifting underweight holdings) by at most 1 per unit of cost: a cost weight at least the
    # drift weight keeps a plan from buying drift with costs.
    drift = (cp.sum(deviation) + cash_deviation) / 2
    objective = cp.Minimize(
        p["count_weight"] * trades
        + p["drift_weight"] * drift
        + p["cost_weight"] * cost
        + p["violation_weight"] * violation
        + p["linear"] @ traded
    )
    return Template(cp.Problem(objective, constraints), params, variables, threading.Lock())


def _build_tracking(size: int, whole: bool) -> Template:
    del whole  # continuous: finalize rounds
    n = size
    params = {
        "gap": cp.Parameter(n, name="gap"),
        "factor": cp.Parameter((n, n), name="factor"),
        "buy_cap": cp.Parameter(n, nonneg=True, name="buy_cap"),
        "sell_cap": cp.Parameter(n, nonneg=True, name="sell_cap"),
        "cash": _scalar("cash"),
        "cash_floor": _scalar("cash_floor"),
        "buffer": _scalar("buffer", nonneg=True),
        "rate": _scalar("rate", nonneg=True),
        "reserve": _scalar("reserve", nonneg=True),
        "turnover_cap": _scalar("turnover_cap", nonneg=True),
        "violation_cap": _scalar("violation_cap", nonneg=True),
        "violation_weight": _scalar("violation_weight", nonneg=True),
        "linear": cp.Parameter(n, nonneg=True, name="linear"),
    }
    buy = cp.Variable(n, nonneg=True, name="buy")
    sell = cp.Variable(n, nonneg=True, name="sell")
    shortfall = cp.Variable(nonneg=True, name="shortfall")
    p = params
    traded = buy + sell
    cash_after = p["cash"] - cp.sum(buy) + cp.sum(sell) - p["rate"] * cp.sum(traded)
    constraints = [
        buy <= p["buy_cap"],
        sell <= p["sell_cap"],
        cash_after >= p["cash_floor"],
        # Commissions (not in the QP) are set aside from the buffer only: with no trades they are
        # not due, and a hard floor including them could make doing nothing infeasible.
        cash_after - p["reserve"] >= p["buffer"] - shortfall,
        cp.sum(traded) <= p["turnover_cap"],
        2 * shortfall <= p["violation_cap"],
    ]
    # gap = F (w0 - t): F @ w0 would multiply two parameters.
    objective = cp.Minimize(
        cp.sum_squares(p["gap"] + p["factor"] @ (buy - sell))
        + p["linear"] @ traded
        + p["violation_weight"] * 2 * shortfall
    )
    variables = {"buy": buy, "sell": sell, "shortfall": shortfall}
    return Template(cp.Problem(objective, constraints), params, variables, threading.Lock())


_BUILDERS: dict[str, Callable[[int, bool], Template]] = {"trades": _build_trades, "tracking": _build_tracking}


def template(kind: str, size: int, whole: bool = False) -> Template:
    """The compiled program ``kind`` ("trades" or "tracking") for ``size`` holdings."""
    global compile_count
    key = (kind, size, whole)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    built = _BUILDERS[kind](size, whole)
    if not built.problem.is_dpp():  # pragma: no cover - guards the caching premise
        raise AssertionError(f"the {kind} program is not DPP")
    with _cache_lock:
        compile_count += 1
        _cache[key] = built
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return built


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True)
class Solution:
    """Variable values (as arrays) of a solved program and how the solver ended."""

    status: str  # OPTIMAL or TIME_LIMIT (a feasible plan, optimality not proved)
    values: dict[str, np.ndarray]


def solve(
    kind: str, size: int, values: Mapping[str, object], *, whole: bool = False, coarse: bool = False
) -> Solution | None:
    """Solve program ``kind`` with parameter ``values``; None when the solver proves it infeasible.

    ``coarse``: a MILP may stop within a relative gap of 1e-4; ``whole``: the whole-share template
    (and its looser gap). Raises `SolverFailed` when no solver attempt ends with an answer.
    """
    program = template(kind, size, whole)
    with program.lock:
        for name, param in program.params.items():
            param.value = values[name]
        options = HIGHS_COARSE_OPTIONS if coarse else HIGHS_WHOLE_SHARE_OPTIONS if whole else HIGHS_OPTIONS
        status = _run(program.problem, kind, options)
        if status == INFEASIBLE:
            return None
        answer = {name: np.atleast_1d(np.array(var.value, dtype=float)) for name, var in program.variables.items()}
    if any(not np.all(np.isfinite(value)) for value in answer.values()):
        raise SolverFailed(f"the {kind} program returned values that are not numbers")
    return Solution(status, answer)


def _run(problem: cp.Problem, kind: str, highs_options: Mapping[str, object]) -> str:
    if kind == "trades":
        attempts: list[tuple[str, Mapping[str, object]]] = [("HIGHS", highs_options)]
    else:
        attempts = [
            ("CLARABEL", CLARABEL_OPTIONS),
            ("CLARABEL", CLARABEL_FALLBACK_OPTIONS),
            ("CLARABEL", CLARABEL_DEFAULT_OPTIONS),
        ]
    last_error: object = None
    for attempt, (solver, options) in enumerate(attempts, start=1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=solver, **options)
        except cp.error.SolverError as error:
            last_error = error
            continue
        status = problem.status
        has_answer = all(variable.value is not None for variable in problem.variables())
        if status == cp.OPTIMAL:
            return OPTIMAL
        if status in (cp.INFEASIBLE, cp.settings.INFEASIBLE_OR_UNBOUNDED):
            return INFEASIBLE
        # A MILP stopped at its time limit holds its best incumbent, which keeps every constraint; an
        # interior-point iterate stopped at its iteration limit has not converged and may break
        # them (sell more than is held): the next, looser attempt answers instead.
        if status == cp.USER_LIMIT and has_answer and kind == "trades":
            return TIME_LIMIT
        # The last attempt's inaccurate answer is still checked against the constraints by the caller.
        if status == cp.OPTIMAL_INACCURATE and has_answer and attempt == len(attempts):
            return OPTIMAL
        last_error = status
    what = "rebalancing trades" if kind == "trades" else "tracking error"
    raise SolverFailed(f"the solver found no answer to the {what} problem ({last_error})")
