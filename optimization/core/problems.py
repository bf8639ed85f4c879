"""Parametrised cvxpy problems, compiled once per shape and re-solved with new data.

Every problem keeps its data (risk factor, expected returns, bounds, group rows, targets) in
cvxpy Parameters, so the expensive canonicalisation happens once per (kind, number of assets,
number of group rows); the next portfolio with the same shape only swaps numbers in. The
covariance enters as ||F w||^2 with F'F = S, which keeps the problems DPP.

Max-Sharpe and risk parity are solved in homogenised form (scale variable s = sum(y), every
bound multiplied by s), the standard convex reformulation (Cornuejols & Tutuncu, 2006).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
from scipy import sparse

from .constraints import CompiledConstraints
from .errors import SolverFailed

CLARABEL_OPTIONS = {
    # qdldl: measured 3x faster than the default supernodal solver on dense 500-asset problems.
    "direct_solve_method": "qdldl",
    "tol_feas": 1e-9,
    # Clarabel's relative gap divides by max(1, |cost|): for annual variances (1e-2 .. 1e-6) both gap tests are
    # absolute, and 1e-9 left min-volatility answers 5e-8 inside a binding bound and 4e-5 (relative) above the
    # least variance of a bond-heavy universe. 1e-12 reaches the optimum; when it cannot, the 1e-9 settings answer.
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-12,
    "max_iter": 200,
}
CLARABEL_FALLBACK_OPTIONS = {**CLARABEL_OPTIONS, "tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9}
# Clarabel's own defaults, spelled out: cvxpy keeps a template's solver between solves and only
# overwrites the settings an attempt names, so "{}" would rerun the previous attempt's settings.
CLARABEL_DEFAULT_OPTIONS = {
    "direct_solve_method": "auto",
    "tol_feas": 1e-8,
    "tol_gap_abs": 1e-8,
    "tol_gap_rel": 1e-8,
    "max_iter": 200,
}
HOMOGENISED_KINDS = frozenset({"max_sharpe", "risk_parity"})
LINEAR_KINDS = frozenset({"max_return", "min_return", "feasibility"})
CACHE_SIZE = 128
SPARSE_FACTOR_MIN_ASSETS = 100


@dataclass
class _Template:
    problem: cp.Problem
    weights: cp.Variable
    scale: cp.Variable | None
    params: dict[str, cp.Parameter]
    lock: threading.Lock


_cache: OrderedDict[tuple, _Template] = OrderedDict()
_cache_lock = threading.Lock()
compile_count = 0  # how many templates were built; benchmarks and tests read it


def _build(kind: str, size: int, n_min: int, n_max: int) -> _Template:
    weights = cp.Variable(size, name="w")
    params: dict[str, cp.Parameter] = {
        "lower": cp.Parameter(size, name="lower"),
        "upper": cp.Parameter(size, name="upper"),
    }
    if n_min:
        params["a_min"] = cp.Parameter((n_min, size), name="a_min")
        params["b_min"] = cp.Parameter(n_min, name="b_min")
    if n_max:
        params["a_max"] = cp.Parameter((n_max, size), name="a_max")
        params["b_max"] = cp.Parameter(n_max, name="b_max")
    scale = cp.Variable(nonneg=True, name="s") if kind in HOMOGENISED_KINDS else None
    total = scale if scale is not None else 1.0

    def scaled(param: cp.Parameter):
        return cp.multiply(param, scale) if scale is not None else param

    constraints = [weights >= scaled(params["lower"]), weights <= scaled(params["upper"]), cp.sum(weights) == total]
    if n_min:
        constraints.append(params["a_min"] @ weights >= scaled(params["b_min"]))
    if n_max:
        constraints.append(params["a_max"] @ weights <= scaled(params["b_max"]))

    if kind not in LINEAR_KINDS and kind != "nearest":
        # Upper-triangular: declaring the sparsity halves the solver's work on large dense covariances;
        # below SPARSE_FACTOR_MIN_ASSETS cvxpy's sparse-parameter bookkeeping costs more than it saves.
        sparsity = np.triu_indices(size) if size >= SPARSE_FACTOR_MIN_ASSETS else False
        params["factor"] = cp.Parameter((size, size), name="factor", sparsity=sparsity)
        params["gamma"] = cp.Parameter(nonneg=True, name="gamma")
        risk = cp.sum_squares(params["factor"] @ weights)
        l2 = params["gamma"] * cp.sum_squares(weights)
    if kind in ("max_sharpe", "efficient_risk", "efficient_return", "utility", "max_return", "min_return"):
        params["mu"] = cp.Parameter(size, name="mu")

    if kind == "min_risk":
        objective = cp.Minimize(risk + l2)
    elif kind == "max_sharpe":
        constraints.append(params["mu"] @ weights == 1)  # mu here holds mu - rf
        objective = cp.Minimize(risk + l2)
    elif kind == "efficient_risk":
        params["target_variance"] = cp.Parameter(nonneg=True, name="target_variance")
        constraints.append(risk <= params["target_variance"])
        objective = cp.Maximize(params["mu"] @ weights - l2)
    elif kind == "efficient_return":
        params["target_return"] = cp.Parameter(name="target_return")
        constraints.append(params["mu"] @ weights >= params["target_return"])
        objective = cp.Minimize(risk + l2)
    elif kind == "utility":
        # mu and gamma arrive divided by the risk aversion: same argmax, and the problem stays DPP.
        objective = cp.Maximize(params["mu"] @ weights - 0.5 * risk - l2)
    elif kind == "risk_parity":
        params["budget"] = cp.Parameter(size, nonneg=True, name="budget")
        constraints.append(params["budget"] @ cp.log(weights) >= 1)
        objective = cp.Minimize(risk)
    elif kind == "max_return":
        objective = cp.Maximize(params["mu"] @ weights)
    elif kind == "min_return":
        objective = cp.Minimize(params["mu"] @ weights)
    elif kind == "nearest":
        # Weighted least squares: moving an asset costs more the smaller its target, so the
        # correction lands on assets already held instead of spreading dust over every asset.
        params["target"] = cp.Parameter(size, name="target")
        params["scale"] = cp.Parameter(size, nonneg=True, name="scale")
        # target arrives pre-multiplied by scale (a product of two parameters would not be DPP).
        objective = cp.Minimize(cp.sum_squares(cp.multiply(params["scale"], weights) - params["target"]))
    elif kind == "feasibility":
        objective = cp.Minimize(0)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown problem kind {kind!r}")
    problem = cp.Problem(objective, constraints)
    if not problem.is_dpp():  # pragma: no cover - guards the caching premise
        raise AssertionError(f"{kind} problem is not DPP")
    return _Template(problem, weights, scale, params, threading.Lock())


def _template(kind: str, compiled: CompiledConstraints) -> _Template:
    global compile_count
    key = (kind, *compiled.shape_key)
    with _cache_lock:
        template = _cache.get(key)
        if template is not None:
            _cache.move_to_end(key)
            return template
    template = _build(kind, *compiled.shape_key)
    with _cache_lock:
        compile_count += 1
        _cache[key] = template
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return template


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class Infeasible(Exception):
    """The solver proved the problem infeasible; callers translate this into words."""


def solve(kind: str, compiled: CompiledConstraints, **data) -> np.ndarray:
    """Solve problem ``kind`` over ``compiled`` with ``data`` (factor, mu, targets...); return weights.

    Raises `Infeasible` when the solver proves infeasibility and `SolverFailed` otherwise.
    """
    template = _template(kind, compiled)
    values = {
        "lower": compiled.lower,
        "upper": compiled.upper,
        "a_min": compiled.a_min,
        "b_min": compiled.b_min,
        "a_max": compiled.a_max,
        "b_max": compiled.b_max,
        "gamma": compiled.l2_gamma,
        **data,
    }
    with template.lock:
        for name, param in template.params.items():
            if name == "factor" and param.attributes["sparsity"]:
                rows, columns = param.sparse_idx
                param.value_sparse = sparse.coo_array((values[name][rows, columns], (rows, columns)), shape=param.shape)
            else:
                param.value = values[name]
        status = _run_solver(template.problem, kind)
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise Infeasible(status)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or template.weights.value is None:
            raise SolverFailed(f"the solver stopped with status {status!r} on the {kind.replace('_', ' ')} problem")
        weights = np.array(template.weights.value, dtype=float)
        if template.scale is not None:
            scale = float(template.scale.value)
            if not scale > 0:
                raise SolverFailed(f"the solver returned a zero scale on the {kind.replace('_', ' ')} problem")
            weights = weights / scale
    return polish(weights, compiled, kind)


def _run_solver(problem: cp.Problem, kind: str) -> str:
    if kind in LINEAR_KINDS:
        attempts = [("HIGHS", {})]
    else:
        attempts = [("CLARABEL", CLARABEL_OPTIONS), ("CLARABEL", CLARABEL_FALLBACK_OPTIONS)]
    # A second opinion before giving up: Clarabel with its default settings (equilibration can differ).
    attempts.append(("CLARABEL", CLARABEL_DEFAULT_OPTIONS))
    last_error = None
    for solver, options in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=solver, **options)
        except cp.error.SolverError as error:
            last_error = error
            continue
        if problem.status in (cp.OPTIMAL, cp.INFEASIBLE, cp.UNBOUNDED):
            return problem.status
        last_error = problem.status
    if isinstance(last_error, str):
        return last_error
    raise SolverFailed(f"the solver failed on the {kind.replace('_', ' ')} problem: {last_error}")


def polish(weights: np.ndarray, compiled: CompiledConstraints, kind: str = "") -> np.ndarray:
    """Remove interior-point dust: clip into the bounds, zero 1e-8 crumbs, restore sum = 1 exactly.

    Any violation still above 1e-7 after this means the solver answer was wrong: refuse it.
    """
    polished = np.clip(weights, compiled.lower, compiled.upper)
    polished[(np.abs(polished) < 1e-8) & (compiled.lower <= 0)] = 0.0
    residual = 1.0 - polished.sum()
    room = compiled.upper - polished if residual > 0 else polished - compiled.lower
    room = np.where(polished != 0, room, 0) if np.any(room[polished != 0] > 0) else room
    if abs(residual) > 0 and room.sum() > 0:
        polished += np.sign(residual) * room * min(1.0, abs(residual) / room.sum())
    problems = compiled.violations(polished, tolerance=1e-7)
    if problems:
        raise SolverFailed(
            f"the {kind.replace('_', ' ') or 'solver'} answer breaks the constraints: {'; '.join(problems[:3])}"
        )
    return polished


def solve_feasibility(compiled: CompiledConstraints) -> bool:
    try:
        solve("feasibility", compiled)
    except Infeasible:
        return False
    return True
