"""Hand-computed plans of the full, threshold and cash-flow strategies through `plan_rebalance`."""

from __future__ import annotations

import pytest

from optimization.core.rebalancing import BandPolicy, CostModel, TriggerPolicy

from .factories import make_inputs, make_policy, plan, trade_table

# $20,000 at $100 / $50 / $100 a share: weights 50/25/25 % against 50/30/20 %.
THREE = {"VTI": (100, 100, 0.5), "BND": (100, 50, 0.3), "VXUS": (50, 100, 0.2)}
# $10,000 at $100 a share: weights 66/17/10/7 % against 60/20/10/10 %; A and D outside their 5/25 bands.
FOUR = {"A": (66, 100, 0.6), "B": (17, 100, 0.2), "C": (10, 100, 0.1), "D": (7, 100, 0.1)}


# -- full -------------------------------------------------------------------------------------------------------------


def test_full_moves_every_holding_to_target():
    result = plan(make_inputs(THREE), make_policy(strategy="full"))
    # BND 5,000 -> 6,000 (+20 shares), VXUS 5,000 -> 4,000 (-10), VTI already on target.
    assert trade_table(result) == [("sell", "VXUS", 10.0), ("buy", "BND", 20.0)]
    assert result.drift_before == pytest.approx(0.05)
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)
    assert result.turnover == pytest.approx(2_000 / 40_000)
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.weights_after == pytest.approx({"VTI": 0.5, "BND": 0.3, "VXUS": 0.2})
    assert result.strategy == "full" and result.notes == ()
    sell, buy = result.trades
    assert (sell.price, sell.notional_usd, sell.cost_usd) == (100.0, 1_000.0, 0.0)
    assert sell.reason == "VXUS 5.0 pp over target (inside its 5.0 pp band)"
    # 5 pp from a 5 pp band is on its edge, which counts as inside.
    assert buy.reason == "BND 5.0 pp under target (inside its 5.0 pp band)"


def test_full_keeps_the_cash_buffer():
    result = plan(make_inputs(THREE), make_policy(strategy="full", cash_buffer_weight=0.01))
    # Effective targets 49.5/29.7/19.8 % of 20,000: VTI -100, BND +940, VXUS -1,040; 200 stays in cash.
    assert trade_table(result) == [("sell", "VTI", 1.0), ("sell", "VXUS", 10.4), ("buy", "BND", 18.8)]
    assert result.cash_after_usd == pytest.approx(200.0)
    assert result.cash_weight_after == pytest.approx(0.01)
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)


def test_full_pays_costs_from_the_buys():
    costs = CostModel(spread_bps=5.0, commission_per_trade_usd=1.0)
    result = plan(make_inputs(THREE), make_policy(strategy="full", costs=costs))
    sell, buy = result.trades
    assert (sell.notional_usd, sell.cost_usd) == (1_000.0, pytest.approx(1.5))
    # 998.50 left after the sell's cost buys BND with its 5 bps and $1: (998.50 - 1) / 1.0005 = 997.0015.
    assert buy.notional_usd == pytest.approx((998.5 - 1) / 1.0005, abs=1e-6)
    assert buy.cost_usd == pytest.approx(1 + buy.notional_usd * 0.0005)
    assert result.total_cost_usd == pytest.approx(sell.cost_usd + buy.cost_usd)
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-6) and result.cash_after_usd >= 0
    assert result.value_after_usd == pytest.approx(20_000 - result.total_cost_usd)


def test_full_sells_a_zero_target_whole_position():
    holdings = {"A": (10.123456789123, 100, 1.0), "B": (3.3333333333, 30, 0.0)}
    result = plan(make_inputs(holdings), make_policy(strategy="full"))
    sell = result.trades[0]
    assert (sell.side, sell.symbol, sell.quantity) == ("sell", "B", 3.3333333333)
    assert result.weights_after["B"] == 0.0


# -- threshold ------------------------------------------------------------------------------------------------------


def test_threshold_to_target_moves_only_holdings_outside():
    result = plan(make_inputs(FOUR), make_policy(strategy="threshold"), manual=False)
    # A 6,600 -> 6,000 (-6 shares), D 700 -> 1,000 (+3); B (3 pp under, band 5) and C stay.
    assert trade_table(result) == [("sell", "A", 6.0), ("buy", "D", 3.0)]
    assert result.trigger.fired == ("band",)
    assert result.cash_after_usd == pytest.approx(300.0)
    assert [t.reason for t in result.trades] == [
        "A 6.0 pp over target (band 5.0 pp)",
        "D 3.0 pp under target (band 2.5 pp)",
    ]
    assert result.drift_before == pytest.approx(0.06)
    # After: B 3 pp under, cash 3 pp over.
    assert result.drift_after == pytest.approx(0.03)
    assert result.notes == (
        "about $300 stays in cash above the buffer: threshold trades only holdings outside their bands "
        "(full or cash_flow would invest it)",
    )


