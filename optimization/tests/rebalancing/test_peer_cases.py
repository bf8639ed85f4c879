"""Cases other rebalancers publish in their tests and documentation, planned here.

Each test's docstring names its source. Prices of $100 a share (or $1 where a peer speaks in
dollars) turn the peers' amounts into shares; where a peer keeps some of the account in cash,
the cash buffer plays that part.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from optimization.core.rebalancing import BandPolicy, CostModel, TriggerPolicy, deposit_needed_usd, needs

from .factories import make_context, make_inputs, make_policy, plan, trade_table

ABSOLUTE_5PP = BandPolicy(band_mode="absolute", band_abs=0.05)

# -- Lumibot's drift rebalancer (Lumiwealth/lumibot, tests/test_drift_rebalancer.py) ----------------------------------

LUMIBOT = {"AAPL": (10, 150, 0.5), "GOOGL": (5, 200, 0.3), "MSFT": (8, 100, 0.2)}


def test_lumibot_absolute_drift_of_three_holdings():
    """Lumibot, TestDriftCalculationLogic.test_calculate_absolute_drift: AAPL $1,500, GOOGL
    $1,000, MSFT $800 against 50/30/20: weights 45.45/30.30/24.24 %, drifts (target - current)
    +4.55, -0.30, -4.24 pp; none reaches the 5% threshold, so nothing is rebalanced."""
    context = make_context(make_inputs(LUMIBOT), make_policy(bands=ABSOLUTE_5PP))
    rows = needs(context)
    assert [r.current_weight for r in rows] == pytest.approx([1500 / 3300, 1000 / 3300, 800 / 3300])
    assert [-r.deviation for r in rows] == pytest.approx([0.0454545, -0.0030303, -0.0424242], abs=1e-7)
    assert [r.action for r in rows] == ["hold", "hold", "hold"]
    assert plan(make_inputs(LUMIBOT), make_policy(bands=ABSOLUTE_5PP), manual=False).trades == ()


def test_lumibot_an_unheld_target_counts_as_outside():
    """Lumibot, test_drift_is_one_when_we_have_none_of_an_asset_and_target_weights_says_we_should_have_some:
    with AMZN unheld and 25% targets, AMZN's drift is 1 (buy it) whatever the threshold. Here a
    30 pp band holds AMZN's -25 pp inside unless ``unheld_outside_band`` is on."""
    holdings = {**LUMIBOT, "AMZN": (0, 100, 0.25)}
    holdings = {s: (q, p, 0.25) for s, (q, p, _) in holdings.items()}
    wide = BandPolicy(band_mode="absolute", band_abs=0.30)
    assert needs(make_context(make_inputs(holdings), make_policy(bands=wide)))[3].action == "hold"
    asked = BandPolicy(band_mode="absolute", band_abs=0.30, unheld_outside_band=True)
    amzn = needs(make_context(make_inputs(holdings), make_policy(bands=asked)))[3]
    assert (amzn.outside, amzn.action) == (True, "buy")


def test_lumibot_sells_part_of_a_holding():
    """Lumibot, TestDriftOrderLogic.test_selling_part_of_a_holding_with_market_order: 10 shares
    at $100 with a $500 target value: sell 5."""
    result = plan(make_inputs({"AAPL": (10, 100, 1.0)}), make_policy(strategy="full", cash_buffer_weight=0.5))
    assert trade_table(result) == [("sell", "AAPL", 5.0)]


@pytest.mark.parametrize(("cash_usd", "shares"), [(1_000, 9.0), (500, 4.0), (50, None)])
def test_lumibot_buys_whole_shares_the_cash_pays_for_with_slippage(cash_usd, shares):
    """Lumibot, test_buying_something_when_we_have_enough_money_and_there_is_slippage,
    test_limit_buy_when_we_dont_have_enough_money_for_everything and
    test_attempting_to_buy_when_we_dont_have_enough_money_for_even_one_share: $100 shares, 50 bps
    acceptable slippage: $1,000 buys 9 (10 would cost $1,005), $500 buys 4, $50 buys nothing."""
    inputs = make_inputs({"AAPL": (0, 100, 1.0)}, cash_usd=cash_usd, fractionable=[False])
    result = plan(inputs, make_policy(strategy="full", costs=CostModel(spread_bps=50)))
    assert trade_table(result) == ([("buy", "AAPL", shares)] if shares else [])


