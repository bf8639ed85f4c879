"""Whole-share plans: rounding by deviation, funding and the top-up, the minimum trade for every
plan, the final guard, and notes written from the final orders.

The first three tests are small accounts where rounding every sell up and topping buys up to the
next share used to leave the portfolio further from its targets than before it traded.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimization.core.rebalancing import CostModel, PlanningStrategy, Proposal, RebalancePolicy, TradingPolicy
from optimization.core.rebalancing.funding import top_up

from .factories import make_context, make_inputs, make_policy, plan, trade_table

WHOLE3 = [False, False, False]


class Fixed(PlanningStrategy):
    """Proposes the values it was built with."""

    name = "fixed"

    def __init__(self, values):
        self.values = np.asarray(values, dtype=float)

    def propose(self, context):
        return Proposal(target_values_usd=self.values)


def run_fixed(holdings, values, *, policy=None, **inputs):
    """`finalize` of a fixed proposal through `plan_rebalance`'s registry-free path."""
    from optimization.core.rebalancing import finalize
    from optimization.core.rebalancing.planner import assemble_plan
    from optimization.core.rebalancing.results import TriggerDecision

    context = make_context(make_inputs(holdings, **inputs), policy or make_policy())
    strategy = Fixed(values)
    orders = finalize(context, strategy.propose(context), strategy)
    return assemble_plan(context, "fixed", TriggerDecision(rebalance=True, fired=("manual",)), (), orders)


# -- three small accounts -------------------------------------------------------------------------------------------


def test_a_full_plan_does_not_sell_the_single_share_of_two_holdings_still_wanted():
    """Three holdings, $1,500, drift 3.2%: A $465 (34% target), B $310 (20%), C $725 (46%), one
    share each, a manual `full` plan with the default policy. Rounding every sell up sold the
    only share of B ($11 over its target) and of C ($37 over), leaving 69% of the account in cash
    (drift 68.7%). Rounded to the count nearest the target, neither sell is a share, nor may a
    sell empty a holding the targets want; A's $45 buy has no cash: nothing trades."""
    inputs = make_inputs({"A": (1, 465, 0.34), "B": (1, 310, 0.20), "C": (1, 725, 0.46)}, fractionable=WHOLE3)
    result = plan(inputs, RebalancePolicy(trading=TradingPolicy(strategy="full")))
    assert result.trades == ()
    assert result.drift_after == result.drift_before == pytest.approx(0.03166, abs=1e-5)
    assert result.notes == ("no cash for buys: $43.73 wanted, $0.00 available",)


def test_a_threshold_sell_past_the_far_edge_of_the_band_with_nothing_to_buy_is_not_made():
    """A $1,196 account, default policy: X 3 x $151 (31.5% target, 37.9% held, band 5 pp), Y
    unheld at $483 a share (20.1% target), Z 10 x $60.50 (48.4%), $138 cash. Rounding X's $77
    sell up to a share took X to 25.2%, past the far edge of its band (26.4%), while Y's half
    share could not be bought: cash rose to 24% and drift from 20.0% to 26.2%. A share of X
    sold into idle cash raises drift, so it is not sold, and the notes say why cash stays."""
    inputs = make_inputs(
        {"X": (3, 151, 0.315), "Y": (0, 483, 0.201), "Z": (10, 60.5, 0.484)}, cash_usd=138, fractionable=WHOLE3
    )
    result = plan(inputs, RebalancePolicy(), manual=False)
    assert result.trigger.fired == ("band",)
    assert result.trades == ()
    assert result.drift_after == result.drift_before == pytest.approx(0.2005, abs=1e-4)
    assert result.notes == (
        "whole shares: X not sold, as no buy could use the proceeds of rounding up",
        "whole shares: about $135 stays in cash above the buffer (a share of Y costs $483)",
    )


def test_a_five_percent_target_is_not_topped_up_with_one_share_worth_46_percent():
    """$240 of cash, nothing held, default policy: D $110 a share (5% target), E $27 (38%), F $161
    (57%). Topping buys up to the next whole share of each bought a $110 share of D (46% of the
    account against 5%) and no F. Rounded by deviation, F's 0.85 share is one share (67% against
    57% is nearer than 0%), E's 3.4 shares give up one to pay for it, and D's 0.1 share is none:
    its one share would be 41 pp past a 1.25 pp band."""
    inputs = make_inputs(
        {"D": (0, 110, 0.05), "E": (0, 27, 0.38), "F": (0, 161, 0.57)}, cash_usd=240, fractionable=WHOLE3
    )
    result = plan(inputs, RebalancePolicy())
    assert trade_table(result) == [("buy", "E", 2.0), ("buy", "F", 1.0)]
    assert result.drift_before == pytest.approx(0.9975)
    assert result.drift_after == pytest.approx(0.2038, abs=1e-4)
    assert result.weights_after["D"] == 0.0
    assert result.notes == ("whole shares: about $24.29 stays in cash above the buffer (a share of E costs $27.00)",)


# -- rounding ---------------------------------------------------------------------------------------------------------


