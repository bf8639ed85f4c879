"""Why no portfolio can satisfy a set of constraints, in words, before any solver runs: cheap
checks of the bounds' sums first, then one linear program for the limits together."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .constraints import ENVIRONMENT_NAMES, TOLERANCE, CompiledConstraints, SettingNames, percent
from .errors import InfeasibleConstraints
from .problems import solve_feasibility


def _describe_sum(values: np.ndarray, symbols: Sequence[str]) -> str:
    """'20 assets x 0.06' or '18 assets x 0.05 + AAPL 0.10 + MSFT 0.10'."""
    counts = Counter(round(float(v), 10) for v in values)
    common, common_count = counts.most_common(1)[0]
    parts = [f"{common_count} assets x {common:g}" if common_count > 1 else None]
    for value, symbol in zip(values, symbols, strict=True):
        if round(float(value), 10) != common or common_count == 1:
            parts.append(f"{symbol} {value:g}")
    return " + ".join(part for part in parts if part)


def _overridden(mask: np.ndarray | None, size: int) -> np.ndarray:
    return np.zeros(size, dtype=bool) if mask is None else mask


# A per-asset bound the user types has this many decimals (the portfolio's fields and the CLI's
# percentages): a suggested value is rounded to it, up for a maximum, down for a minimum.
BOUND_PLACES = 4


def _round_bound(value: float, up: bool) -> float:
    scaled = value * 10**BOUND_PLACES
    return (math.ceil(scaled - 1e-9) if up else math.floor(scaled + 1e-9)) / 10**BOUND_PLACES


def _check_bound_sums(compiled: CompiledConstraints, names: SettingNames) -> None:
    """Minimums adding up above 1, maximums below 1: say which setting and the value that would do."""
    lo, hi, symbols = compiled.lower, compiled.upper, compiled.symbols
    size = compiled.size
    for side, bounds, mask, total in (
        ("min", lo, _overridden(compiled.lower_overridden, size), lo.sum()),
        ("max", hi, _overridden(compiled.upper_overridden, size), hi.sum()),
    ):
        if (side == "min" and total <= 1 + TOLERANCE) or (side == "max" and total >= 1 - TOLERANCE):
            continue
        word, at, verb = ("minimum", "at least", "lower") if side == "min" else ("maximum", "at most", "raise")
        shared = bounds[~mask]
        overrides_total = float(bounds[mask].sum())
        override_part = " + ".join(f"{symbols[i]} {percent(bounds[i])}" for i in np.flatnonzero(mask))
        if len(shared):
            # The uniform bound is to blame when changing it alone can fix the sum.
            needed = (1.0 - overrides_total) / len(shared)
            if (side == "min" and needed >= 0) or (side == "max" and needed <= 1 + TOLERANCE):
                setting = "min_weight" if side == "min" else "max_weight"
                suggestion = _round_bound(min(max(needed, 0.0), 1.0), up=side == "max")
                overrides = f" and the overrides' {override_part}" if override_part else ""
                assets = f"{len(shared)} asset{'s' if len(shared) > 1 else ''}"
                each = " each" if len(shared) > 1 else ""
                advice = "remove assets" if side == "min" else "add assets"
                raise InfeasibleConstraints(
                    f"{getattr(names, setting)}: {assets} {at} {percent(shared[0])}{each}{overrides} add up to "
                    f"{percent(total)}; {verb} it to {'at most' if side == 'min' else 'at least'} "
                    f"{percent(suggestion)} or {advice}",
                    setting,
                )
        # Only the overrides are left to blame: their own minimums add up beyond 1, or every asset
        # has an overridden maximum.
        raise InfeasibleConstraints(
            f"{names.weight_overrides}: the overrides' {word}s add up to {percent(overrides_total)} "
            f"({override_part}); {verb} them" + (" or add assets" if side == "max" else ""),
            "weight_overrides",
        )


def check_feasibility(compiled: CompiledConstraints, names: SettingNames | None = None) -> None:
    """Raise `InfeasibleConstraints` with a sentence saying what to change; cheap checks first.

    ``names`` are what the sentences call the settings: the environment's variables by default,
    a portfolio's field labels for a portfolio's settings.
    """
    names = names or ENVIRONMENT_NAMES
    lo, hi, symbols = compiled.lower, compiled.upper, compiled.symbols
    lower_overridden = _overridden(compiled.lower_overridden, compiled.size)
    upper_overridden = _overridden(compiled.upper_overridden, compiled.size)
    for i, symbol in enumerate(symbols):
        if lo[i] > hi[i] + TOLERANCE:
            floor = "its override" if lower_overridden[i] else names.min_weight
            cap = "its override" if upper_overridden[i] else names.max_weight
            raise InfeasibleConstraints(
                f"{names.weight_overrides}: {symbol}'s minimum {percent(lo[i])} ({floor}) is above its maximum "
                f"{percent(hi[i])} ({cap}); change its override",
                "weight_overrides",
            )
    _check_bound_sums(compiled, names)
    for row, bound, label in zip(compiled.a_min, compiled.b_min, compiled.min_labels, strict=True):
        reachable = _max_linear(row, lo, hi)
        if reachable < bound - TOLERANCE:
            if label.startswith("portfolio ESG"):
                raise InfeasibleConstraints(
                    f"the ESG floor {bound:g} cannot be met: the highest portfolio ESG score the weight bounds "
                    f"allow is {reachable:.2f}; lower the floor or add higher-rated assets",
                    "esg_floor",
                )
            members = np.flatnonzero(row)
            if len(members) == 0:
                # The label is "group <name> >= <floor>"; names may contain spaces ("Health Care").
                group_name = label.removeprefix("group ").rpartition(" >= ")[0]
                raise InfeasibleConstraints(
                    f"{names.groups}: {label} cannot be met: no asset in the universe belongs to {group_name!r}; "
                    "add such assets or remove the limit",
                    "groups",
                )
            raise InfeasibleConstraints(
                f"{names.groups}: {label} cannot be met: its {len(members)} assets can hold at most "
                f"{reachable:.2f} ({_describe_sum(hi[members], [symbols[i] for i in members])}); raise their "
                "maximum weights, add assets to the group or lower the floor",
                "groups",
            )
    for row, bound, label in zip(compiled.a_max, compiled.b_max, compiled.max_labels, strict=True):
        members = np.flatnonzero(row)
        needed = float(lo[members].sum()) if len(members) else 0.0
        if needed > bound + TOLERANCE:
            raise InfeasibleConstraints(
                f"{names.groups}: {label} cannot be met: its {len(members)} assets must hold at least {needed:.2f} "
                f"({_describe_sum(lo[members], [symbols[i] for i in members])}); lower {names.min_weight} or raise "
                "the cap",
                "groups",
            )
    _check_jointly_feasible(compiled)


def _max_linear(row: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """max row @ w over lo <= w <= hi, sum w = 1 (greedy fill: exact for a single linear objective)."""
    weights = lo.copy()
    room = 1.0 - weights.sum()
    for i in np.argsort(-row, kind="stable"):
        take = min(hi[i] - lo[i], room)
        weights[i] += take
        room -= take
        if room <= 0:
            break
    return float(row @ weights)


def _check_jointly_feasible(compiled: CompiledConstraints) -> None:
    """Each limit can hold on its own; check they can hold together with one LP."""
    if len(compiled.b_min) + len(compiled.b_max) == 0:
        return
    if not solve_feasibility(compiled):
        limits = [*compiled.min_labels, *compiled.max_labels]
        raise InfeasibleConstraints(
            "the weight bounds and limits cannot all hold together ("
            + "; ".join(limits)
            + f"; every asset between {compiled.lower.min():g} and {compiled.upper.max():g}); relax one of them",
            "groups" if any(label.startswith("group ") for label in limits) else "esg_floor",
        )