def test_lumibot_does_not_sell_the_only_share_of_a_wanted_holding():
    """Lumibot, test_attempting_to_sell_when_the_amount_we_need_to_sell_is_less_than_the_limit_price_should_not_sell:
    one $100 share against a $10 target value is kept: Lumibot sells only while some remains."""
    inputs = make_inputs({"AAPL": (1, 100, 0.1), "BIL": (0, 100, 0.9)}, fractionable=[False, False])
    result = plan(inputs, make_policy(strategy="full"))
    assert all(t.symbol != "AAPL" for t in result.trades)


# -- Wealthfolio's allocation rebalancing (afadil/wealthfolio, crates/core/src/portfolio) ------------------------------


def test_wealthfolio_hybrid_band_is_the_wider_of_absolute_and_relative():
    """Wealthfolio, allocation_targets/model.rs BandType::Hybrid (effective band = max(target x
    relative factor, absolute band)) with drift_service.rs's overweight_detected case: EQUITY 70%
    against 60%, BONDS 30% against 40%, a 5 pp band and a 20% relative factor. Absolute: both
    outside. Hybrid: EQUITY's band is 12 pp (inside), BONDS' 8 pp (outside)."""
    holdings = {"EQUITY": (70, 100, 0.6), "BONDS": (30, 100, 0.4)}
    absolute = make_context(make_inputs(holdings), make_policy(bands=ABSOLUTE_5PP))
    assert absolute.outside.tolist() == [True, True]
    hybrid = make_context(make_inputs(holdings), make_policy(bands=BandPolicy("hybrid", 0.05, 0.20)))
    assert hybrid.bands.tolist() == pytest.approx([0.12, 0.08])
    assert hybrid.outside.tolist() == [False, True]


def test_wealthfolio_a_deposit_buys_the_whole_shares_it_pays_for():
    """Wealthfolio, rebalancing_service.rs test_phase2_deploys_remaining_cash_without_overshoot:
    VTI $4,500 (200 shares at $22.50) against a 70% target, $1,000 deposited: 44 shares ($990),
    $10 left; a 45th share would overspend."""
    inputs = make_inputs(
        {"VTI": (200, 22.5, 0.7), "BND": (55, 100, 0.3)}, cash_flow_usd=1_000, fractionable=[False, False]
    )
    result = plan(inputs, make_policy(strategy="cash_flow"))
    assert trade_table(result) == [("buy", "VTI", 44.0)]
    assert result.cash_after_usd == pytest.approx(10.0)


@pytest.mark.parametrize(("cash_flow_to", "bought_usd"), [("target", 2_000.0), ("band_edge", 1_500.0)])
def test_wealthfolio_rebalance_goal_exact_target_or_nearest_band(cash_flow_to, bought_usd):
    """Wealthfolio, allocation_targets/model.rs RebalanceGoal (exact_target, nearest_band): $2,000
    deposited into SPY $6,000 / BND $2,000 against 60/40 with 5 pp bands. To target: BND +$2,000;
    to the band's edge (35% of $10,000): BND +$1,500, and $500 stays in cash."""
    inputs = make_inputs({"SPY": (6_000, 1, 0.6), "BND": (2_000, 1, 0.4)}, cash_flow_usd=2_000)
    policy = make_policy(strategy="cash_flow", bands=ABSOLUTE_5PP, cash_flow_to=cash_flow_to)
    result = plan(inputs, policy)
    assert trade_table(result) == [("buy", "BND", pytest.approx(bought_usd))]
    assert result.cash_after_usd == pytest.approx(2_000 - bought_usd)


# -- Portfolio Performance's rebalancing (buchen/portfolio, TaxonomyModelTest) -----------------------------------------


@pytest.mark.parametrize(
    ("a_shares", "b_shares", "expected"),
    [
        (100, 0, [("sell", "A", 50.0), ("buy", "B", 50.0)]),
        (200, 100, [("sell", "A", 50.0), ("buy", "B", 50.0)]),
        (100, 100, []),
    ],
)
def test_portfolio_performance_rebalancing_amounts(a_shares, b_shares, expected):
    """Portfolio Performance, TaxonomyModelTest testOnlyA, testAOverweighted and
    testAlreadyRebalanced: securities A and B at 100 in a 50/50 taxonomy. Only A (100 shares):
    A -5,000, B +5,000; A 200 and B 100 shares: the same; 100 of each: nothing."""
    inputs = make_inputs({"A": (a_shares, 100, 0.5), "B": (b_shares, 100, 0.5)}, fractionable=[False, False])
    assert trade_table(plan(inputs, make_policy(strategy="full"))) == expected


