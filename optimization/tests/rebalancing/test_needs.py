"""The needs table, the 5/25 bands, the deposit that avoids selling and the reason sentences."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.core.rebalancing import BandPolicy, deposit_needed_usd, needs
from optimization.core.rebalancing.needs import format_usd, need_sentence

from .factories import make_context, make_inputs, make_policy

# 60/20/10/10 at $100 a share, no cash: weights 66/17/10/7 %.
FOUR = {"A": (66, 100, 0.6), "B": (17, 100, 0.2), "C": (10, 100, 0.1), "D": (7, 100, 0.1)}


def test_five_twenty_five_bands_are_the_narrower_limit():
    context = make_context(make_inputs(FOUR))
    # 60% -> min(5 pp, 15 pp) = 5 pp; 20% -> min(5, 5) = 5 pp; 10% -> min(5, 2.5) = 2.5 pp.
    assert context.bands.tolist() == pytest.approx([0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (BandPolicy(band_mode="absolute", band_abs=0.03), [0.03, 0.03, 0.03, 0.03]),
        (BandPolicy(band_mode="relative", band_rel=0.2), [0.12, 0.04, 0.02, 0.02]),
    ],
)
def test_absolute_and_relative_bands(bands, expected):
    context = make_context(make_inputs(FOUR), make_policy(bands=bands))
    assert context.bands.tolist() == pytest.approx(expected)


def test_hybrid_bands_are_the_wider_limit():
    context = make_context(make_inputs(FOUR), make_policy(bands=BandPolicy(band_mode="hybrid")))
    # 60% -> max(5 pp, 15 pp) = 15 pp; 20% -> max(5, 5) = 5 pp; 10% -> max(5, 2.5) = 5 pp.
    assert context.bands.tolist() == pytest.approx([0.15, 0.05, 0.05, 0.05])
    assert context.outside.tolist() == [False, False, False, False]


def test_an_unheld_target_counts_as_outside_only_when_asked():
    # QQQ's 3% target is unheld: 3 pp under, inside a 5 pp absolute band unless asked.
    holdings = {"SPY": (97, 100, 0.97), "QQQ": (0, 100, 0.03)}
    rows = needs(make_context(make_inputs(holdings, cash_usd=300), make_policy(bands=BandPolicy("absolute"))))
    assert (rows[1].outside, rows[1].action) == (False, "hold")
    asked = make_policy(bands=BandPolicy("absolute", unheld_outside_band=True))
    spy, qqq = needs(make_context(make_inputs(holdings, cash_usd=300), asked))
    assert (qqq.outside, qqq.action, qqq.urgency) == (True, "buy", pytest.approx(0.6))
    # A held holding and a target of 0 are unaffected.
    assert (spy.outside, spy.action) == (False, "hold")
    zero = needs(make_context(make_inputs({"SPY": (100, 100, 1.0), "QQQ": (0, 100, 0.0)}), asked))[1]
    assert zero.outside is False


def test_needs_rows():
    rows = needs(make_context(make_inputs(FOUR)))
    assert [r.symbol for r in rows] == ["A", "B", "C", "D"]
    a, b, c, d = rows
    assert (a.current_weight, a.target_weight, a.deviation) == pytest.approx((0.66, 0.6, 0.06))
    assert (a.band, a.outside, a.action) == (pytest.approx(0.05), True, "sell")
    assert a.urgency == pytest.approx(1.2)
    assert (b.deviation, b.outside, b.action, b.urgency) == (pytest.approx(-0.03), False, "hold", pytest.approx(0.6))
    assert (c.deviation, c.outside, c.action, c.urgency) == (pytest.approx(0.0), False, "hold", pytest.approx(0.0))
    assert (d.deviation, d.band, d.outside, d.action) == (pytest.approx(-0.03), pytest.approx(0.025), True, "buy")
    assert d.urgency == pytest.approx(1.2)


def test_needs_use_the_effective_targets_with_the_buffer():
    rows = needs(make_context(make_inputs(FOUR), make_policy(cash_buffer_weight=0.1)))
    assert [r.target_weight for r in rows] == pytest.approx([0.54, 0.18, 0.09, 0.09])


def test_a_holding_on_its_band_edge_is_inside():
    # 65% against 60% with a 5 pp band: on the edge, not outside.
    context = make_context(make_inputs({"A": (65, 100, 0.6), "B": (35, 100, 0.4)}))
    assert needs(context)[0].outside is False


def test_sentences():
    assert need_sentence("VTI", -0.072, 0.05, True) == "VTI 7.2 pp under target (band 5.0 pp)"
    assert need_sentence("BND", 0.031, 0.025, True) == "BND 3.1 pp over target (band 2.5 pp)"
    assert need_sentence("VTI", -0.012, 0.05, False) == "VTI 1.2 pp under target (inside its 5.0 pp band)"
    assert need_sentence("X", 0.0, 0.0001, False) == "X on target (inside its 0.01 pp band)"
    # Outside although within its band: an unheld target with unheld_outside_band.
    assert need_sentence("QQQ", -0.03, 0.05, True) == "QQQ not held, 3.0 pp under target (band 5.0 pp)"
    assert format_usd(-1234.5) == "$1,234" and format_usd(9.5) == "$9.50"


ABSOLUTE = BandPolicy("absolute", 0.05)


def inside_after(context, deposit: float) -> bool:
    """Independent check: deposit, then buy every holding below its band up to its lower edge;
    whether every holding is then inside its band with the buffer kept (continuous, no costs)."""
    total = context.total_usd + deposit
    lower, upper = context.targets - context.bands, context.targets + context.bands
    values = np.maximum(context.values_usd, np.where(context.tradable, lower * total, 0.0))
    weights = values / total
    cash = total - values.sum()
    inside = (weights >= lower - 1e-9) & (weights <= upper + 1e-9)
    return bool(inside.all() and cash >= context.cash_target * total - 1e-6)


def test_the_deposit_dilutes_a_holding_above_its_band_back_inside():
    # A is 60% against 50% +/- 5 pp: inside once the total reaches 6,000 / 0.55 = 10,909.09.
    context = make_context(
        make_inputs({"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}), make_policy(bands=ABSOLUTE)
    )
    assert deposit_needed_usd(context) == pytest.approx(909.0909, abs=1e-4)
    assert inside_after(context, 909.10) and not inside_after(context, 900)


def test_the_deposit_pays_for_buying_a_holding_up_to_its_band():
    # Thirds, A unheld: A needs (1/3 - 5 pp) of the total, bought with the deposit alone:
    # D = (1/3 - 0.05) x (10,000 + D), so D = 2,833.33 / 0.71667 = 3,953.49.
    holdings = {"A": (0, 100, 1 / 3), "B": (50, 100, 1 / 3), "C": (50, 100, 1 / 3)}
    context = make_context(make_inputs(holdings), make_policy(bands=ABSOLUTE))
    assert deposit_needed_usd(context) == pytest.approx(10_000 * (1 / 3 - 0.05) / (1 - (1 / 3 - 0.05)))
    assert inside_after(context, 3_953.50) and not inside_after(context, 3_950)


def test_the_deposit_counts_the_buffer():
    # With a 4% buffer A's band is 48% +/- 5 pp: 6,000 / 0.53 = 11,320.75.
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    context = make_context(make_inputs(holdings), make_policy(bands=ABSOLUTE, cash_buffer_weight=0.04))
    assert deposit_needed_usd(context) == pytest.approx(6_000 / 0.53 - 10_000)


def test_no_deposit_needed_when_every_holding_is_inside_or_cash_can_buy_it_inside():
    context = make_context(make_inputs({"A": (40, 100, 0.5), "B": (40, 100, 0.5)}, cash_usd=200))
    assert deposit_needed_usd(context) == 0.0
    context = make_context(make_inputs({"A": (55, 100, 0.5), "B": (0, 100, 0.5)}, cash_usd=4_500))
    assert deposit_needed_usd(context) == 0.0


def test_a_holding_with_a_zero_target_is_diluted_inside_its_band():
    # B's 0% target has a 5 pp band: B is inside once its $500 is 5% of the total.
    context = make_context(make_inputs({"A": (60, 100, 1.0), "B": (5, 100, 0.0)}), make_policy(bands=ABSOLUTE))
    assert deposit_needed_usd(context) == pytest.approx(10_000 - 6_500)


def test_no_deposit_can_when_a_do_not_trade_holding_would_fall_below_its_band():
    # A cannot be bought: at 10% against 50% +/- 5 pp only a smaller portfolio would lift it.
    holdings = {"A": (10, 100, 0.5), "B": (90, 100, 0.5)}
    context = make_context(make_inputs(holdings), make_policy(bands=ABSOLUTE, do_not_trade=frozenset({"A"})))
    assert deposit_needed_usd(context) is None


@pytest.mark.parametrize("seed", range(200))
def test_the_deposit_is_the_smallest_that_works_on_random_portfolios(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 12))
    targets = rng.dirichlet(np.ones(size))
    holdings = {
        f"S{i}": (float(rng.integers(0, 200)), float(rng.uniform(5, 500)), float(targets[i])) for i in range(size)
    }
    bands = BandPolicy(str(rng.choice(["absolute", "relative", "five_twenty_five", "hybrid"])), 0.05, 0.25)
    policy = make_policy(bands=bands, cash_buffer_weight=float(rng.choice([0.0, 0.02])))
    context = make_context(make_inputs(holdings, cash_usd=float(rng.uniform(0, 2_000))), policy)
    deposit = deposit_needed_usd(context)
    assert deposit is not None and deposit >= 0
    assert inside_after(context, deposit * (1 + 1e-9) + 1e-6)
    if deposit > 1:
        assert not inside_after(context, deposit * 0.999)
