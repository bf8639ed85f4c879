"""What the run report draws for a result (estimates, efficient frontier, sleeves, glide path),
computed once when the result is stored."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from marketdata.recent import Memo
from optimization.core.engine import OptimizationResult as CoreResult
from optimization.core.engine import OptimizerSettings, frontier_points
from optimization.core.errors import OptimizationError
from optimization.core.glidepath import blend_shares, load_glide_path
from optimization.core.problems import Infeasible

from ..models import OptimizationResult

ANALYSIS_VERSION = 1
FRONTIER_POINTS = 30
# Significant digits kept in the stored analysis: far below estimation error, and a 50-asset
# covariance stays around 30 KB of JSON.
ANALYSIS_DIGITS = 7
GLIDE_CURVE_AGES = range(20, 96)


def _sig(value: float | None, digits: int = ANALYSIS_DIGITS) -> float | None:
    """``value`` rounded to ``digits`` significant digits; None for None, NaN and infinities."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def _risk_point(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> dict:
    return {
        "expected_return": _sig(float(weights @ mu)),
        "volatility": _sig(math.sqrt(max(float(weights @ cov @ weights), 0.0))),
    }


def _glide_json(settings: OptimizerSettings) -> dict | None:
    """The glide path used: its parameters, the investor's age and share, and the curve by age."""
    glide = settings.glide
    if glide.age is None:
        return None
    plugin = load_glide_path(glide.plugin, knots=glide.knots, retirement_age=glide.retirement_age)
    knots = getattr(plugin, "knots", None)
    return {
        "age": glide.age,
        "equity_share": _sig(blend_shares(plugin, glide.age)[0]),
        "retirement_age": getattr(plugin, "retirement_age", glide.retirement_age),
        "knots": [[age, share] for age, share in knots] if knots else None,
        "plugin": glide.plugin,
        "safe_bond_share": glide.safe_bond_share,
        "curve": [[age, _sig(blend_shares(plugin, age)[0], 4)] for age in GLIDE_CURVE_AGES],
    }


def frontier_key(result: CoreResult) -> str:
    """Digest of what the efficient frontier depends on: the universe's estimates and its compiled
    constraints. Results that differ only in age, strategy or risk-free rate share it (and the frontier)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(result.universe)).encode())
    estimates, compiled = result.estimates, result.constraints
    for array in (estimates.mu, estimates.cov, compiled.lower, compiled.upper):
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    for array in (compiled.a_min, compiled.b_min, compiled.a_max, compiled.b_max):
        digest.update(repr(np.asarray(array, dtype=float).shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    digest.update(repr(float(compiled.l2_gamma)).encode())
    return digest.hexdigest()


# Frontiers by `frontier_key`, per process: a frontier is a function of its key alone (the
# universe's estimates and constraints). Without this memory every new result of the daily run
# looked for it among the day's stored results, whose JSON grows with them.
_frontiers = Memo(max_entries=256)


def _frontier(result: CoreResult, key: str) -> list | str:
    """[[volatility, expected return], ...], or why there is none; remembered, from a result
    stored today with the same key, or solved (about 30 solves, once per universe and constraints)."""
    return _frontiers.get_or_compute(key, lambda: _frontier_read_or_solve(result, key))


def _frontier_read_or_solve(result: CoreResult, key: str) -> list | str:
    as_of = result.as_of.date() if hasattr(result.as_of, "date") else result.as_of
    stored = (
        OptimizationResult.objects.filter(as_of=as_of, analysis__frontier_key=key)
        .values_list("analysis__frontier", flat=True)
        .first()
    )
    if stored:
        return stored
    try:
        points = frontier_points(result.estimates, result.constraints, result.risk_free_rate, FRONTIER_POINTS)
    except (Infeasible, OptimizationError) as error:
        return f"efficient frontier not computed: {str(error) or type(error).__name__}"
    return [[_sig(point.volatility), _sig(point.expected_return)] for point in points]


def result_analysis(result: CoreResult, settings: OptimizerSettings) -> dict:
    """What the run report draws for a result, computed once when the result is stored.

    ``symbols`` (the universe, in order) with annualised ``mu`` (N,) and ``cov`` (N x N);
    ``frontier``: about 30 [volatility, expected return] points from minimum volatility to
    maximum return under the same constraints (None when a solve failed; ``notes`` says why),
    shared by results with the same ``frontier_key``; ``sleeves``: the glide path's aggressive
    and safe portfolios (share, weights by symbol, expected return and volatility); ``glide``:
    the glide path used (None without an age). Fractions, annualised; floats rounded to
    `ANALYSIS_DIGITS` significant digits.
    """
    estimates = result.estimates
    if estimates is None or result.constraints is None:
        return {}
    mu, cov = estimates.mu, estimates.cov
    notes: list[str] = []
    key = frontier_key(result)
    frontier = _frontier(result, key)
    if isinstance(frontier, str):
        notes.append(frontier)
        frontier = None
    sleeves = {
        sleeve.name: {
            "share": _sig(sleeve.share),
            "weights": {
                symbol: _sig(float(weight))
                for symbol, weight in zip(estimates.symbols, sleeve.weights, strict=True)
                if abs(weight) > 1e-12
            },
            **_risk_point(sleeve.weights, mu, cov),
        }
        for sleeve in result.sleeves
    }
    return {
        "version": ANALYSIS_VERSION,
        "symbols": list(estimates.symbols),
        "mu": [_sig(value) for value in mu.tolist()],
        "cov": [[_sig(value) for value in row] for row in cov.tolist()],
        "risk_free_rate": result.risk_free_rate,
        "frontier_key": key,
        "frontier": frontier,
        "sleeves": sleeves,
        "glide": _glide_json(settings),
        "notes": notes,
    }
