"""Rounding continuous share quantities to what can be ordered.

``whole`` (bool, shape (N,)) marks holdings that trade in whole shares; the others trade to
`FRACTION_DIGITS` decimals. Float noise below a step is ignored: 3.0000000000004 shares of a
sell rounds up to 3, not 4. Quantities in and out are shares, shape (N,), >= 0.
`whole_by_deviation` rounds a whole-share trade down or up, whichever leaves the holding nearer
its target.
"""

from __future__ import annotations

import numpy as np

from .arrays import all_true, any_true

FRACTION_DIGITS = 9
_STEPS = 10.0**FRACTION_DIGITS
# Noise allowed below a step: in nano-shares for fractions, in shares for whole shares.
_NANO_SLACK = 1e-6
WHOLE_SLACK = 1e-9


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
        lambda q: np.ceil(q - WHOLE_SLACK),
        lambda q: np.ceil(q * _STEPS - _NANO_SLACK) / _STEPS,
    ).clip(min=0)


def round_down(quantity: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Down to a whole share (``whole``) or nano-share."""
    return _rounded(
        quantity,
        whole,
        lambda q: np.floor(q + WHOLE_SLACK),
        lambda q: np.floor(q * _STEPS + _NANO_SLACK) / _STEPS,
    ).clip(min=0)


def below(quantity: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """True where ``quantity`` is short of ``limit`` by more than rounding noise (whole shares)."""
    return quantity < limit - WHOLE_SLACK


def whole_by_deviation(
    continuous: np.ndarray, most: np.ndarray | None, gap_usd: np.ndarray, price: np.ndarray, min_trade_usd: float
) -> np.ndarray:
    """Whole shares to trade per holding: the floor or the ceiling of ``continuous`` (shares,
    >= 0; both capped at ``most`` unless None), whichever leaves the holding nearer its target.

    ``gap_usd`` is how far the holding is from its target in the trade's direction before trading
    (target - value for a buy, value - target for a sell): trading k shares leaves
    |gap - k x price| (USD). A floor whose notional is below ``min_trade_usd`` becomes 0, a
    ceiling below it is no candidate; ties go to the smaller count. All arrays shape (N,).
    """
    # continuous >= 0, so neither needs a floor at 0 (np.clip costs more than the arithmetic here).
    low = np.floor(continuous + WHOLE_SLACK)
    high = np.ceil(continuous - WHOLE_SLACK)
    if most is not None:
        low, high = np.minimum(low, most), np.minimum(high, most)
    # Differences within a millionth of a cent are float noise, not a reason to trade more.
    tie = 1e-8
    low_usd, high_usd = low * price, high * price
    if min_trade_usd > 0:
        low = np.where(low_usd < min_trade_usd - tie, 0.0, low)
        low_usd = low * price
    up = np.abs(gap_usd - high_usd) < np.abs(gap_usd - low_usd) - tie
    if min_trade_usd > 0:
        up &= high_usd >= min_trade_usd - tie
    return np.where(up, high, low)


def sellable(quantities: np.ndarray, keep_last: np.ndarray) -> np.ndarray:
    """Shares a sell may take (shape (N,)): all of them, or, where ``keep_last``, all but the last
    whole share (a fractional remainder alone is kept: 10.5 held -> 10, 3 held -> 2, 0.5 -> 0)."""
    return np.where(keep_last, np.maximum(np.ceil(quantities - WHOLE_SLACK) - 1, 0.0), quantities)
