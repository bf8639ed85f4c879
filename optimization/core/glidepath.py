"""Age-based equity share (the glide path) and the plug-in interface for custom ones.

A glide path answers one question: at a given age, what fraction of the
portfolio should sit in the aggressive (equity-like) sleeve and what fraction
in the safe one. The default is a piecewise-linear curve through a few knots
resembling Vanguard's Target Retirement funds for retirement at 65.

Anything with a `get_allocation_blend(age) -> (aggressive_share, safe_share)`
method can replace `GlidePath` (`load_glide_path` imports it by dotted path);
callers go through `blend_shares`, which checks the plug-in's answer so a buggy
plug-in cannot turn into a bad allocation target.
"""

from __future__ import annotations

import importlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from numbers import Real

from .errors import ConfigurationError

# Equity share by age for retirement at 65; linear between knots, flat outside.
DEFAULT_KNOTS: tuple[tuple[float, float], ...] = (
    (40, 0.90),
    (50, 0.765),
    (55, 0.69),
    (60, 0.615),
    (65, 0.50),
    (72, 0.30),
)
DEFAULT_RETIREMENT_AGE = 65
# Knots describe the curve of someone retiring at this age; other retirement ages shift it.
KNOTS_RETIREMENT_AGE = 65
RETIREMENT_AGE_RANGE = (40, 100)
AGE_RANGE = (0, 120)
DEFAULT_PATH = "optimization.core.glidepath.GlidePath"
# How far a plug-in's two shares may sum away from 1 before the answer is rejected.
BLEND_SUM_TOLERANCE = 1e-9


class GlidePathError(ConfigurationError):
    """A glide path's configuration, input or plug-in answer is unusable; the message names the field."""