def test_threshold_to_band_edge():
    result = plan(make_inputs(FOUR), make_policy(strategy="threshold", threshold_to="band_edge"))
    # A to 60 + 5 = 65 % (-1 share), D to 10 - 2.5 = 7.5 % (+0.5 share).
    assert trade_table(result) == [("sell", "A", 1.0), ("buy", "D", 0.5)]
    assert result.cash_after_usd == pytest.approx(50.0)
    assert result.weights_after["A"] == pytest.approx(0.65)
    assert result.weights_after["D"] == pytest.approx(0.075)


def test_threshold_with_an_absolute_band():
    policy = make_policy(strategy="threshold", bands=BandPolicy(band_mode="absolute", band_abs=0.02))
    result = plan(make_inputs(FOUR), policy)
    # B (3 pp under) is now outside too: +3 shares, funded by A's proceeds.
    assert trade_table(result) == [("sell", "A", 6.0), ("buy", "B", 3.0), ("buy", "D", 3.0)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)


def test_no_trigger_no_trades():
    holdings = {"A": (61, 100, 0.6), "B": (39, 100, 0.4)}
    result = plan(make_inputs(holdings, cash_flow_usd=100), make_policy(strategy="full"), manual=False)
    assert result.trades == () and result.trigger.label == "no action needed"
    assert result.drift_after == result.drift_before
    assert result.cash_after_usd == 100.0 and result.value_after_usd == 10_100.0
    assert result.value_before_usd == 10_000.0 and result.cash_flow_usd == 100.0
    assert result.turnover == 0.0 and result.total_cost_usd == 0.0
    assert result.weights_after == pytest.approx({"A": 6100 / 10100, "B": 3900 / 10100})


def test_cooldown_gives_an_empty_plan():
    from datetime import date

    policy = make_policy(strategy="full", triggers=TriggerPolicy(cooldown_days=5))
    result = plan(make_inputs(FOUR), policy, manual=False, last_rebalance=date(2026, 11, 18))
    assert result.trades == () and result.trigger.blocked_by.startswith("cooldown:")


# -- cash flow ------------------------------------------------------------------------------------------------------

CASH_FLOW = {"A": (50, 100, 0.5), "B": (20, 100, 0.3), "C": (20, 100, 0.2)}


def test_cash_flow_deposit_lifts_the_most_underweight_first():
    result = plan(make_inputs(CASH_FLOW, cash_flow_usd=1_000), make_policy(strategy="cash_flow"))
    # Total 10,000: B is 1,000 short of its 3,000 target, the others on target; the deposit goes to B.
    assert trade_table(result) == [("buy", "B", 10.0)]
    assert result.trades[0].reason == "invest cash: B 10.0 pp under target"
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)


def test_cash_flow_deposit_beyond_the_gap_spreads_by_target():
    result = plan(make_inputs(CASH_FLOW, cash_flow_usd=1_500), make_policy(strategy="cash_flow"))
    # B first up to the level 10,000 (1,000), then 500 across all by target: level 10,500.
    assert trade_table(result) == [("buy", "A", 2.5), ("buy", "B", 11.5), ("buy", "C", 1.0)]
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.cash_before_usd == 0.0 and result.cash_flow_usd == 1_500


def test_cash_flow_keeps_the_buffer():
    policy = make_policy(strategy="cash_flow", cash_buffer_weight=0.02)
    result = plan(make_inputs(CASH_FLOW, cash_flow_usd=1_000), policy)
    # 200 of the 1,000 stays as the buffer; the 800 goes to B, the most underweight.
    assert trade_table(result) == [("buy", "B", 8.0)]
    assert result.cash_after_usd == pytest.approx(200.0)


def test_cash_flow_never_sells_without_a_withdrawal():
    holdings = {"A": (70, 100, 0.5), "B": (30, 100, 0.5)}
    result = plan(make_inputs(holdings, cash_usd=100), make_policy(strategy="cash_flow"))
    assert trade_table(result) == [("buy", "B", 1.0)]


def test_cash_flow_withdrawal_sells_the_most_overweight_first():
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    result = plan(make_inputs(holdings, cash_flow_usd=-1_000), make_policy(strategy="cash_flow"))
    # Total 9,000; A is the most overweight (6,000 against 4,500): 1,000 comes from A alone.
    assert trade_table(result) == [("sell", "A", 10.0)]
    assert result.trades[0].reason == "raise cash for the $1,000 withdrawal: A 16.7 pp over target"
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.value_before_usd == 10_000.0 and result.value_after_usd == pytest.approx(9_000.0)


