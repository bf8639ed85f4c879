"""The finishing rules every strategy shares: minimum trade, turnover cap, do-not-trade, whole
shares, the buffer, funding and scaling, withdrawals, no shorts, costs and trade order."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.core.errors import ConfigurationError
from optimization.core.rebalancing import BandPolicy, CostModel, PlanningStrategy, Proposal, finalize
from optimization.core.rebalancing.simple import FullRebalance

from .factories import make_context, make_inputs, make_policy, plan, trade_table

THREE = {"VTI": (100, 100, 0.5), "BND": (100, 50, 0.3), "VXUS": (50, 100, 0.2)}
FOUR = {"A": (66, 100, 0.6), "B": (17, 100, 0.2), "C": (10, 100, 0.1), "D": (7, 100, 0.1)}


class Fixed(PlanningStrategy):
    """Proposes the values it was built with."""

    name = "fixed"

    def __init__(self, values, *, sells: bool = True, reasons=None):
        self.values = np.asarray(values, dtype=float)
        self.sells = sells
        self.reasons = reasons or {}

    def propose(self, context):
        return Proposal(target_values_usd=self.values, reasons=self.reasons)


def run(holdings, values, *, policy=None, sells=True, reasons=None, **inputs):
    context = make_context(make_inputs(holdings, **inputs), policy or make_policy())
    strategy = Fixed(values, sells=sells, reasons=reasons)
    return finalize(context, strategy.propose(context), strategy)


def table(orders):
    return [(t.side, t.symbol, t.quantity) for t in orders.trades]


# -- minimum trade ----------------------------------------------------------------------------------------------------


def test_trades_below_the_minimum_are_dropped_with_a_note():
    result = plan(make_inputs(FOUR), make_policy(strategy="threshold", min_trade_usd=400))
    # D's 300 buy is below 400; A's 600 sell stays.
    assert trade_table(result) == [("sell", "A", 6.0)]
    assert "1 trade(s) below the $400 minimum left out" in result.notes
    assert result.cash_after_usd == pytest.approx(600.0)


def test_a_minimum_of_zero_keeps_tiny_trades():
    orders = run({"A": (10.0001, 100, 0.5), "B": (9.9999, 100, 0.5)}, [1000.0, 1000.0])
    assert table(orders) == [("sell", "A", pytest.approx(0.0001)), ("buy", "B", pytest.approx(0.0001))]


# -- turnover cap -----------------------------------------------------------------------------------------------------


def test_turnover_cap_scales_every_trade_by_one_factor():
    result = plan(make_inputs(THREE), make_policy(strategy="full", max_turnover=0.025))
    # Wanted: 2,000 traded on 20,000 = 5% one-way; the cap halves every trade.
    assert trade_table(result) == [("sell", "VXUS", 5.0), ("buy", "BND", 10.0)]
    assert result.turnover == pytest.approx(0.025)
    assert result.notes == ("turnover cap 2.5%: every trade scaled to 50% of the plan (5.0% one-way wanted)",)


def test_turnover_cap_rounds_whole_shares_toward_zero():
    policy = make_policy(strategy="full", max_turnover=0.0275, fractional_shares=False)
    result = plan(make_inputs(THREE), policy)
    # Factor 0.55: VXUS 5.5 -> 5 shares; BND's 11 shrink to the 10 that VXUS's 500 pays for.
    assert trade_table(result) == [("sell", "VXUS", 5.0), ("buy", "BND", 10.0)]
    assert result.turnover <= 0.0275


def test_turnover_under_the_cap_is_untouched():
    result = plan(make_inputs(THREE), make_policy(strategy="full", max_turnover=0.05))
    assert trade_table(result) == [("sell", "VXUS", 10.0), ("buy", "BND", 20.0)] and result.notes == ()


# -- do not trade, sells ----------------------------------------------------------------------------------------------


def test_do_not_trade_symbols_are_never_traded():
    result = plan(make_inputs(THREE, cash_usd=1_000), make_policy(strategy="full", do_not_trade=frozenset({"vxus"})))
    # Total 21,000: VTI 10,500 (+5), BND 6,300 (+26), VXUS wants 4,200 but stays at 5,000; 1,000 of cash for 1,800.
    assert [t.symbol for t in result.trades] == ["BND", "VTI"]
    assert result.weights_after["VXUS"] == pytest.approx(5_000 / 21_000)
    assert "do not trade: VXUS left as held" in result.notes
    assert sum(t.notional_usd for t in result.trades) == pytest.approx(1_000)
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-6)


def test_no_cash_for_buys_is_noted():
    result = plan(make_inputs(THREE), make_policy(strategy="full", do_not_trade=frozenset({"VXUS"})))
    assert result.trades == ()
    assert result.notes == ("do not trade: VXUS left as held", "no cash for buys: $1,000 wanted, $0.00 available")


def test_a_strategy_that_does_not_sell_sells_nothing():
    orders = run(THREE, [9_000, 6_000, 5_000], sells=False, cash_usd=500)
    # VTI's 1,000 sell is left out; BND's 1,000 buy gets the 500 of cash.
    assert table(orders) == [("buy", "BND", 10.0)]
    assert "strategy fixed does not sell: 1 sell(s) left out" in orders.notes


def test_a_sell_whose_commission_eats_its_proceeds_is_left_out():
    policy = make_policy(costs=CostModel(spread_bps=0, commission_per_trade_usd=5))
    orders = run({"A": (10, 100, 0.5), "B": (10, 100, 0.5)}, [997.0, 1_003.0], policy=policy)
    # Selling $3 of A for a $5 commission would lose cash; no sell means no cash for B either.
    assert orders.trades == ()
    assert "1 sell(s) costing more than they raise left out" in orders.notes


# -- no shorts ------------------------------------------------------------------------------------------------------


def test_a_negative_or_zero_target_value_sells_the_whole_position():
    orders = run({"A": (10.123456789012, 100, 0.0), "B": (10, 100, 1.0)}, [-500.0, 2_012.3456789012])
    assert table(orders)[0] == ("sell", "A", 10.123456789012)
    assert orders.quantities_after[0] == 0.0


def test_whole_share_sells_round_to_the_count_nearest_the_target_never_past_the_position():
    policy = make_policy(fractional_shares=False)
    # A target of 0: 10.49 continuous shares of 10.5 round up to the whole position, remainder included.
    assert table(run({"A": (10.5, 100, 0.0), "B": (10, 100, 1.0)}, [1.0, 2_049.0], policy=policy))[0] == (
        "sell",
        "A",
        10.5,
    )
    # A 38% target of $2,000 is $760: 2.4 shares continuous round down to 2 ($40 off) rather than up to 3 ($60).
    holdings = {"A": (10, 100, 0.38), "B": (10, 100, 0.62)}
    assert table(run(holdings, [760.0, 1_240.0], policy=policy)) == [("sell", "A", 2.0), ("buy", "B", 2.0)]
    # At 37% ($740) the 2.6 shares round up to 3 ($40 off) and B buys the 2 shares nearest its $1,260.
    holdings = {"A": (10, 100, 0.37), "B": (10, 100, 0.63)}
    assert table(run(holdings, [740.0, 1_260.0], policy=policy)) == [("sell", "A", 3.0), ("buy", "B", 3.0)]


def test_rounding_never_sells_the_last_share_of_a_positive_target():
    policy = make_policy(fractional_shares=False)
    # 10.5 shares of A against a 2% target ($41 of $2,050): 10.09 shares continuous, and the most a
    # rounded sell takes is 10, keeping the half share.
    holdings = {"A": (10.5, 100, 0.02), "B": (10, 100, 0.98)}
    assert table(run(holdings, [41.0, 2_009.0], policy=policy)) == [("sell", "A", 10.0), ("buy", "B", 10.0)]
    # One share of a 10% target worth $1,000 in a $2,000 portfolio stays: selling it would leave A at 0.
    holdings = {"A": (1, 1_000, 0.1), "B": (10, 100, 0.9)}
    assert table(run(holdings, [200.0, 1_800.0], policy=policy)) == []


# -- quantities -------------------------------------------------------------------------------------------------------


def test_fractional_quantities_have_nine_decimals():
    orders = run({"A": (0, 30, 1.0)}, [100.0], cash_usd=100)
    assert table(orders) == [("buy", "A", 3.333333333)]
    assert orders.cash_after_usd == pytest.approx(1e-8, abs=1e-9) and orders.cash_after_usd >= 0


def test_whole_shares_for_non_fractionable_instruments():
    holdings = {"A": (0, 30, 0.5), "B": (0, 40, 0.5)}
    orders = run(holdings, [500.0, 500.0], cash_usd=1_000, fractionable=[False, True])
    # 16.67 shares of A round to 17 ($510, $10 from target against $20 for 16); the fractional B
    # gives up the $10 that overspends: 12.25 shares.
    assert table(orders) == [("buy", "A", 17.0), ("buy", "B", 12.25)]
    assert orders.cash_after_usd == pytest.approx(0.0, abs=1e-6)


def test_whole_shares_round_to_nearest_then_floor_when_that_overspends():
    holdings = {"A": (0, 90, 0.5), "B": (0, 40, 0.5)}
    orders = run(holdings, [500.0, 500.0], cash_usd=1_000, policy=make_policy(fractional_shares=False))
    # Nearest (6 and 13) costs 1,060: floor to 5 and 12 (930), then +1 of B (40) fits the 70 left; A (90) does not.
    assert table(orders) == [("buy", "A", 5.0), ("buy", "B", 13.0)]
    assert orders.cash_after_usd == pytest.approx(30.0)


def test_top_ups_go_to_the_most_underweight_first():
    holdings = {"A": (0, 30, 0.4), "B": (0, 40, 0.6)}
    policy = make_policy(fractional_shares=False, costs=CostModel(spread_bps=0, commission_per_trade_usd=1))
    orders = run(holdings, [400.0, 600.0], cash_usd=1_000, policy=policy)
    # Short by the $2 of commissions: factor 0.998, floors 13 x 30 + 14 x 40 = 950 (+2); 48 left.
    # B is 4 pp under, A 1 pp: B gets +1 share (40); 8 left, not enough for A.
    assert table(orders) == [("buy", "A", 13.0), ("buy", "B", 15.0)]
    assert orders.cash_after_usd == pytest.approx(8.0)
    assert orders.cost_usd == pytest.approx(2.0)


# -- funding, buffer, scaling -----------------------------------------------------------------------------------------


def test_buys_scale_down_when_cash_is_short():
    holdings = {"A": (52, 100, 0.5), "B": (47, 100, 0.5)}
    policy = make_policy(strategy="threshold", bands=BandPolicy(band_mode="absolute", band_abs=0.025))
    result = plan(make_inputs(holdings, cash_usd=100), policy)
    # B (3 pp under) is outside and wants 300; A (2 pp over) is inside and is not sold: 100 of cash buys 1 share.
    assert trade_table(result) == [("buy", "B", 1.0)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.notes == (
        "buys scaled to 33% of the plan: $300 wanted, $100 of cash and sell proceeds above the buffer",
    )


def test_buys_never_spend_the_buffer():
    policy = make_policy(cash_buffer_weight=0.02)
    orders = run({"A": (90, 100, 1.0)}, [10_000.0], cash_usd=1_000, policy=policy)
    # Buffer 2% of 10,000 = 200: 800 of the 1,000 can be spent.
    assert table(orders) == [("buy", "A", 8.0)]
    assert orders.cash_after_usd == pytest.approx(200.0)


def test_sell_costs_reduce_what_buys_can_spend():
    costs = CostModel(spread_bps=100, commission_per_trade_usd=0)
    orders = run({"A": (10, 100, 0.5), "B": (0, 100, 0.5)}, [500.0, 500.0], policy=make_policy(costs=costs))
    # Sell 500 nets 495; buys at 1% cost: 495 / 1.01.
    assert table(orders) == [("sell", "A", 5.0), ("buy", "B", pytest.approx(495 / 1.01 / 100, abs=1e-9))]
    assert orders.cash_after_usd == pytest.approx(0.0, abs=1e-6) and orders.cash_after_usd >= 0


# -- withdrawals ----------------------------------------------------------------------------------------------------

BALANCED = {"A": (50, 100, 0.5), "B": (30, 100, 0.3), "C": (20, 100, 0.2)}


def test_a_withdrawal_the_strategy_does_not_cover_gets_sells_added():
    result = plan(make_inputs(BALANCED, cash_flow_usd=-500), make_policy(strategy="threshold"))
    # Nothing is outside its band; every holding is equally overweight against 9,500: 5% of each.
    assert trade_table(result) == [("sell", "A", 2.5), ("sell", "B", 1.5), ("sell", "C", 1.0)]
    assert {t.reason for t in result.trades} == {"raise cash for the $500 withdrawal"}
    assert result.notes == ("raise cash for the $500 withdrawal: 3 sell(s) added",)
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.trigger.fired == ("cash", "manual")


def test_withdrawal_sells_in_whole_shares_raise_it_without_idle_cash():
    policy = make_policy(strategy="threshold", fractional_shares=False)
    result = plan(make_inputs(BALANCED, cash_flow_usd=-500), policy)
    # 5% of each: 2.5, 1.5 and 1 shares round up to 3, 2 and 1; A's third share only adds $100 of
    # idle cash (A is then as far under target as it was over), so it is not sold.
    assert trade_table(result) == [("sell", "A", 2.0), ("sell", "B", 2.0), ("sell", "C", 1.0)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.drift_after < result.drift_before


def test_withdrawal_sells_pay_their_costs():
    costs = CostModel(spread_bps=0, commission_per_trade_usd=2)
    holdings = {"A": (52, 100, 0.5), "B": (48, 100, 0.5)}
    result = plan(make_inputs(holdings, cash_flow_usd=-100), make_policy(strategy="threshold", costs=costs))
    # Both inside their bands; only A (5,200 over 0.5 = 10,400 against 9,600) is sold: 100 + the $2 commission.
    assert trade_table(result) == [("sell", "A", 1.02)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)


def test_a_withdrawal_larger_than_what_can_be_sold_is_an_error():
    policy = make_policy(strategy="threshold", do_not_trade=frozenset({"A", "B"}))
    with pytest.raises(ConfigurationError, match=r"^cash_flow_usd: the \$2,500 withdrawal needs \$500 more"):
        plan(make_inputs(BALANCED, cash_flow_usd=-2_500), policy)


def test_a_withdrawal_beyond_the_portfolio_value_is_an_error():
    with pytest.raises(ConfigurationError, match=r"^cash_flow_usd:"):
        plan(make_inputs(BALANCED, cash_flow_usd=-10_000), make_policy(strategy="full"))


# -- costs, order, reasons --------------------------------------------------------------------------------------------


def test_costs_per_trade():
    costs = CostModel(commission_per_trade_usd=1.0, spread_bps=10, impact_bps=5)
    orders = run({"A": (10, 100, 0.0), "B": (10, 100, 1.0)}, [0.0, 2_000.0], policy=make_policy(costs=costs))
    sell = orders.trades[0]
    assert sell.cost_usd == pytest.approx(1 + 1_000 * 0.0015)


def test_sells_first_then_buys_each_by_symbol():
    holdings = {"Z": (10, 10, 0.3), "A": (30, 10, 0.0), "M": (30, 10, 0.1), "B": (30, 10, 0.6)}
    orders = run(holdings, [300.0, 0.0, 100.0, 400.0], reasons={"A": "because"})
    assert [(t.side, t.symbol) for t in orders.trades] == [("sell", "A"), ("sell", "M"), ("buy", "B"), ("buy", "Z")]
    assert orders.trades[0].reason == "because"
    assert orders.trades[1].reason.startswith("M ")


def test_a_malformed_proposal_is_an_error():
    with pytest.raises(ConfigurationError, match=r"^rebalancing_strategy: fixed proposed"):
        run(THREE, [1.0, 2.0])


def test_full_rebalance_instance_through_finalize():
    context = make_context(make_inputs(THREE))
    strategy = FullRebalance()
    orders = finalize(context, strategy.propose(context), strategy)
    assert table(orders) == [("sell", "VXUS", 10.0), ("buy", "BND", 20.0)]
    assert orders.traded_usd == pytest.approx(2_000.0)
