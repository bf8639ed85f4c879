"""The age-based glide path, its validation, and loading custom glide paths by dotted path."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.core.glidepath import (
    DEFAULT_KNOTS,
    DEFAULT_RETIREMENT_AGE,
    GlidePath,
    GlidePathError,
    blend_shares,
    load_glide_path,
)

THIS_MODULE = __name__
AGES = st.floats(min_value=0, max_value=120, allow_nan=False)


class FixedBlend:
    """A custom glide path: the same blend at every age, configurable like `GlidePath`."""

    def __init__(self, knots=None, retirement_age=None):
        self.knots = knots
        self.retirement_age = retirement_age

    def get_allocation_blend(self, age: float) -> tuple[float, float]:
        return 0.6, 0.4


class BrokenBlend:
    """A custom glide path whose answer is whatever the test sets."""

    answer: object = (0.6, 0.4)

    def get_allocation_blend(self, age: float) -> object:
        return self.answer


class NoBlend:
    """Has no get_allocation_blend: not a glide path."""


# --- the default curve ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "share"), DEFAULT_KNOTS)
def test_default_curve_passes_through_every_knot(age, share):
    assert GlidePath().equity_share(age) == pytest.approx(share, abs=1e-15)


def test_default_curve_interpolates_linearly_between_knots():
    path = GlidePath()
    assert path.equity_share(45) == pytest.approx(0.8325)  # halfway from 0.90 at 40 to 0.765 at 50
    assert path.equity_share(68.5) == pytest.approx(0.40)  # halfway from 0.50 at 65 to 0.30 at 72


@pytest.mark.parametrize("age", [0, 18, 25, 39.9, 40])
def test_default_curve_is_flat_before_the_first_knot(age):
    assert GlidePath().equity_share(age) == 0.90


@pytest.mark.parametrize("age", [72, 80, 95, 120])
def test_default_curve_is_flat_after_the_last_knot(age):
    assert GlidePath().equity_share(age) == 0.30


def test_defaults_are_retirement_at_65():
    path = GlidePath()
    assert DEFAULT_RETIREMENT_AGE == 65
    assert path.retirement_age == 65
    assert path.knots == DEFAULT_KNOTS


# --- retirement age shifts the curve ---------------------------------------------------------------------------------


def test_later_retirement_shifts_the_curve_right():
    path = GlidePath(retirement_age=70)
    assert path.equity_share(70) == pytest.approx(0.50)
    assert path.equity_share(45) == 0.90  # 40 on the base curve
    assert path.equity_share(50) == pytest.approx(0.8325)  # 45 on the base curve
    assert path.equity_share(77) == 0.30


def test_earlier_retirement_shifts_the_curve_left():
    path = GlidePath(retirement_age=60)
    assert path.equity_share(60) == pytest.approx(0.50)
    assert path.equity_share(35) == 0.90
    assert path.equity_share(67) == 0.30


def test_knots_are_reported_unshifted():
    assert GlidePath(retirement_age=70).knots == DEFAULT_KNOTS


# --- custom knots ----------------------------------------------------------------------------------------------------


def test_custom_knots():
    path = GlidePath(knots=[(30, 1.0), (60, 0.4)])
    assert path.equity_share(20) == 1.0
    assert path.equity_share(45) == pytest.approx(0.7)
    assert path.equity_share(70) == 0.4
    assert path.knots == ((30.0, 1.0), (60.0, 0.4))


def test_a_single_knot_is_a_constant_share():
    path = GlidePath(knots=[(50, 0.6)])
    assert {path.equity_share(age) for age in (0, 50, 120)} == {0.6}
    assert path.describe() == "60% equity at every age (retirement at 65)"


def test_knots_need_not_decrease():
    # A "rising equity" path after retirement is a legitimate (if unusual) choice.
    assert GlidePath(knots=[(60, 0.3), (80, 0.5)]).equity_share(70) == pytest.approx(0.4)


# --- allocation blend, description, equality -------------------------------------------------------------------------


def test_allocation_blend_is_equity_and_the_rest():
    aggressive, safe = GlidePath().get_allocation_blend(45)
    assert aggressive == pytest.approx(0.8325)
    assert safe == pytest.approx(0.1675)
    assert aggressive + safe == 1.0


def test_describe():
    assert GlidePath().describe() == "90% equity to age 40, 30% from 72 (retirement at 65)"
    assert GlidePath(retirement_age=70).describe() == "90% equity to age 45, 30% from 77 (retirement at 70)"
    custom = GlidePath(knots=[(35, 0.875), (70, 0.2)])
    assert custom.describe() == "87.5% equity to age 35, 20% from 70 (retirement at 65)"


def test_equality_and_repr():
    assert GlidePath() == GlidePath(knots=[list(knot) for knot in DEFAULT_KNOTS], retirement_age=65.0)
    assert GlidePath() != GlidePath(retirement_age=66)
    assert GlidePath() != GlidePath(knots=[(40, 0.9)])
    assert GlidePath() != "GlidePath()"
    assert hash(GlidePath()) == hash(GlidePath(retirement_age=65.0))
    path = GlidePath(knots=[(50, 0.5)], retirement_age=70)
    assert repr(path) == "GlidePath(knots=((50.0, 0.5),), retirement_age=70.0)"


# --- validation: every message names the field -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"knots": ()}, "knots: at least one (age, equity share) knot is required"),
        ({"knots": [(60, 0.6), (55, 0.7)]}, "knots: ages must be strictly increasing (55 after 60)"),
        ({"knots": [(50, 0.7), (50, 0.6)]}, "knots: ages must be strictly increasing (50 after 50)"),
        ({"knots": [(50, 1.2)]}, "knots: equity share 1.2 at age 50 is outside [0, 1]"),
        ({"knots": [(50, -0.1)]}, "knots: equity share -0.1 at age 50 is outside [0, 1]"),
        ({"knots": [(math.nan, 0.5)]}, "knots: age nan is not a finite number"),
        ({"knots": [(math.inf, 0.5)]}, "knots: age inf is not a finite number"),
        ({"knots": [(50, math.nan)]}, "knots: equity share at age 50 nan is not a finite number"),
        ({"knots": [("fifty", 0.5)]}, "knots: age 'fifty' is not a number"),
        ({"knots": [(50, True)]}, "knots: equity share at age 50 True is not a number"),
        ({"knots": [(50, 0.5, 1)]}, "knots: expected (age, equity share) pairs, got (50, 0.5, 1)"),
        ({"knots": 5}, "knots: expected (age, equity share) pairs, got 5"),
        ({"retirement_age": 130}, "retirement_age: 130 is outside 40..100"),
        ({"retirement_age": 39}, "retirement_age: 39 is outside 40..100"),
        ({"retirement_age": math.nan}, "retirement_age: nan is not a finite number"),
        ({"retirement_age": "65"}, "retirement_age: '65' is not a number"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(kwargs, message):
    with pytest.raises(GlidePathError) as caught:
        GlidePath(**kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("age", "message"),
    [
        (-3, "age: -3 is outside 0..120"),
        (121, "age: 121 is outside 0..120"),
        (math.nan, "age: nan is not a finite number"),
        (math.inf, "age: inf is not a finite number"),
        (None, "age: None is not a number"),
    ],
)
def test_bad_age_is_rejected_naming_the_field(age, message):
    with pytest.raises(GlidePathError) as caught:
        GlidePath().equity_share(age)
    assert str(caught.value) == message
    with pytest.raises(GlidePathError):
        GlidePath().get_allocation_blend(age)


def test_glide_path_error_is_a_value_error():
    assert issubclass(GlidePathError, ValueError)


# --- loading by dotted path ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dotted_path", [None, "optimization.core.glidepath.GlidePath"])
def test_load_default_glide_path(dotted_path):
    assert load_glide_path(dotted_path) == GlidePath()
    assert load_glide_path(dotted_path, retirement_age=70) == GlidePath(retirement_age=70)
    assert load_glide_path(dotted_path, knots=[(50, 0.5)]) == GlidePath(knots=[(50, 0.5)])


def test_load_default_glide_path_validates_options():
    with pytest.raises(GlidePathError, match=r"^retirement_age: 130 is outside 40\.\.100$"):
        load_glide_path(retirement_age=130)


def test_load_custom_glide_path_by_dotted_path():
    plugin = load_glide_path(f"{THIS_MODULE}.FixedBlend", retirement_age=67)
    assert isinstance(plugin, FixedBlend)
    assert plugin.retirement_age == 67
    assert plugin.knots is None  # options left at None are not passed
    assert blend_shares(plugin, 30) == (0.6, 0.4)


def test_load_custom_class_without_options_gets_no_arguments():
    assert isinstance(load_glide_path(f"{THIS_MODULE}.BrokenBlend"), BrokenBlend)


@pytest.mark.parametrize(
    ("dotted_path", "message"),
    [
        ("no_such_module.Path", r"^glide_path: cannot import 'no_such_module\.Path': No module named 'no_such_module'"),
        (f"{THIS_MODULE}.Missing", rf"^glide_path: cannot import '{THIS_MODULE}\.Missing': .* has no Missing$"),
        ("GlidePath", r"^glide_path: 'GlidePath' is not a dotted path \(module\.Class\)$"),
        (f"{THIS_MODULE}.NoBlend", rf"^glide_path: {THIS_MODULE}\.NoBlend has no callable get_allocation_blend"),
    ],
)
def test_load_rejects_bad_paths_naming_them(dotted_path, message):
    with pytest.raises(GlidePathError, match=message):
        load_glide_path(dotted_path)


def test_load_rejects_a_class_that_does_not_take_the_options():
    with pytest.raises(GlidePathError, match=rf"^glide_path: {THIS_MODULE}\.BrokenBlend cannot be built with"):
        load_glide_path(f"{THIS_MODULE}.BrokenBlend", retirement_age=70)


# --- blend_shares checks a plug-in's answer --------------------------------------------------------------------------


def test_blend_shares_passes_a_good_answer_through_as_floats():
    assert blend_shares(GlidePath(), 45) == GlidePath().get_allocation_blend(45)
    plugin = BrokenBlend()
    plugin.answer = [1, 0]
    shares = blend_shares(plugin, 45)
    assert shares == (1.0, 0.0)
    assert all(type(share) is float for share in shares)


def test_blend_shares_tolerates_rounding_in_the_sum():
    plugin = BrokenBlend()
    plugin.answer = (0.7, 0.3 + 1e-12)
    assert blend_shares(plugin, 45) == (0.7, 0.3 + 1e-12)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((0.7, 0.4), "sums to 1.1, not 1"),
        ((0.5, 0.5 + 1e-8), "not 1"),
        ((1.2, -0.2), "share 1.2 is not a number in [0, 1]"),
        ((math.nan, 0.5), "share nan is not a number in [0, 1]"),
        ((0.5, "0.5"), "share '0.5' is not a number in [0, 1]"),
        ((1.0,), "not a pair"),
        ((0.5, 0.25, 0.25), "not a pair"),
        (0.6, "not a pair"),
        ("ab", "not a pair"),
        (None, "not a pair"),
    ],
)
def test_blend_shares_rejects_a_bad_plugin_answer_naming_the_plugin(answer, reason):
    plugin = BrokenBlend()
    plugin.answer = answer
    with pytest.raises(GlidePathError) as caught:
        blend_shares(plugin, 45)
    assert str(caught.value).startswith("glide_path: BrokenBlend.get_allocation_blend(45) returned ")
    assert reason in str(caught.value)


# --- properties ------------------------------------------------------------------------------------------------------


def _assert_valid_and_non_increasing(path: GlidePath, ages: list[float]) -> None:
    shares = [path.equity_share(age) for age in sorted(ages)]
    assert all(0.0 <= share <= 1.0 for share in shares)
    assert all(later <= earlier for earlier, later in itertools.pairwise(shares))


@settings(max_examples=200, deadline=None)
@given(retirement_age=st.floats(min_value=50, max_value=75), ages=st.lists(AGES, min_size=2, max_size=30))
def test_default_curve_is_a_share_and_non_increasing_for_any_retirement_age(retirement_age, ages):
    _assert_valid_and_non_increasing(GlidePath(retirement_age=retirement_age), ages)


@st.composite
def non_increasing_knots(draw) -> list[tuple[float, float]]:
    ages = draw(st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=8, unique=True))
    shares = draw(st.lists(st.floats(min_value=0, max_value=1), min_size=len(ages), max_size=len(ages)))
    return list(zip(sorted(ages), sorted(shares, reverse=True), strict=True))


@settings(max_examples=200, deadline=None)
@given(knots=non_increasing_knots(), ages=st.lists(AGES, min_size=2, max_size=30))
def test_any_non_increasing_knots_give_a_share_that_never_increases(knots, ages):
    path = GlidePath(knots=knots)
    # Ages exactly at and next to the knots are where rounding would show.
    knot_ages = [age for age, _ in knots]
    neighbours = [math.nextafter(age, direction) for age in knot_ages for direction in (0.0, 120.0)]
    _assert_valid_and_non_increasing(path, ages + [age for age in knot_ages + neighbours if 0 <= age <= 120])


@settings(max_examples=200, deadline=None)
@given(knots=non_increasing_knots(), retirement_age=st.floats(min_value=40, max_value=100), age=AGES)
def test_allocation_blend_sums_to_exactly_one(knots, retirement_age, age):
    path = GlidePath(knots=knots, retirement_age=retirement_age)
    aggressive, safe = path.get_allocation_blend(age)
    assert aggressive + safe == 1.0
    assert 0.0 <= safe <= 1.0
    assert blend_shares(path, age) == (aggressive, safe)
