"""minimize_trades, minimize_costs and risk_aware on small portfolios with hand-computed answers.

Portfolios are worth $1,000 or $10,000 so that percentage points are round dollars; the
factories' defaults are no cash buffer, no costs, no minimum trade and fractional shares.
"""

from __future__ import annotations

from dataclasses import replace

import cvxpy as cp
import numpy as np
import pytest

from optimization.core.errors import ConfigurationError, SolverFailed
from optimization.core.rebalancing import BandPolicy, CostModel, programs, resolve_planner
from optimization.core.rebalancing.optimized import MinimizeCosts, MinimizeTrades, RiskAware
from optimization.core.rebalancing.program_data import values_after

from .factories import make_context, make_inputs, make_policy, plan, trade_table

ABSOLUTE_5PP = BandPolicy(band_mode="absolute", band_abs=0.05)
# Dollars the programs keep inside a limit (1e-8 of value) plus solver tolerance.
USD = 1e-3


def proposed(strategy, inputs, policy) -> dict[str, float]:
    values = strategy.propose(make_context(inputs, policy)).target_values_usd
    return dict(zip(inputs.symbols, values.tolist(), strict=True))


def traded_symbols(inputs, policy, strategy) -> set[str]:
    context = make_context(inputs, policy)
    after = strategy.propose(context).target_values_usd
    return {s for s, moved in zip(inputs.symbols, np.abs(after - context.values_usd) > 0, strict=True) if moved}


def test_the_registry_resolves_the_three_strategies():
    assert isinstance(resolve_planner("minimize_trades"), MinimizeTrades)
    assert isinstance(resolve_planner("minimize_costs"), MinimizeCosts)
    assert isinstance(resolve_planner("risk_aware"), RiskAware)


# -- minimize_trades ------------------------------------------------------------------------------------------------


def test_minimize_trades_uses_one_trade_when_cash_can_fix_the_only_breach():
    # A 6 pp under target, cash 6 pp over its (zero) buffer: one buy with the cash, to the target.
    inputs = make_inputs({"A": (440, 1, 0.5), "B": (300, 1, 0.3), "C": (200, 1, 0.2)}, cash_usd=60)
    policy = make_policy(bands=ABSOLUTE_5PP)
    assert proposed(MinimizeTrades(), inputs, policy) == pytest.approx({"A": 500, "B": 300, "C": 200}, abs=USD)
    result = plan(inputs, policy, strategy="minimize_trades")
    assert [(side, symbol) for side, symbol, _ in trade_table(result)] == [("buy", "A")]
    assert result.drift_after == pytest.approx(0, abs=1e-6)


