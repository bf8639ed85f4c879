"""Water-filling: spread a cash amount over holdings so that the most underweight move first.

Both functions take values (USD, shape (N,)), weights (the effective targets, shape (N,),
>= 0) and a mask of the holdings allowed to move, and return the new values (USD, shape (N,)).
"Underweight" is relative: value / target, the total value at which a holding would sit on
target; the lowest ratios are lifted first, the highest (targets of 0 above all) drained first.
"""

from __future__ import annotations

import numpy as np


def fill(values: np.ndarray, targets: np.ndarray, movable: np.ndarray, amount_usd: float) -> np.ndarray:
    """Buy ``amount_usd`` in total: find the level L with sum max(0, t_i L - v_i) = amount over
    movable holdings with a target, and lift each to max(v_i, t_i L).

    Every holding below the level ends at the same ratio value / target (the most underweight
    are lifted first). Returns ``values`` unchanged when nothing can be bought.
    """
    values = np.asarray(values, dtype=float)
    active = np.flatnonzero(movable & (targets > 0))
    if amount_usd <= 0 or active.size == 0:
        return values.copy()
    t = targets[active]
    v = values[active]
    ratios = v / t
    order = np.argsort(ratios, kind="stable")
    ratio_sorted, t_sorted, v_sorted = ratios[order], t[order], v[order]
    cum_t = np.cumsum(t_sorted)
    cum_v = np.cumsum(v_sorted)
    # Cash needed to lift the first k holdings to the k-th ratio (the k-th itself needs nothing).
    needed_at = ratio_sorted * cum_t - cum_v
    k = int(np.searchsorted(needed_at, amount_usd, side="right")) - 1
    level = (amount_usd + cum_v[k]) / cum_t[k]
    result = values.copy()
    result[active] = np.maximum(v, t * level)
    return result


def drain(values: np.ndarray, targets: np.ndarray, movable: np.ndarray, amount_usd: float) -> np.ndarray:
    """Sell ``amount_usd`` in total (at most what the movable holdings are worth): find the
    level L with sum max(0, v_i - t_i L) = amount and lower each movable holding to min(v_i, t_i L).

    Holdings with a target of 0 go first; when the amount is smaller than their value, they
    are sold in proportion to their value. Returns ``values`` unchanged when nothing is to sell.
    """
    values = np.asarray(values, dtype=float)
    result = values.copy()
    active = np.flatnonzero(movable & (values > 0))
    if amount_usd <= 0 or active.size == 0:
        return result
    t = targets[active]
    v = values[active]
    if amount_usd >= v.sum():
        result[active] = 0.0
        return result
    zero = t <= 0
    zero_value = float(v[zero].sum())
    if amount_usd <= zero_value:
        result[active[zero]] = v[zero] * (1 - amount_usd / zero_value)
        return result
    remaining = amount_usd - zero_value
    t_pos, v_pos = t[~zero], v[~zero]
    ratios = v_pos / t_pos
    order = np.argsort(-ratios, kind="stable")
    ratio_sorted, t_sorted, v_sorted = ratios[order], t_pos[order], v_pos[order]
    cum_t = np.cumsum(t_sorted)
    cum_v = np.cumsum(v_sorted)
    # Cash raised by lowering the first k holdings to the k-th ratio (the k-th itself gives nothing).
    raised_at = cum_v - ratio_sorted * cum_t
    k = int(np.searchsorted(raised_at, remaining, side="right")) - 1
    level = max(0.0, (cum_v[k] - remaining) / cum_t[k])
    result[active[zero]] = 0.0
    result[active[~zero]] = np.minimum(v_pos, t_pos * level)
    return result