def test_cash_flow_large_withdrawal_drains_to_target():
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    result = plan(make_inputs(holdings, cash_flow_usd=-3_000), make_policy(strategy="cash_flow"))
    # Total 7,000: A to 3,500 (-25), B to 2,100 (-4), C to 1,400 (-1).
    assert trade_table(result) == [("sell", "A", 25.0), ("sell", "B", 4.0), ("sell", "C", 1.0)]
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)


def test_cash_flow_to_band_edge_lifts_underweight_holdings_only_to_their_band():
    # $10,000 after a $1,000 deposit, 5 pp bands: B 10 pp under (lower edge $2,500, $500 away);
    # A and C on target. Only $500 is invested; the rest stays in cash, and a note says so.
    policy = make_policy(strategy="cash_flow", cash_flow_to="band_edge", bands=BandPolicy("absolute", 0.05))
    result = plan(make_inputs(CASH_FLOW, cash_flow_usd=1_000), policy)
    assert trade_table(result) == [("buy", "B", 5.0)]
    assert result.cash_after_usd == pytest.approx(500.0)
    assert result.notes == (
        "about $500 stays in cash above the buffer: cash_flow_to band_edge fills holdings only to the lower edge "
        "of their bands",
    )


def test_cash_flow_to_band_edge_sells_to_the_upper_edge_first_then_toward_the_targets():
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    policy = make_policy(strategy="cash_flow", cash_flow_to="band_edge", bands=BandPolicy("absolute", 0.05))
    # $1,000 out of $10,000 leaves $9,000: A's upper edge is 55% ($4,950), $1,050 below it, so
    # the $1,000 comes from A alone, as to target.
    assert trade_table(plan(make_inputs(holdings, cash_flow_usd=-1_000), policy)) == [("sell", "A", 10.0)]
    # $3,000 out leaves $7,000: A is $2,150 over its upper edge ($3,850), B $50 over its
    # ($2,450); the other $800 is then drained toward the targets.
    result = plan(make_inputs(holdings, cash_flow_usd=-3_000), policy)
    sold = {t.symbol: t.quantity for t in result.trades}
    assert sold["A"] > 21.5 and sum(sold.values()) == pytest.approx(30.0)
    assert result.cash_after_usd == pytest.approx(0.0, abs=1e-9)


def test_threshold_buys_an_unheld_target_when_unheld_counts_as_outside():
    # QQQ's 3% target is unheld: 3 pp under, inside a 5 pp band unless asked.
    holdings = {"SPY": (97, 100, 0.97), "QQQ": (0, 100, 0.03)}
    inputs = make_inputs(holdings, cash_usd=300)
    assert plan(inputs, make_policy(strategy="threshold", bands=BandPolicy("absolute", 0.05))).trades == ()
    policy = make_policy(strategy="threshold", bands=BandPolicy("absolute", 0.05, unheld_outside_band=True))
    result = plan(inputs, policy, manual=False)
    assert result.trigger.reasons == ("QQQ not held, 3.0 pp under target (band 5.0 pp)",)
    assert trade_table(result) == [("buy", "QQQ", 3.0)]


def test_cash_flow_deposit_needed_is_reported():
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    result = plan(make_inputs(holdings, cash_flow_usd=500), make_policy(strategy="cash_flow"))
    # A is back inside its 5 pp band at a total of 6,000 / 0.55 = 10,909.09: 409.09 more than 10,500.
    assert result.deposit_needed_usd == pytest.approx(6_000 / 0.55 - 10_500)
    # The 500 lifts C (7,500 of total per unit of target) to B's 8,333, then both to the level 9,000.
    assert trade_table(result) == [("buy", "B", 2.0), ("buy", "C", 3.0)]


def test_cash_flow_with_the_deposit_needed_reaches_every_target():
    holdings = {"A": (60, 100, 0.5), "B": (25, 100, 0.3), "C": (15, 100, 0.2)}
    result = plan(make_inputs(holdings, cash_flow_usd=2_000), make_policy(strategy="cash_flow"))
    assert trade_table(result) == [("buy", "B", 11.0), ("buy", "C", 9.0)]
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)
    assert result.deposit_needed_usd == pytest.approx(0.0, abs=1e-9)


def test_a_plan_serialises_to_json():
    import json

    result = plan(make_inputs(FOUR), make_policy(strategy="threshold"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["trigger"]["label"] == result.trigger.label
    assert [t["symbol"] for t in data["trades"]] == ["A", "D"]
    assert data["needs"][0]["action"] == "sell"
