"""Rounding continuous share quantities to what can be ordered.

``whole`` (bool, shape (N,)) marks holdings that trade in whole shares; the others trade to
`FRACTION_DIGITS` decimals. Float noise below a step is ignored: 3.0000000000004 shares of a
sell rounds up to 3, not 4. Quantities in and out are shares, shape (N,), >= 0.
"""

from __future__ import annotations

import numpy as np

from .arrays import all_true, any_true

FRACTION_DIGITS = 9
_STEPS = 10.0**FRACTION_DIGITS
# Noise allowed below a step: in nano-shares for fractions, in shares for whole shares.
_NANO_SLACK = 1e-6
_WHOLE_SLACK = 1e-9


def _rounded(quantity: np.ndarray, whole: np.ndarray, whole_fn, nano_fn) -> np.ndarray:
    # Most portfolios are all-fractional or all-whole: compute only the branch they need.
    if not any_true(whole):
        return nano_fn(quantity)
    if all_true(whole):
        return whole_fn(quantity)
    return np.where(whole, whole_fn(quantity), nano_fn(quantity))


def round_up(quantity: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Up to the next whole share (``whole``) or nano-share."""
    return _rounded(
        quantity,
        whole,
        lambda q: np.ceil(q - _WHOLE_SLACK),
        lambda q: np.ceil(q * _STEPS - _NANO_SLACK) / _STEPS,
    ).clip(min=0)


def round_down(quantity: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Down to a whole share (``whole``) or nano-share."""
    return _rounded(
        quantity,
        whole,
        lambda q: np.floor(q + _WHOLE_SLACK),
        lambda q: np.floor(q * _STEPS + _NANO_SLACK) / _STEPS,
    ).clip(min=0)


def round_nearest(quantity: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """To the nearest whole share (``whole``, halves up); fractions round down to a nano-share."""
    return _rounded(
        quantity,
        whole,
        lambda q: np.floor(q + 0.5),
        lambda q: np.floor(q * _STEPS + _NANO_SLACK) / _STEPS,
    )


def below(quantity: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """True where ``quantity`` is short of ``limit`` by more than rounding noise (whole shares)."""
    return quantity < limit - _WHOLE_SLACK