def test_a_share_rounded_up_past_the_target_is_not_sold_when_no_buy_uses_it():
    # $2,000: A $60 over its $1,000 target at $100 a share; a share sold leaves it $40 under,
    # nearer. But C's $100 target is one $500 share away, so the $100 would sit in cash: drift
    # would rise by $40 of $2,000. Not sold.
    holdings = {"A": (10.6, 100, 0.5), "B": (9, 100, 0.45), "C": (0, 500, 0.05)}
    result = plan(make_inputs(holdings, cash_usd=40, fractionable=WHOLE3), make_policy(strategy="full"))
    assert result.trades == ()
    assert "whole shares: A not sold, as no buy could use the proceeds of rounding up" in result.notes


def test_a_share_rounded_up_past_the_target_is_sold_when_a_buy_uses_it():
    # The same, with C at $100 a share: the share of A sold buys C's.
    holdings = {"A": (10.6, 100, 0.5), "B": (9, 100, 0.45), "C": (0, 100, 0.05)}
    result = plan(make_inputs(holdings, cash_usd=40, fractionable=WHOLE3), make_policy(strategy="full"))
    assert trade_table(result) == [("sell", "A", 1.0), ("buy", "C", 1.0)]
    assert result.drift_after < result.drift_before


def test_rounding_never_takes_a_holding_past_the_far_edge_of_its_band_when_a_share_less_stays_inside():
    # $5,000: A 5.5 x $600 = $3,300 against a $2,500 target (band 5 pp = $250), 1.33 shares over.
    # Two shares would leave it $400 under, past the far edge of its band; one share less leaves
    # it $200 over, inside: one share. B, $800 under, gets its proceeds.
    holdings = {"A": (5.5, 600, 0.5), "B": (1_700, 1, 0.5)}
    result = plan(make_inputs(holdings, fractionable=[False, True]), make_policy(strategy="threshold"))
    assert trade_table(result) == [("sell", "A", 1.0), ("buy", "B", pytest.approx(600.0))]
    assert result.weights_after["A"] == pytest.approx(0.54)


def test_the_top_up_stops_at_target_plus_band_unless_the_share_still_brings_the_holding_nearer():
    # $240 of cash to spend, nothing bought yet. D (5% target, band 1.25 pp): its $110 share
    # would end 41 pp over, past its band and farther than it is under: no. F (57%, band 5 pp):
    # its $161 share ends 10 pp over, past its band but nearer than 57 pp under: yes.
    inputs = make_inputs({"D": (0, 110, 0.05), "F": (0, 161, 0.95)}, cash_usd=240, fractionable=[False, False])
    context = make_context(inputs, make_policy())
    whole = np.array([True, True])
    quantity = top_up(context, np.zeros(2), np.array([1.0, 2.0]), 240.0, whole)
    assert quantity.tolist() == [0.0, 1.0]


# -- the minimum trade -----------------------------------------------------------------------------------------------

BALANCED = {"A": (50, 100, 0.5), "B": (30, 100, 0.3), "C": (20, 100, 0.2)}


def test_a_withdrawal_adds_no_sell_below_the_minimum_trade():
    # $500 out, $200 minimum: 5% of each is $250, $150 and $100. B and C are raised to the $200
    # minimum rather than sold below it ($150 of cash left over).
    policy = make_policy(strategy="threshold", min_trade_usd=200)
    result = plan(make_inputs(BALANCED, cash_flow_usd=-500), policy)
    assert trade_table(result) == [("sell", "A", 2.5), ("sell", "B", 2.0), ("sell", "C", 2.0)]
    assert all(t.notional_usd >= 200 for t in result.trades)
    assert result.cash_after_usd == pytest.approx(150.0)


def test_a_withdrawal_that_only_a_sale_below_the_minimum_can_pay_says_so():
    # $30 out of $20 cash and A's $25: $10 of A is sold although the minimum is $50.
    policy = make_policy(strategy="threshold", min_trade_usd=50)
    result = plan(make_inputs({"A": (0.25, 100, 1.0)}, cash_usd=20, cash_flow_usd=-30), policy)
    assert trade_table(result) == [("sell", "A", pytest.approx(0.1))]
    assert "no plan meets the $50.00 minimum: A sold below it to cover the $30.00 withdrawal" in result.notes