# -- Alpaca's rebalancing (docs.alpaca.markets/docs/portfolio-rebalancing) ---------------------------------------------


def test_alpaca_drift_band_rebalances_the_whole_portfolio_keeping_its_cash_weight():
    """Alpaca, "Portfolio Rebalancing": the example portfolio 5% cash, SPY 60%, TLT 35% with an
    absolute 5% drift band; "when we reach the threshold for one of the holdings" the whole
    portfolio is adjusted. SPY at 66% (TLT 29%): sell 6 SPY, buy 6 TLT, cash stays 5%."""
    holdings = {"SPY": (66, 100, 60 / 95), "TLT": (29, 100, 35 / 95)}
    policy = make_policy(strategy="full", bands=ABSOLUTE_5PP, cash_buffer_weight=0.05)
    result = plan(make_inputs(holdings, cash_usd=500, fractionable=[False, False]), policy, manual=False)
    assert result.trigger.fired == ("band",)
    assert trade_table(result) == [("sell", "SPY", 6.0), ("buy", "TLT", 6.0)]
    assert result.cash_weight_after == pytest.approx(0.05)


def test_alpaca_calendar_rebalance_of_a_50_50_portfolio_at_55_45():
    """Alpaca, "Portfolio Rebalancing", Calendar: "on April 1st our 50:50 AAPL TLT portfolio is
    now 55:45" and is rebalanced to 50:50, although a +/- 10% drift band would not have fired."""
    holdings = {"AAPL": (55, 100, 0.5), "TLT": (45, 100, 0.5)}
    bands = BandPolicy(band_mode="absolute", band_abs=0.10)
    quarterly = TriggerPolicy(calendar="quarterly")
    inputs = make_inputs(holdings, fractionable=[False, False])
    assert plan(inputs, make_policy(strategy="full", bands=bands), manual=False).trades == ()
    result = plan_on(inputs, make_policy(strategy="full", bands=bands, triggers=quarterly), date(2026, 4, 1))
    assert result.trigger.fired == ("calendar",)
    assert trade_table(result) == [("sell", "AAPL", 5.0), ("buy", "TLT", 5.0)]


def plan_on(inputs, policy, as_of):
    from optimization.core.rebalancing import plan_rebalance

    return plan_rebalance(inputs, policy, as_of=as_of, last_rebalance=date(2026, 1, 2))


# -- Betterment's rebalancing (betterment.com/help/portfolio-rebalancing-methods) --------------------------------------

BETTERMENT = {"US Bonds": (30, 100, 0.25), "Intl Bonds": (20, 100, 0.25), "US Stocks": (30, 100, 0.25)}
BETTERMENT["Intl Stocks"] = (20, 100, 0.25)


def test_betterment_portfolio_drift():
    """Betterment, "Measuring Portfolio Drift": four 25% targets held at 30/20/30/20 %: total
    absolute deviation 20%, divided by two, a drift of 10%."""
    assert make_context(make_inputs(BETTERMENT)).drift == pytest.approx(0.10)


def test_betterment_a_deposit_buys_the_underweight_asset_classes():
    """Betterment, "Cash Flow Rebalancing", Inflows: "We use the inflow to buy the asset classes
    you are currently underweight in, reducing your drift"; a sufficient inflow removes the need
    to sell. The $2,000 that reaches every target (the overweight classes' $3,000 are 25% of
    $12,000) buys 10 shares each of the two underweight classes: drift 0. Every class is already
    inside its 5/25 band (5 pp over, at the edge of its 5 pp band): no deposit is needed to stay inside."""
    assert deposit_needed_usd(make_context(make_inputs(BETTERMENT))) == 0.0
    inputs = make_inputs(BETTERMENT, cash_flow_usd=2_000, fractionable=[False] * 4)
    result = plan(inputs, make_policy(strategy="cash_flow"))
    assert trade_table(result) == [("buy", "Intl Bonds", 10.0), ("buy", "Intl Stocks", 10.0)]
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)