def test_minimize_trades_needs_two_trades_when_there_is_no_cash():
    # A 6 pp over, B 6 pp under, no cash: a sell and a buy, both to target (least drift).
    inputs = make_inputs({"A": (560, 1, 0.5), "B": (240, 1, 0.3), "C": (200, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP)
    assert proposed(MinimizeTrades(), inputs, policy) == pytest.approx({"A": 500, "B": 300, "C": 200}, abs=USD)
    result = plan(inputs, policy, strategy="minimize_trades")
    assert [(side, symbol) for side, symbol, _ in trade_table(result)] == [("sell", "A"), ("buy", "B")]


def test_minimize_trades_prefers_fewer_trades_over_less_drift():
    # A 6 pp under; B and C each 3 pp over (inside). Selling both to fund A would end on target,
    # but one sell suffices. Selling B (or C) by 30 to 60 leaves the same drift, 3 pp: the tie-break
    # takes the smallest trade, and between B and C (same deviation, same band) symbol order picks B.
    inputs = make_inputs({"A": (440, 1, 0.5), "B": (330, 1, 0.3), "C": (230, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP)
    first = proposed(MinimizeTrades(), inputs, policy)
    assert first == pytest.approx({"A": 470, "B": 300, "C": 230}, abs=USD)
    assert proposed(MinimizeTrades(), inputs, policy) == first
    result = plan(inputs, policy, strategy="minimize_trades")
    assert result.drift_after == pytest.approx(0.03, abs=1e-6)


def test_the_tie_break_prefers_the_more_urgent_holding_over_symbol_order():
    # Same as above but under the 5/25 rule: B (target 24%, band 5 pp) and C (16%, band 4 pp) are
    # both 3 pp over; C is the more urgent (0.75 of its band against 0.6), so C is sold, not B.
    inputs = make_inputs({"A": (540, 1, 0.6), "B": (270, 1, 0.24), "C": (190, 1, 0.16)})
    policy = make_policy()
    answers = [proposed(MinimizeTrades(), inputs, policy) for _ in range(2)]
    assert answers[0] == pytest.approx({"A": 570, "B": 270, "C": 160}, abs=USD)
    assert answers[0] == answers[1]


def test_a_do_not_trade_holding_outside_its_band_is_named_and_the_rest_brought_inside():
    # A is 8 pp over and may not be sold. B is 8 pp under: selling C (on target, band 5 pp) funds
    # the 3.05 pp that bring B inside its band shrunk by 1% (4.95 pp). Drift is 8 pp for any
    # amount between 3.05 and 4.95 pp, so the tie-break takes the smallest.
    inputs = make_inputs({"A": (480, 1, 0.4), "B": (220, 1, 0.3), "C": (300, 1, 0.3)})
    policy = make_policy(bands=ABSOLUTE_5PP, do_not_trade=frozenset({"A"}))
    result = plan(inputs, policy, strategy="minimize_trades")
    assert trade_table(result) == [
        ("sell", "C", pytest.approx(30.5, abs=USD)),
        ("buy", "B", pytest.approx(30.5, abs=USD)),
    ]
    assert result.weights_after["A"] == pytest.approx(0.48)
    assert any(note.startswith("Left outside its band: A 8.0 pp over target (band 5.0 pp).") for note in result.notes)
    assert not any("B " in note for note in result.notes)


def test_a_turnover_cap_too_tight_leaves_the_least_excess_with_the_fewest_trades():
    # A 6 pp over, B 6 pp under, a 0.5% one-way cap: at most 1 pp of value can move. The least
    # excess (1.1 pp over both) is reached by one sell of 1 pp as well as by a sell and a buy of
    # 0.5 pp each: the fewest trades wins. Both holdings stay outside and are named.
    inputs = make_inputs({"A": (560, 1, 0.5), "B": (240, 1, 0.3), "C": (200, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP, max_turnover=0.005)
    result = plan(inputs, policy, strategy="minimize_trades")
    assert trade_table(result) == [("sell", "A", pytest.approx(10, abs=USD))]
    assert result.turnover <= 0.005
    note = next(n for n in result.notes if n.startswith("Left outside its band"))
    assert "A 5.0 pp over target" in note and "B 6.0 pp under target" in note


@pytest.mark.parametrize(
    ("min_trade_usd", "spread_bps", "sold_usd"),
    [(0.0, 0.0, 55.0), (0.0, 50.0, 55 / (1 - 0.5495 * 0.005)), (200.0, 0.0, 200.0)],
)
def test_minimize_trades_sells_the_least_that_brings_the_holding_inside(min_trade_usd, spread_bps, sold_usd):
    # $10,000: A 5.5 pp over (band 5 pp, shrunk to 4.95). Selling into cash leaves drift unchanged
    # between the band edge and the target, so the sell is the smallest: $55; with a 50 bps spread
    # x such that (5550 - x) / (10000 - 0.005 x) = 54.95%; or the $200 minimum.
    inputs = make_inputs({"A": (5550, 1, 0.5), "B": (2725, 1, 0.3), "C": (1725, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP, min_trade_usd=min_trade_usd, costs=CostModel(spread_bps=spread_bps))
    result = plan(inputs, policy, strategy="minimize_trades")
    assert trade_table(result) == [("sell", "A", pytest.approx(sold_usd, abs=0.02))]


def test_minimize_trades_trades_whole_shares_and_stays_inside_the_band():
    # The case above with A at $50 a share, not fractionable: 1.1 shares would do; 2 whole shares it is.
    inputs = make_inputs(
        {"A": (111, 50, 0.5), "B": (2725, 1, 0.3), "C": (1725, 1, 0.2)}, fractionable=[False, True, True]
    )
    policy = make_policy(bands=ABSOLUTE_5PP)
    assert proposed(MinimizeTrades(), inputs, policy)["A"] == 5450
    result = plan(inputs, policy, strategy="minimize_trades")
    assert trade_table(result) == [("sell", "A", 2.0)]
    assert abs(result.weights_after["A"] - 0.5) <= 0.05


def test_a_whole_share_band_with_no_whole_count_inside_takes_the_nearest_count():
    # D: target 2% of $10,000, band 0.5 pp ($150..$250), $300 a share: 0 shares is 2 pp under,
    # 1 share 1 pp over; the closer one is bought with the cash, and the note says why it is outside.
    inputs = make_inputs(
        {"A": (5000, 1, 0.49), "B": (4700, 1, 0.49), "D": (0, 300, 0.02)},
        cash_usd=300,
        fractionable=[True, True, False],
    )
    policy = make_policy()
    result = plan(inputs, policy, strategy="minimize_trades")
    assert ("buy", "D", 1.0) in trade_table(result)
    assert any(
        note.startswith("Left outside its band: D 1.0 pp over target (band 0.5 pp). No whole number of shares")
        for note in result.notes
    )


def test_minimize_trades_leaves_a_portfolio_inside_its_bands_alone():
    inputs = make_inputs({"A": (520, 1, 0.5), "B": (290, 1, 0.3), "C": (190, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP)
    assert traded_symbols(inputs, policy, MinimizeTrades()) == set()


def test_costs_count_against_the_band_and_the_cash():
    # A 6 pp under with exactly 6 pp of cash and a $5 commission: the buy pays its commission from
    # the cash, so $55 is bought, and A ends within its band of the value left after costs.
    inputs = make_inputs({"A": (440, 1, 0.5), "B": (300, 1, 0.3), "C": (200, 1, 0.2)}, cash_usd=60)
    policy = make_policy(bands=ABSOLUTE_5PP, costs=CostModel(commission_per_trade_usd=5.0, spread_bps=0.0))
    result = plan(inputs, policy, strategy="minimize_trades")
    assert trade_table(result) == [("buy", "A", pytest.approx(55, abs=USD))]
    assert result.cash_after_usd == pytest.approx(0, abs=USD)


# -- minimize_costs -------------------------------------------------------------------------------------------------

# $10,000 split 50/50 with A $30 under and $30 of cash: buying $25 (the commission takes $5) leaves
# $2.50 of drift against $30 without trading.
SMALL_GAP = {"A": (4970, 1, 0.5), "B": (5000, 1, 0.5)}


def test_a_commission_larger_than_the_drift_it_removes_makes_a_small_trade_not_worth_it():
    # At 10 bps per pp, $30 of drift (0.3 pp) costs $3; trading costs $5 and leaves $0.25 of penalty.
    inputs = make_inputs(SMALL_GAP, cash_usd=30)
    policy = make_policy(costs=CostModel(commission_per_trade_usd=5.0, spread_bps=0.0), drift_cost_bps=10)
    assert traded_symbols(inputs, policy, MinimizeCosts()) == set()


def test_a_higher_drift_price_makes_the_same_trade_worth_it():
    # At 100 bps per pp: $30 of penalty without trading against $5 + $2.50 with the $25 buy.
    inputs = make_inputs(SMALL_GAP, cash_usd=30)
    policy = make_policy(costs=CostModel(commission_per_trade_usd=5.0, spread_bps=0.0), drift_cost_bps=100)
    assert proposed(MinimizeCosts(), inputs, policy) == pytest.approx({"A": 4995, "B": 5000}, abs=USD)
    result = plan(inputs, policy, strategy="minimize_costs")
    assert trade_table(result) == [("buy", "A", pytest.approx(25, abs=USD))]
    assert result.total_cost_usd == pytest.approx(5)


@pytest.mark.parametrize(("min_trade_usd", "expected_a"), [(0.0, 5000.0), (50.0, 4970.0)])
def test_minimize_costs_never_plans_a_trade_below_the_minimum(min_trade_usd, expected_a):
    # Without costs the $30 buy is free; with a $50 minimum it would need a $50 sell as well and
    # leave more drift than it removes, so nothing trades.
    inputs = make_inputs(SMALL_GAP, cash_usd=30)
    policy = make_policy(min_trade_usd=min_trade_usd)
    assert proposed(MinimizeCosts(), inputs, policy)["A"] == pytest.approx(expected_a, abs=USD)


def test_minimize_costs_trades_whole_shares():
    # A at $7 a share, not fractionable, $100 under target with $100 of cash: 14 shares ($98) leave
    # $2 of drift; a 15th would need a sell of B and leave $5.
    inputs = make_inputs({"A": (700, 7, 0.5), "B": (5000, 1, 0.5)}, cash_usd=100, fractionable=[False, True])
    result = plan(inputs, make_policy(), strategy="minimize_costs")
    assert trade_table(result) == [("buy", "A", 14.0)]


# -- risk_aware -----------------------------------------------------------------------------------------------------

# Uncorrelated: A 40% volatility, B and C 10%.
COV = np.diag([0.16, 0.01, 0.01])
RISK_HOLDINGS = {"A": (3833.3333333333, 1, 1 / 3), "B": (3833.3333333333, 1, 1 / 3), "C": (2333.3333333334, 1, 1 / 3)}


def risk_inputs():
    return replace(make_inputs(RISK_HOLDINGS), cov=COV)


def test_risk_aware_moves_the_most_volatile_overweight_first_under_a_tight_budget():
    # A and B are both 5 pp over, C 10 pp under; cash is riskless. With 2.5% one-way turnover, a pp
    # sold of A cuts variance by 0.16 x 2 x (5 - x) against 0.01 x 2 x 5 for B: B is not touched.
    # Selling A (x pp) and buying C (y pp) with x + y = 5 balances 0.32 (5 - x) = 0.02 (10 - y):
    # x = 75/17, y = 10/17, the rest of the sale stays in cash.
    policy = make_policy(max_turnover=0.025)
    after = proposed(RiskAware(), risk_inputs(), policy)
    before = {symbol: holding[0] for symbol, holding in RISK_HOLDINGS.items()}
    assert after["A"] - before["A"] == pytest.approx(-7500 / 17, abs=0.01)
    assert after["B"] - before["B"] == pytest.approx(0, abs=0.01)
    assert after["C"] - before["C"] == pytest.approx(1000 / 17, abs=0.01)


def test_risk_aware_reaches_the_target_when_the_budget_is_loose():
    after = proposed(RiskAware(), risk_inputs(), make_policy())
    assert list(after.values()) == pytest.approx([10_000 / 3] * 3, abs=0.01)


def test_risk_aware_stops_short_of_the_target_where_costs_exceed_the_tracking_error_removed():
    # 50 bps spread, aversion 100. A sale stops where its marginal variance, 2 x 100 x variance x gap,
    # equals the spread less the value of the cash it raises, the same for A and B: B (variance
    # 0.01) keeps 16 times A's gap (0.16). Selling into idle cash would stop at a gap of 25 bps
    # (2 x 0.01 x 100 x gap = 0.005); cash is short (C is bought with it), so B goes further, and
    # C stays more than 25 bps under.
    policy = make_policy(costs=CostModel(spread_bps=50.0), tracking_error_aversion=100.0)
    context = make_context(risk_inputs(), policy)
    weights = RiskAware().propose(context).target_values_usd / context.total_usd
    gap_a, gap_b, gap_c = weights - context.targets
    assert gap_b == pytest.approx(16 * gap_a, rel=1e-4)
    assert 0 < gap_b < 0.0025
    assert gap_c < -0.0025


def test_risk_aware_leaves_out_sells_whose_commission_eats_their_proceeds():
    # B ($0.50, target 0) sold for a $1 commission would leave cash negative: it is held, and with
    # no cash nothing else can be bought.
    inputs = replace(
        make_inputs({"A": (1, 1, 1.0), "B": (0.5, 1, 0.0)}, fractionable=[False, False]),
        cov=np.array([[0.04, 0.0015], [0.0015, 0.055]]),
    )
    policy = make_policy(costs=CostModel(commission_per_trade_usd=1.0, spread_bps=5.0))
    assert proposed(RiskAware(), inputs, policy) == pytest.approx({"A": 1.0, "B": 0.5})
    result = plan(inputs, policy, strategy="risk_aware")
    assert result.trades == ()
    assert result.cash_after_usd == 0


def test_risk_aware_leaves_an_unraisable_withdrawal_to_finalize():
    # Selling the only $1 share for a $1 commission cannot raise a $0.50 withdrawal.
    inputs = replace(make_inputs({"A": (1, 1, 1.0)}, cash_flow_usd=-0.5, fractionable=[False]), cov=np.eye(1) / 50)
    policy = make_policy(costs=CostModel(commission_per_trade_usd=1.0, spread_bps=5.0))
    with pytest.raises(ConfigurationError, match=r"^cash_flow_usd: the \$0\.50 withdrawal needs \$0\.50 more"):
        plan(inputs, policy, strategy="risk_aware")


def test_risk_aware_needs_a_covariance():
    with pytest.raises(ConfigurationError, match=r"^cov: risk_aware needs the covariance of the holdings"):
        RiskAware().propose(make_context(make_inputs(RISK_HOLDINGS), make_policy()))


def test_risk_aware_keeps_do_not_trade_holdings_and_funds_its_buys():
    policy = make_policy(do_not_trade=frozenset({"A"}), cash_buffer_weight=0.01)
    result = plan(risk_inputs(), policy, strategy="risk_aware")
    assert "A" not in {t.symbol for t in result.trades}
    assert result.cash_after_usd >= 0.01 * result.value_before_usd - USD
    assert not any("scaled" in note for note in result.notes)


# -- solver behaviour -----------------------------------------------------------------------------------------------


def test_a_template_is_compiled_once_per_shape():
    inputs = make_inputs({"A": (560, 1, 0.5), "B": (240, 1, 0.3), "C": (200, 1, 0.2)})
    policy = make_policy(bands=ABSOLUTE_5PP)
    MinimizeTrades().propose(make_context(inputs, policy))
    compiled = programs.compile_count
    other = make_inputs({"X": (100, 3, 0.2), "Y": (10, 70, 0.3), "Z": (0, 9, 0.5)}, cash_usd=500)
    MinimizeTrades().propose(make_context(other, policy))
    MinimizeCosts().propose(make_context(other, policy))
    assert programs.compile_count == compiled


def test_a_solver_error_becomes_solver_failed(monkeypatch):
    def broken(self, *args, **kwargs):
        raise cp.error.SolverError("numerical trouble")

    monkeypatch.setattr(cp.Problem, "solve", broken)
    inputs = make_inputs({"A": (560, 1, 0.5), "B": (240, 1, 0.3), "C": (200, 1, 0.2)})
    with pytest.raises(SolverFailed, match="the solver found no answer to the rebalancing trades problem"):
        MinimizeTrades().propose(make_context(inputs, make_policy()))
    with pytest.raises(SolverFailed, match="tracking error"):
        RiskAware().propose(make_context(risk_inputs(), make_policy()))


def test_an_interior_point_answer_stopped_at_its_iteration_limit_is_not_used(monkeypatch):
    # Clarabel stopped after 3 iterations has an iterate that has not converged (cvxpy calls it a
    # user limit, as HiGHS's time limit): unlike a MILP incumbent it may break the constraints, so
    # the next attempt answers and the plan is the converged one, with no time-limit note.
    statuses = []
    solve = cp.Problem.solve

    def recorded(self, *args, **kwargs):
        value = solve(self, *args, **kwargs)
        statuses.append(self.status)
        return value

    monkeypatch.setattr(programs, "CLARABEL_OPTIONS", {**programs.CLARABEL_OPTIONS, "max_iter": 3})
    monkeypatch.setattr(cp.Problem, "solve", recorded)
    context = make_context(risk_inputs(), make_policy())
    proposal = RiskAware().propose(context)
    assert statuses[0] == cp.USER_LIMIT and cp.OPTIMAL in statuses[1:]
    # The looser attempt's gap (1e-9 of a variance) leaves the answer cents from the exact one (how
    # many depends on what the template's solver solved before: 2 to 7 seen); never below zero.
    after = proposal.target_values_usd
    assert after.tolist() == pytest.approx([10_000 / 3] * 3, rel=1e-4) and (after >= 0).all()
    assert not any("time limit" in note for note in proposal.notes)


def test_a_sell_past_the_holding_within_the_solvers_tolerance_sells_the_holding():
    # An interior-point answer once sold 3.55e-9 of value ($0.00003) of a holding of zero shares:
    # within the solver's feasibility tolerance, so the holding ends at zero, not short.
    inputs = make_inputs({"A": (0, 1, 0.0), "B": (1000, 1, 0.6), "C": (0, 1, 0.4)})
    context = make_context(inputs, make_policy())
    sell = np.array([3.55e-9, 0.4, 0.0])
    answer = programs.Solution(programs.OPTIMAL, {"buy": np.array([0.0, 0.0, 0.4]), "sell": sell})
    assert values_after(context, answer).tolist() == pytest.approx([0.0, 600.0, 400.0])
    # A sell past the holding by more than the tolerance is a wrong answer, refused.
    answer.values["sell"][0] = 1e-5
    with pytest.raises(SolverFailed, match="sells more than is held of A"):
        values_after(context, answer)
