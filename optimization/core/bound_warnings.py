"""Which weight bounds moved the targets away from what the glide path and the strategy chose.

`bound_warnings` compares the targets with the weights the same glide path and strategy give
without the per-asset bounds and group limits, and names each bound that holds an asset (or a
group) away from that choice, with both weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .constraints import AssetInfo, CompiledConstraints, Constraints, percent

#: Moves smaller than this (a twentieth of a percentage point) are solver noise, not a bound at work.
MOVE_TOLERANCE = 0.0005
# A weight this close to its bound sits on it.
ON_BOUND = 1e-7
# An asset that took weight names at most this many of the bounds' subjects it took it from.
CAUSES_NAMED = 3


@dataclass(frozen=True)
class BoundWarning:
    """One asset or group the bounds moved: its target ``weight`` and the ``asked`` weight
    (fractions), the `Constraints` setting that moved it ("max_weight", "min_weight",
    "weight_overrides", "groups"; "" for an asset that took the weight others gave up), and
    a sentence saying so."""

    subject: str  # a symbol, or "group <name>"
    setting: str
    weight: float
    asked: float
    message: str

    def to_dict(self) -> dict:
        return {
            "subject": self.subject,
            "setting": self.setting,
            "weight": self.weight,
            "asked": self.asked,
            "message": self.message,
        }


ASKED = "the glide path and optimizer asked"


def bounds_are_free(compiled: CompiledConstraints) -> bool:
    """True when no per-asset bound or group limit can bind (every asset in [0, 1], no group rows):
    the targets are then exactly what the glide path and strategy chose."""
    group_rows = sum(label.startswith("group ") for label in (*compiled.min_labels, *compiled.max_labels))
    return bool(np.all(compiled.lower <= 0) and np.all(compiled.upper >= 1) and group_rows == 0)


def without_bounds(constraints: Constraints) -> Constraints:
    """The same constraints without per-asset bounds and group limits (exclusions, ESG and L2 stay)."""
    return Constraints(
        min_weight=0.0,
        max_weight=1.0,
        esg_floor=constraints.esg_floor,
        esg_mode=constraints.esg_mode,
        excluded=constraints.excluded,
        long_only=constraints.long_only,
        l2_gamma=constraints.l2_gamma,
    )


def bound_warnings(
    weights: np.ndarray,
    asked: np.ndarray,
    compiled: CompiledConstraints,
    constraints: Constraints,
    assets: Mapping[str, AssetInfo],
) -> tuple[BoundWarning, ...]:
    """Warnings for ``weights`` (N,), the targets under ``compiled``, against ``asked`` (N,), the
    weights without the bounds; both follow ``compiled.symbols``.

    An asset on its maximum (minimum) that asked for more (less) is named with the bound that holds
    it; so is a group on its limit. Every other asset that moved is named as taking (or giving up)
    the weight those bounds moved.
    """
    symbols = compiled.symbols
    lower_overridden = _mask(compiled.lower_overridden, len(symbols))
    upper_overridden = _mask(compiled.upper_overridden, len(symbols))
    found: list[BoundWarning] = []
    explained: set[int] = set()
    for i, symbol in enumerate(symbols):
        if asked[i] > weights[i] + MOVE_TOLERANCE and weights[i] >= compiled.upper[i] - ON_BOUND:
            setting = "weight_overrides" if upper_overridden[i] else "max_weight"
            source = "its per-asset override" if upper_overridden[i] else "the maximum weight"
            found.append(_warning(symbol, setting, weights[i], asked[i], f"{symbol} capped at {{weight}} by {source}"))
            explained.add(i)
        elif asked[i] < weights[i] - MOVE_TOLERANCE and weights[i] <= compiled.lower[i] + ON_BOUND:
            setting = "weight_overrides" if lower_overridden[i] else "min_weight"
            source = "its per-asset override" if lower_overridden[i] else "the minimum weight"
            found.append(_warning(symbol, setting, weights[i], asked[i], f"{symbol} raised to {{weight}} by {source}"))
            explained.add(i)
    for group in constraints.groups:
        members = group.members(symbols, assets)
        if not members:
            continue
        total, total_asked = float(weights[members].sum()), float(asked[members].sum())
        subject = f"group {group.value}"
        if (
            group.max_weight is not None
            and total_asked > total + MOVE_TOLERANCE
            and total >= group.max_weight - ON_BOUND
        ):
            text = f"{subject} capped at {{weight}} by the group limit {group.label}"
        elif (
            group.min_weight is not None
            and total_asked < total - MOVE_TOLERANCE
            and total <= group.min_weight + ON_BOUND
        ):
            text = f"{subject} raised to {{weight}} by the group limit {group.label}"
        else:
            continue
        found.append(_warning(subject, "groups", total, total_asked, text))
        explained.update(members)
    if found:
        subjects = [warning.subject for warning in found]
        causes = ", ".join(subjects[:CAUSES_NAMED]) + (
            f" and {len(subjects) - CAUSES_NAMED} more" if len(subjects) > CAUSES_NAMED else ""
        )
        for i, symbol in enumerate(symbols):
            if i in explained or abs(weights[i] - asked[i]) <= MOVE_TOLERANCE:
                continue
            verb = "holds the weight taken from" if weights[i] > asked[i] else "gave up weight to make room for"
            found.append(_warning(symbol, "", weights[i], asked[i], f"{symbol} at {{weight}}: it {verb} {causes}"))
    elif np.abs(weights - asked).max(initial=0.0) > MOVE_TOLERANCE:
        # No bound holds the blend itself: they bound the glide path's sleeves, each solved within them.
        for i, symbol in enumerate(symbols):
            if abs(weights[i] - asked[i]) > MOVE_TOLERANCE:
                found.append(
                    _warning(symbol, "", weights[i], asked[i], f"{symbol} at {{weight}}: moved by the weight bounds")
                )
    return tuple(found)


def _warning(subject: str, setting: str, weight: float, asked: float, text: str) -> BoundWarning:
    message = text.format(weight=percent(weight)) + f" ({ASKED} {percent(asked)})"
    # Ten decimals, as the stored target weights: below them is solver noise.
    return BoundWarning(subject, setting, round(float(weight), 10), round(float(asked), 10), message)


def _mask(mask: np.ndarray | None, size: int) -> np.ndarray:
    return np.zeros(size, dtype=bool) if mask is None else mask
