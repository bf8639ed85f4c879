"""Decimals (model fields) become floats (the optimizer's inputs) here, and the optimizer's floats
become Decimals again, so settings, asset data and stored results cross that boundary one way."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from ..models import WEIGHT_PLACES

WEIGHT_QUANTUM = Decimal(1).scaleb(-WEIGHT_PLACES)


def float_or_none(value) -> float | None:
    return None if value is None else float(value)


def weights_to_decimal(weights: Mapping[str, float]) -> dict[str, Decimal]:
    """Floats -> Decimals with WEIGHT_PLACES places that add up to exactly 1.

    Largest-remainder rounding: every weight is rounded down to the quantum, then the units
    still missing go to the weights that lost the most. Each stored weight is within one
    quantum of its float and never above its ceiling, so a weight sitting exactly on a cap
    (0.4) or a floor stays on it, and a later "sum to 1" check never trips on representation noise.
    """
    exact = {symbol: Decimal(repr(float(weight))) for symbol, weight in weights.items()}
    units = {
        symbol: (value / WEIGHT_QUANTUM).to_integral_value(rounding=ROUND_FLOOR) for symbol, value in exact.items()
    }
    missing = int(Decimal(1) / WEIGHT_QUANTUM - sum(units.values(), Decimal(0)))
    if not 0 <= missing <= len(units):
        raise ValueError(f"weights add up to {sum(exact.values())}, not 1")
    by_loss = sorted(units, key=lambda symbol: (-(exact[symbol] / WEIGHT_QUANTUM - units[symbol]), symbol))
    for symbol in by_loss[:missing]:
        units[symbol] += 1
    return {symbol: (count * WEIGHT_QUANTUM).quantize(WEIGHT_QUANTUM) for symbol, count in units.items()}


def decimal_or_none(value: float | None, places: int) -> Decimal | None:
    if value is None or not np.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places))