def test_a_withdrawal_keeps_the_last_share_of_a_wanted_holding_while_others_can_pay():
    # $100 out of $1,100: B, one $600 share, is the $100 over its target; selling its only share
    # would leave $500 in cash. A's shares pay instead.
    holdings = {"A": (5, 100, 0.5), "B": (1, 600, 0.5)}
    inputs = make_inputs(holdings, cash_flow_usd=-100, fractionable=[False, False])
    result = plan(inputs, make_policy(strategy="cash_flow"))
    assert trade_table(result) == [("sell", "A", 1.0)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.drift_after == pytest.approx(result.drift_before)


def test_a_withdrawal_from_fractional_remainders_in_a_whole_share_plan_sells_one_of_them_whole():
    """Found by the property tests on 10,000 portfolios: a sell of a whole fractional remainder
    (0.97 of a share) lost "one share" to idle cash and became a $3.77 buy. Now one remainder pays
    the $14.46 withdrawal and the notes name only what the final orders sell."""
    holdings = {"A": (0.35853405, 403.43, 0.04), "B": (0.97462026, 148.41, 0.04), "C": (0, 1.0, 0.92)}
    inputs = make_inputs(holdings, cash_flow_usd=-14.46, fractionable=[False, False, False])
    result = plan(inputs, make_policy(strategy="threshold", min_trade_usd=10, fractional_shares=False))
    assert [(t.side, t.symbol) for t in result.trades] == [("sell", "B")]
    assert result.trades[0].quantity == pytest.approx(0.97462026)
    assert "raise cash for the $14.46 withdrawal: 1 sell(s) added" in result.notes
    assert "the $14.46 withdrawal needs every share of B" in result.notes
    assert "about $130 stays in cash above the buffer: the sells that pay the withdrawal raise more" in " ".join(
        result.notes
    )


# -- the final guard -------------------------------------------------------------------------------------------------


def test_a_plan_that_would_raise_drift_is_replaced_by_no_trade_and_says_why():
    result = run_fixed({"A": (10, 100, 0.5), "B": (10, 100, 0.5)}, [500.0, 1_500.0])
    assert result.trades == ()
    assert result.notes == (
        "the strategy's trades: the planned trades would have left the portfolio further from its targets "
        "(drift 0.00% before, 25.00% after); no trade instead",
    )


def test_a_plan_that_would_raise_drift_keeps_the_part_that_does_not():
    # A $200 over, B $200 under; the proposal sells $600 of A and buys $600 of B (drift 10% ->
    # 20%). Its first $200 each way brings both to target.
    result = run_fixed({"A": (12, 100, 0.5), "B": (8, 100, 0.5)}, [600.0, 1_400.0], fractionable=[False, False])
    assert trade_table(result) == [("sell", "A", 2.0), ("buy", "B", 2.0)]
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)
    assert result.notes == (
        "whole shares: the planned trades would have left the portfolio further from its targets "
        "(drift 10.00% before, 20.00% after); smaller trades instead (drift 0.00%)",
    )


def test_a_withdrawal_no_whole_share_plan_pays_without_raising_drift_is_paid_and_noted():
    # $10 out and no cash: one of two $100 shares must go. B, the more overweight, is sold;
    # $90 stays in cash.
    holdings = {"A": (1, 100, 0.6), "B": (1, 100, 0.4)}
    result = plan(
        make_inputs(holdings, cash_flow_usd=-10, fractionable=[False, False]), make_policy(strategy="cash_flow")
    )
    assert trade_table(result) == [("sell", "B", 1.0)]
    assert result.cash_after_usd == pytest.approx(90.0)
    assert "the $10.00 withdrawal needs every share of B" in result.notes
    assert any(
        note.startswith("whole shares: the planned trades would have left the portfolio further from its targets")
        and note.endswith(
            "covering the $10.00 withdrawal leaves drift at 47.37%, the least any plan that pays it reaches"
        )
        for note in result.notes
    )


# -- notes from the final orders -------------------------------------------------------------------------------------


def test_idle_cash_notes_are_written_after_rounding():
    # $10,000: A 6 pp over sells 6 x $100; D 5.8 pp under wants $580 of $420 shares and gets one.
    # The plan itself leaves $20 in cash; whole shares leave $160 more: $180 in all.
    holdings = {"A": (66, 100, 0.6), "B": (20, 100, 0.2), "C": (9.8, 100, 0.1), "D": (1, 420, 0.1)}
    inputs = make_inputs(holdings, fractionable=[True, True, True, False])
    result = plan(inputs, make_policy(strategy="threshold"))
    assert trade_table(result) == [("sell", "A", 6.0), ("buy", "D", 1.0)]
    assert result.cash_after_usd == pytest.approx(180.0)
    assert result.notes == (
        "about $20.00 stays in cash above the buffer: threshold trades only holdings outside their bands "
        "(full or cash_flow would invest it)",
        "whole shares: about $160 more stays in cash above the buffer (a share of D costs $420)",
    )


def test_the_minimize_trades_fallback_names_whole_shares_not_limits_that_are_not_set():
    # A is one $2,000 share against a 50% target: no whole count fits its band, and keeping its
    # last share leaves nothing to buy B's $950 share with. No do-not-trade list, no cap.
    inputs = make_inputs({"A": (1, 2_000, 0.5), "B": (0, 950, 0.5)}, fractionable=[False, False])
    policy = make_policy(bands=None, costs=CostModel(spread_bps=0))
    result = plan(inputs, policy, strategy="minimize_trades")
    assert result.trades == ()
    notes = " ".join(result.notes)
    assert "No whole number of shares fits inside the band" in notes
    assert "No plan within whole shares and the cash available brings every holding inside" in notes
    assert "do-not-trade" not in notes and "turnover cap" not in notes
