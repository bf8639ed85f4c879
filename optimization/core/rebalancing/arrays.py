"""Reductions of the short (one entry per holding) arrays the planner works on.

At 50 elements numpy's method wrappers (``mask.any()``, ``values.sum()``) cost several times the
arithmetic; a plan makes about thirty such calls and 10,000 plans a night add up. These call the
C routines directly. Same results as the methods.
"""

from __future__ import annotations

import numpy as np

_add = np.add.reduce


def any_true(mask: np.ndarray) -> bool:
    """``mask.any()`` for a boolean array."""
    return np.count_nonzero(mask) > 0


def all_true(mask: np.ndarray) -> bool:
    """``mask.all()`` for a boolean array."""
    return np.count_nonzero(mask) == mask.size


def sum_of(values: np.ndarray) -> float:
    """``float(values.sum())`` for a 1-D float array."""
    return float(_add(values))