def test_betterment_a_withdrawal_sells_the_overweight_first_then_all_equally():
    """Betterment, "Cash Flow Rebalancing", Outflows: "first selling asset classes which are
    overweight. Once we have sold all asset classes that you are overweight in, we sell all asset
    classes equally". $4,000 out of $10,000: the two overweight classes down to $2,000 ($2,000),
    then $500 of each: sells 15, 5, 15, 5 shares, every class at its $1,500 target."""
    inputs = make_inputs(BETTERMENT, cash_flow_usd=-4_000, fractionable=[False] * 4)
    result = plan(inputs, make_policy(strategy="cash_flow"))
    assert trade_table(result) == [
        ("sell", "Intl Bonds", 5.0),
        ("sell", "Intl Stocks", 5.0),
        ("sell", "US Bonds", 15.0),
        ("sell", "US Stocks", 15.0),
    ]
    assert result.drift_after == pytest.approx(0.0, abs=1e-12)


# -- a lazy rebalancing calculator (ianneub/portfolio-rebalance, test/rebalancer.test.js) -----------------------------

LAZY = {"Stocks": (100_000, 1, 0.8), "Cash": (40_000, 1, 0.1), "Bonds": (50_000, 1, 0.1)}


@pytest.mark.parametrize(
    ("flow_usd", "expected"),
    [
        (25_000, [("buy", "Stocks", 25_000.0)]),
        (325_000, [("buy", "Bonds", 1_500.0), ("buy", "Cash", 11_500.0), ("buy", "Stocks", 312_000.0)]),
        (-25_000, [("sell", "Bonds", 17_500.0), ("sell", "Cash", 7_500.0)]),
    ],
)
def test_lazy_rebalancing_contributions_and_withdrawals(flow_usd, expected):
    """ianneub/portfolio-rebalance: "Adding $25,000 should put all money into Stocks", "Adding
    $325,000 should allocate $312,000 to Stocks, $11,500 to Cash, $1,500 to Bonds" and "Removing
    $25,000 should remove $7,500 from Cash and $17,500 from Bonds" (its "Cash" is an asset class
    with a 10% target, a $1 security here)."""
    result = plan(make_inputs(LAZY, cash_flow_usd=flow_usd), make_policy(strategy="cash_flow"))
    assert trade_table(result) == [(side, symbol, pytest.approx(q)) for side, symbol, q in expected]


def test_a_one_billion_dollar_portfolio_in_whole_shares():
    """ianneub/portfolio-rebalance's "Integration: Should work correctly with rebalancePortfolio"
    (its base portfolio, $190,000, and the $310,000 that balances it) scaled 2,000 times to
    $1e9, in whole shares at $412.37, $100.03 and $78.91. Without costs or buffer every class
    ends within one share of its target and drift falls from 62% to what one share leaves; with
    the default policy (0.25% buffer, 5 bps spread) cash stays at or above the buffer and drift
    falls to a few basis points."""
    from optimization.core.rebalancing import RebalancePolicy, TradingPolicy

    prices = np.array([412.37, 100.03, 78.91])
    quantities = np.round(np.array([200e6, 80e6, 100e6]) / prices)
    holdings = {s: (q, p, t) for s, q, p, t in zip(LAZY, quantities, prices, (0.8, 0.1, 0.1), strict=True)}
    inputs = make_inputs(holdings, cash_flow_usd=1e9 - float(quantities @ prices), fractionable=[False] * 3)

    exact = plan(inputs, make_policy(strategy="cash_flow"))
    after = quantities + np.array([sum(t.quantity for t in exact.trades if t.symbol == s) for s in LAZY])
    assert all(t.side == "buy" and t.quantity == int(t.quantity) for t in exact.trades)
    assert np.abs(after * prices - np.array([0.8, 0.1, 0.1]) * 1e9).max() <= prices.max()
    assert exact.cash_after_usd >= 0
    assert exact.drift_before == pytest.approx(0.62, abs=0.001)
    assert exact.drift_after <= prices.max() / 1e9

    default = plan(inputs, RebalancePolicy(trading=TradingPolicy(strategy="cash_flow")))
    assert all(t.side == "buy" and t.quantity == int(t.quantity) for t in default.trades)
    assert default.cash_after_usd >= 0.0025 * 1e9 - 1e-3
    assert default.drift_after < 0.001
