"""The needs table (each holding against its target), the deposit that avoids selling, and the
one-line sentences every trade, trigger and note uses to describe a holding.

Weights are fractions of the context's total value (cash and the planned cash flow included);
"pp" in sentences are percentage points of that value.
"""

from __future__ import annotations

import numpy as np

from .arrays import any_true, sum_of
from .inputs import PlanContext
from .results import Need


def format_pp(weight: float) -> str:
    """A weight as percentage points: 0.072 -> "7.2 pp"; bands below 0.1 pp keep two digits."""
    points = abs(weight) * 100
    return f"{points:.1f} pp" if points >= 0.095 or points == 0 else f"{points:.2g} pp"


def format_usd(amount: float) -> str:
    """Dollars for sentences: whole dollars from $100 up, cents below."""
    amount = abs(amount)
    return f"${amount:,.0f}" if amount >= 100 else f"${amount:,.2f}"


def deviation_phrase(symbol: str, deviation: float) -> str:
    """ "VTI 7.2 pp under target" (``deviation`` = current - target weight; > 0 is over)."""
    points = abs(deviation) * 100
    if points < 0.05:
        return f"{symbol} on target"
    # format_pp, inlined: every trade's reason goes through here.
    amount = f"{points:.1f}" if points >= 0.095 else f"{points:.2g}"
    return f"{symbol} {amount} pp {'over' if deviation > 0 else 'under'} target"


def need_sentence(symbol: str, deviation: float, band: float, outside: bool) -> str:
    """The default reason for a holding: "VTI 7.2 pp under target (band 5.0 pp)", or, inside
    its band, "VTI 1.2 pp under target (inside its 5.0 pp band)". A holding outside although
    its deviation is within the band is an unheld target (``unheld_outside_band``): "QQQ not
    held, 3.0 pp under target (band 5.0 pp)"."""
    if outside:
        if abs(deviation) > band:
            return f"{deviation_phrase(symbol, deviation)} (band {format_pp(band)})"
        return f"{symbol} not held,{deviation_phrase(symbol, deviation)[len(symbol) :]} (band {format_pp(band)})"
    return f"{deviation_phrase(symbol, deviation)} (inside its {format_pp(band)} band)"


def holding_sentences(context: PlanContext, indices: list[int]) -> list[str]:
    """`need_sentence` for the holdings at ``indices`` of ``context.symbols``."""
    symbols = context.symbols
    deviations = context.deviations[indices].tolist()
    bands = context.bands[indices].tolist()
    outside = context.outside[indices].tolist()
    return [need_sentence(symbols[i], deviations[k], bands[k], outside[k]) for k, i in enumerate(indices)]


def needs(context: PlanContext) -> tuple[Need, ...]:
    """One `Need` per symbol, in the order of ``context.symbols``.

    ``urgency`` = |deviation| / band (bands are at least `MIN_BAND`, so it is finite);
    ``action`` is "buy" / "sell" for a holding outside its band, else "hold".
    """
    deviations = context.deviations.tolist()
    outside = context.outside.tolist()
    actions = [("buy" if d < 0 else "sell") if o else "hold" for d, o in zip(deviations, outside, strict=True)]
    urgency = (np.abs(context.deviations) / context.bands).tolist()
    # map() over columns: 50 holdings x 10,000 portfolios make this the planner's hottest loop.
    return tuple(
        map(
            Need,
            context.symbols,
            context.weights.tolist(),
            context.targets.tolist(),
            deviations,
            context.bands.tolist(),
            outside,
            urgency,
            actions,
        )
    )


def deposit_needed_usd(context: PlanContext) -> float | None:
    """The smallest deposit (USD, >= 0) after which buying alone puts every holding inside its
    band, the cash buffer kept; None when no deposit can. An estimate: continuous, before costs.

    With a total value T after the deposit, a holding above its band is diluted back inside once
    T >= value / (target + band), and one below needs buying up to (target - band) x T. So T
    works when it is at least every value / (target + band) and g(T) = (1 - buffer) x T -
    sum max(value, (target - band) x T) >= 0. g is piecewise linear with breakpoints at
    value / (target - band) and never falls (the lower edges sum to at most 1 - buffer): the
    smallest T is found segment by segment. A do-not-trade holding cannot be bought, so T must
    also stay at most its value / (target - band).
    """
    values = context.values_usd
    lower = np.maximum(context.targets - context.bands, 0.0)
    upper = context.targets + context.bands
    least = max(context.total_usd, float(np.max(values / upper, initial=0.0)))
    fixed = ~context.tradable & (lower > 0)
    most = float(np.min(values[fixed] / lower[fixed], initial=np.inf))
    breaks = np.divide(values, lower, out=np.full_like(values, np.inf), where=lower > 0)
    order = np.argsort(breaks)
    # Segment k: the k lowest breakpoints passed, so those holdings count (target - band) x T.
    slope = (1 - context.cash_target) - np.concatenate(([0.0], np.cumsum(lower[order])))
    held = sum_of(values) - np.concatenate(([0.0], np.cumsum(np.where(np.isfinite(breaks), values, 0.0)[order])))
    starts = np.concatenate(([0.0], breaks[order]))
    ends = np.concatenate((breaks[order], [np.inf]))
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.where(slope > 0, held / slope, np.where(held <= 0, 0.0, np.inf))
    candidates = np.maximum(np.maximum(starts, least), roots)
    valid = np.isfinite(candidates) & (candidates <= ends * (1 + 1e-12))
    if not any_true(valid):
        return None
    total = float(np.min(candidates[valid]))
    if total > most * (1 + 1e-12):
        return None
    return max(0.0, total - context.total_usd)