class GlidePath:
    """Piecewise-linear equity share by age, shifted along the age axis for the retirement age.

    `knots` are (age, equity share) pairs for retirement at 65. Retiring at
    another age moves the whole curve: `equity_share(age) = base(age -
    (retirement_age - 65))`, so a 70-year-old retiring at 70 holds what a
    65-year-old retiring at 65 holds. The curve is flat before the first knot
    and after the last.
    """

    def __init__(
        self,
        knots: Iterable[Sequence[float]] = DEFAULT_KNOTS,
        retirement_age: float = DEFAULT_RETIREMENT_AGE,
    ) -> None:
        self._knots = _validated_knots(knots)
        self._retirement_age = _validated_number("retirement_age", retirement_age, RETIREMENT_AGE_RANGE)
        self._ages_years = tuple(age for age, _ in self._knots)
        self._shares = tuple(share for _, share in self._knots)

    @property
    def knots(self) -> tuple[tuple[float, float], ...]:
        """The knots as given (for retirement at 65), not shifted by the retirement age."""
        return self._knots

    @property
    def retirement_age(self) -> float:
        return self._retirement_age

    @property
    def shift_years(self) -> float:
        """How far right the curve moves: retiring later keeps more equity for longer."""
        return self._retirement_age - KNOTS_RETIREMENT_AGE

    def equity_share(self, age: float) -> float:
        """Equity share in [0, 1] at `age` (years, 0..120)."""
        age_years = _validated_number("age", age, AGE_RANGE)
        return _interpolate(self._ages_years, self._shares, age_years - self.shift_years)

    def get_allocation_blend(self, age: float) -> tuple[float, float]:
        """(aggressive_share, safe_share) at `age`; the two sum to exactly 1."""
        aggressive = self.equity_share(age)
        # For x in [0, 1], x + fl(1 - x) rounds to exactly 1.0.
        return aggressive, 1.0 - aggressive

    def describe(self) -> str:
        """One line for people, e.g. "90% equity to age 40, 30% from 72 (retirement at 65)"."""
        retirement = f"(retirement at {_format_number(self._retirement_age)})"
        (first_age, first_share), (last_age, last_share) = self._knots[0], self._knots[-1]
        if len(self._knots) == 1:
            return f"{_format_percent(first_share)} equity at every age {retirement}"
        return (
            f"{_format_percent(first_share)} equity to age {_format_number(first_age + self.shift_years)}, "
            f"{_format_percent(last_share)} from {_format_number(last_age + self.shift_years)} {retirement}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlidePath):
            return NotImplemented
        return self._knots == other._knots and self._retirement_age == other._retirement_age

    def __hash__(self) -> int:
        return hash((self._knots, self._retirement_age))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(knots={self._knots!r}, retirement_age={self._retirement_age!r})"


def load_glide_path(
    dotted_path: str | None = None,
    *,
    knots: Iterable[Sequence[float]] | None = None,
    retirement_age: float | None = None,
) -> object:
    """The glide path named by `dotted_path` (default `GlidePath`), built with the options that are not None.

    A custom class only needs a `get_allocation_blend(age)` method; it receives
    `knots` and `retirement_age` as keyword arguments only when they are given.
    """
    given = {"knots": knots, "retirement_age": retirement_age}
    options = {name: value for name, value in given.items() if value is not None}
    path = dotted_path or DEFAULT_PATH
    factory = GlidePath if path == DEFAULT_PATH else _import_by_path(path)
    try:
        plugin = factory(**options)
    except GlidePathError:
        raise
    except TypeError as error:
        raise GlidePathError(f"glide_path: {path} cannot be built with {options}: {error}") from error
    if not callable(getattr(plugin, "get_allocation_blend", None)):
        raise GlidePathError(f"glide_path: {path} has no callable get_allocation_blend(age)")
    return plugin


def blend_shares(plugin: object, age: float) -> tuple[float, float]:
    """`plugin.get_allocation_blend(age)`, checked: two finite shares in [0, 1] that sum to 1."""
    answer = plugin.get_allocation_blend(age)  # type: ignore[attr-defined]
    name = type(plugin).__name__
    pair = _as_pair(answer)
    if pair is None:
        raise GlidePathError(f"glide_path: {name}.get_allocation_blend({age}) returned {answer!r}, not a pair")
    for share in pair:
        if not _is_real(share) or not math.isfinite(share) or not 0.0 <= share <= 1.0:
            raise GlidePathError(
                f"glide_path: {name}.get_allocation_blend({age}) returned {answer!r}; "
                f"share {share!r} is not a number in [0, 1]"
            )
    aggressive, safe = float(pair[0]), float(pair[1])
    if abs(aggressive + safe - 1.0) > BLEND_SUM_TOLERANCE:
        raise GlidePathError(
            f"glide_path: {name}.get_allocation_blend({age}) returned {answer!r}, "
            f"which sums to {aggressive + safe!r}, not 1"
        )
    return aggressive, safe


def _as_pair(answer: object) -> tuple[object, ...] | None:
    """The plug-in's answer as a 2-tuple (a tuple, list or array will do), or None when it is not a pair."""
    if isinstance(answer, str | bytes):
        return None
    try:
        pair = tuple(answer)  # type: ignore[arg-type]
    except TypeError:
        return None
    return pair if len(pair) == 2 else None


def _import_by_path(dotted_path: str) -> object:
    module_path, _, attribute = dotted_path.rpartition(".")
    if not module_path:
        raise GlidePathError(f"glide_path: {dotted_path!r} is not a dotted path (module.Class)")
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise GlidePathError(f"glide_path: cannot import {dotted_path!r}: {error}") from error
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise GlidePathError(f"glide_path: cannot import {dotted_path!r}: {module_path} has no {attribute}") from error


def _validated_knots(knots: Iterable[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    try:
        pairs = [tuple(knot) for knot in knots]
    except TypeError as error:
        raise GlidePathError(f"knots: expected (age, equity share) pairs, got {knots!r}") from error
    if not pairs:
        raise GlidePathError("knots: at least one (age, equity share) knot is required")
    validated: list[tuple[float, float]] = []
    for pair in pairs:
        if len(pair) != 2:
            raise GlidePathError(f"knots: expected (age, equity share) pairs, got {pair!r}")
        age_years = _finite("knots", pair[0], "age ")
        share = _finite("knots", pair[1], f"equity share at age {_format_number(age_years)} ")
        if not 0.0 <= share <= 1.0:
            raise GlidePathError(
                f"knots: equity share {_format_number(share)} at age {_format_number(age_years)} is outside [0, 1]"
            )
        if validated and age_years <= validated[-1][0]:
            raise GlidePathError(
                f"knots: ages must be strictly increasing "
                f"({_format_number(age_years)} after {_format_number(validated[-1][0])})"
            )
        validated.append((age_years, share))
    return tuple(validated)


def _validated_number(field: str, value: object, bounds: tuple[float, float]) -> float:
    number = _finite(field, value)
    low, high = bounds
    if not low <= number <= high:
        raise GlidePathError(f"{field}: {_format_number(number)} is outside {low}..{high}")
    return number


def _finite(field: str, value: object, what: str = "") -> float:
    """`value` as a float, or a GlidePathError naming `field` (and `what`, a prefix) when it is not finite and real."""
    if not _is_real(value):
        raise GlidePathError(f"{field}: {what}{value!r} is not a number")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise GlidePathError(f"{field}: {what}{value!r} is not a finite number")
    return number


def _is_real(value: object) -> bool:
    # bool is a Real, but True as an age or a share is a bug, not a number.
    return isinstance(value, Real) and not isinstance(value, bool)


def _interpolate(ages_years: tuple[float, ...], shares: tuple[float, ...], age_years: float) -> float:
    """Linear interpolation, flat outside the knots, clamped to the segment's end values.

    The clamp makes rounding unable to step past a knot's value, so a curve
    with non-increasing knots is non-increasing at every float age (np.interp
    can be off by one unit in the last place at a knot).
    """
    if age_years <= ages_years[0]:
        return shares[0]
    if age_years >= ages_years[-1]:
        return shares[-1]
    right = bisect_right(ages_years, age_years)
    age_0, age_1 = ages_years[right - 1], ages_years[right]
    share_0, share_1 = shares[right - 1], shares[right]
    fraction = min(1.0, (age_years - age_0) / (age_1 - age_0))
    share = share_0 + fraction * (share_1 - share_0)
    return min(max(share, min(share_0, share_1)), max(share_0, share_1))


def _format_number(value: float) -> str:
    """`65` rather than `65.0`, `1.2` rather than `1.2000000000000002`-style noise kept out of messages."""
    return f"{value:g}"


def _format_percent(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"
